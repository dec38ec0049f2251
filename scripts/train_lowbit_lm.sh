#!/usr/bin/env bash
# Trains lowbit's own language model (configs/lowbit-lm.json) and puts the
# result in models/lowbit-lm/: the GGUF (float32, with its tokenizer), the
# loss log, the loss curves and the exact command. The committed model
# came from this script; docs/lowbit-lm.md gives its figures.
#
#   scripts/train_lowbit_lm.sh [--threads N] [--resume]
#
# Needs build/lowbit and the corpora (scripts/setup.sh installs both).
# About 40 minutes at 2 threads on a Zen 4 core pair.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
resume=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --resume) resume=(--resume); shift ;;
    *) echo "usage: $0 [--threads N] [--resume]" >&2; exit 2 ;;
  esac
done
run=build-lm/run
mkdir -p build-lm
cmd=(build/lowbit train --config configs/lowbit-lm.json -o "$run" --threads "$threads" --json "${resume[@]}")
start=$(date +%s)
"${cmd[@]}" | tee build-lm/summary.json
end=$(date +%s)
mkdir -p models/lowbit-lm
cp "$run/model.gguf" models/lowbit-lm/lowbit-lm.gguf
cp "$run/log.json" models/lowbit-lm/log.json
cp "$run/loss.svg" models/lowbit-lm/loss.svg
{
  echo "command: ${cmd[*]}"
  echo "git: $(git rev-parse HEAD)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "wall seconds: $((end - start))"
  echo "summary: $(cat build-lm/summary.json)"
} > models/lowbit-lm/TRAINING.txt
echo "models/lowbit-lm/ updated" >&2

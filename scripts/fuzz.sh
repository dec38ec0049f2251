#!/usr/bin/env bash
# Fuzzes lowbit's parsers of untrusted input (safetensors, GGUF, scheme and
# format spec strings, recipes, compressed-tensors quantization_config,
# tokenizer.json files, GGUF tokenizer metadata, importance matrices) with
# libFuzzer under ASan + UBSan, each for LOWBIT_FUZZ_SECONDS (default 60),
# side by side. A crash in any target makes the run exit non-zero once all
# have finished, naming the input; keep it under fuzz/regressions/<target>/
# once the bug is fixed, so fuzz_regressions_test replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${LOWBIT_FUZZ_SECONDS:-60}"
build=build-fuzz

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_FUZZ=ON \
  -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target lowbit_fuzzers

# One target: its exit status goes to $build/fuzz_<target>.status.
fuzz_one() {
  local target="$1" seeds="$2"
  local corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$build/crashes/$target"
  # -rss_limit_mb: an allocation sized by an unchecked header field is a
  # bug even when the machine could satisfy it.
  local rc=0
  "$build/fuzz_$target" "$corpus" "$seeds" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$target/" 2>"$build/fuzz_$target.log" || rc=$?
  echo "$rc" >"$build/fuzz_$target.status"
}

# The targets run side by side, one per core (each fuzzer is one process on
# one core), every one for the full time.
targets=()
for seeds in fuzz/seeds/*/; do
  target="$(basename "$seeds")"
  targets+=("$target")
  while (( $(jobs -rp | wc -l) >= $(nproc) )); do wait -n || true; done
  echo "== fuzz $target for ${seconds}s"
  rm -f "$build/fuzz_$target.status"
  fuzz_one "$target" "$seeds" &
done
wait

status=0
for target in "${targets[@]}"; do
  if [[ "$(cat "$build/fuzz_$target.status" 2>/dev/null)" != 0 ]]; then
    tail -40 "$build/fuzz_$target.log"
    echo "fuzz: $target crashed; the input is in $build/crashes/$target/" >&2
    status=1
  else
    echo -n "$target: "
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz_$target.log" | tr '\n' ' '
    echo
  fi
done
exit "$status"

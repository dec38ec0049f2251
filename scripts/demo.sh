#!/usr/bin/env bash
# lowbit's main job: set up, build, then quantize the default real model
# (all-MiniLM-L6-v2, fp32 safetensors, installed by the setup) with several
# schemes and print the comparison: size, bits per weight, mean and
# worst-tensor QSNR, and (--eval) the quantized models' own quality: embedding
# cosine and retrieval for MiniLM, perplexity and KL divergence for the
# causal LMs. Then the same model with the clipping search, the default
# causal LM (lowbit-lm, lowbit's own, in the repository) to Q4_K and Q8_0,
# the real GGUF model SmolLM2-135M-Instruct to Q4_K for llama.cpp, and the
# INT-vs-FP QSNR study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Only the program: the test binaries are the test command's business.
LOWBIT_BUILD_TARGET=lowbit_cli bash scripts/build.sh
LOWBIT=build/lowbit
OUT="${LOWBIT_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"

echo
echo "== all-MiniLM-L6-v2 -> compressed-tensors (vLLM), one output per scheme, method rtn,"
echo "   each measured against the input (--eval: embedding cosine, paraphrase recall@1 on kjv-web)"
"$LOWBIT" quantize minilm "$OUT/minilm" --quiet --eval \
  --scheme int8/channel --scheme float8_e4m3fn/channel --scheme int4/g128/asym --scheme mxfp4 --scheme nvfp4

echo
echo "== the same 4-bit schemes with the clipping search (--method mse)"
"$LOWBIT" quantize minilm "$OUT/minilm-mse" --quiet --method mse \
  --scheme int4/g128/asym --scheme mxfp4 --scheme nvfp4

echo
echo "== lowbit-lm (lowbit's own 6.8M-parameter language model, GGUF F32, the default causal LM) -> GGUF Q4_K"
echo "   and Q8_0 for llama.cpp, measured against the input (--eval: perplexity, KL divergence, top-1 on kjv)"
"$LOWBIT" quantize lowbit-lm "$OUT/lowbit-lm" --to gguf --scheme q4_k --scheme q8_0 --quiet --eval

echo
echo "== SmolLM2-135M-Instruct (GGUF Q4_1) -> GGUF Q4_K for llama.cpp (every metadata key kept),"
echo "   measured against the input (--eval: perplexity, KL divergence, top-1 agreement on kjv)"
"$LOWBIT" quantize smollm2 "$OUT/smollm2-q4_k.gguf" --scheme q4_k --method mse --quiet --eval --report "$OUT/smollm2.json" |
  sed -n '/^smollm2\|^\/.*->/,$p'

echo
echo "== the INT-vs-FP QSNR study on synthetic Student-t(5) data"
"$LOWBIT" study qsnr --dist student-t:5 --n 4194304 --seed 1 \
  --schemes mxfp8_e4m3,mxint8,mxfp4,mxint4,nvfp4,int4/g128/asym,q4_0,int4/g32/scale=mse --plot "$OUT/qsnr.svg"
echo "  plot: $OUT/qsnr.svg"

echo
echo "demo done: outputs in $OUT"

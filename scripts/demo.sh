#!/usr/bin/env bash
# lowbit's main job for now (whole-model quantization comes later): set up,
# build, list the formats, then round a real weight matrix (the word
# embeddings of all-MiniLM-L6-v2, 11.7 M values) to several formats and show
# the error each costs, and pack it to 4 bits and back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
LOWBIT=build/lowbit
OUT="${LOWBIT_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"

echo
echo "== lowbit formats"
"$LOWBIT" formats

echo
echo "== a real tensor: all-MiniLM-L6-v2 embeddings.word_embeddings.weight"
python3 scripts/extract_tensor.py embeddings.word_embeddings.weight "$OUT/word_embeddings.npy"

echo
echo "== fakequant to each format (no scaling: each format's own range), error vs the fp32 original"
for f in float16 bfloat16 float8_e4m3fn float8_e5m2 hifloat8 posit8_1 posit16_1 float6_e2m3fn float4_e2m1fn; do
  "$LOWBIT" fakequant --format "$f" --stats "$OUT/word_embeddings.npy" "$OUT/word_embeddings.$f.npy"
done
"$LOWBIT" fakequant --format float8_e4m3fn --round stochastic --seed 1 --stats \
  "$OUT/word_embeddings.npy" "$OUT/word_embeddings.e4m3fn_sr.npy"

echo
echo "== pack to float8_e4m3fn codes and 4-bit float4_e2m1fn, then decode"
"$LOWBIT" encode --format float8_e4m3fn "$OUT/word_embeddings.npy" "$OUT/word_embeddings.e4m3fn.npy"
"$LOWBIT" encode --format float4_e2m1fn --packed "$OUT/word_embeddings.npy" "$OUT/word_embeddings.e2m1.bin"
"$LOWBIT" decode --format float4_e2m1fn --packed "$OUT/word_embeddings.e2m1.bin" "$OUT/word_embeddings.e2m1.dq.npy"
ls -l "$OUT"/word_embeddings.npy "$OUT"/word_embeddings.e4m3fn.npy "$OUT"/word_embeddings.e2m1.bin |
  awk '{printf "  %12d bytes  %s\n", $5, $9}'

echo
echo "== tensor quantization of a real weight: encoder layer 0 attention query (384 x 384)"
python3 scripts/extract_tensor.py encoder.layer.0.attention.self.query.weight "$OUT/query.npy"
for s in int8/channel int4/g128/asym int4/g128/asym/scale=mse mxfp4 nvfp4 mxint4 q4_0; do
  "$LOWBIT" qtensor --scheme "$s" "$OUT/query.npy" "$OUT/query.$(echo "$s" | tr '/=' '__').safetensors" |
    awk -v s="$s" '/^bits per element/ {b=$4} /^QSNR/ {q=$2} END {printf "  %-28s %8.4f bits/elem  QSNR %6.2f dB\n", s, b, q}'
done

echo
echo "== the INT-vs-FP QSNR study on the same weight, and on synthetic Student-t(5) data"
"$LOWBIT" study qsnr --dist "$OUT/query.npy" \
  --schemes mxfp8_e4m3,mxint8,mxfp6_e2m3,mxfp4,mxint4,nvfp4,nvint4,int4/g128/asym
"$LOWBIT" study qsnr --dist student-t:5 --n 4194304 --seed 1 \
  --schemes mxfp8_e4m3,mxint8,mxfp4,mxint4,nvfp4,int4/g128/asym,q4_0,int4/g32/scale=mse --plot "$OUT/qsnr.svg"
echo "  plot: $OUT/qsnr.svg"

echo
echo "demo done: outputs in $OUT"

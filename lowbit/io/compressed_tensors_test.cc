#include "lowbit/io/compressed_tensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lowbit/ggml/codec_registry.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/npy.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/compressed_tensors_pack.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class CompressedTensorsTest : public testing_support::TempDirTest {};

std::vector<float> normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  if (n > 7) v[7] = 6.5f;  // one larger value, so that scales differ
  return v;
}

std::vector<float> dequantized(const QuantizedTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// Writes one module's tensors the way the quantize command streams them.
void write_module(const std::string& path, const std::string& module, const CtPlan& p, const CtEncoded& enc) {
  SafetensorsWriter w(path);
  const auto idx = declare_compressed_tensors(w, module, p);
  w.begin();
  write_compressed_tensors(w, idx, enc);
  w.commit();
}

// ------------------------------------------------------------ packing

// A bit-by-bit reference for one packed stream, independent of the
// field-wise code: stream bit t is bit (t mod b) of value floor(t / b), and
// word k holds stream bits [32k, 32k + 32).
std::vector<uint32_t> reference_words(const std::vector<uint32_t>& values, int b) {
  const uint64_t nbits = values.size() * b;
  std::vector<uint32_t> words((nbits + 31) / 32, 0);
  for (uint64_t t = 0; t < nbits; ++t) {
    if ((values[t / b] >> (t % b)) & 1) words[t / 32] |= 1u << (t % 32);
  }
  return words;
}

uint32_t word_at(const std::vector<uint8_t>& bytes, uint64_t i) {
  uint32_t w;
  std::memcpy(&w, bytes.data() + i * 4, 4);
  return w;
}

// lowbit's code stream of a rows x cols matrix of b-bit values.
std::vector<uint8_t> lowbit_stream(const std::vector<uint32_t>& v, int b) {
  std::vector<uint8_t> s((v.size() * b + 7) / 8, 0);
  for (uint64_t t = 0; t < v.size() * b; ++t) {
    if ((v[t / b] >> (t % b)) & 1) s[t / 8] |= static_cast<uint8_t>(1u << (t % 8));
  }
  return s;
}

TEST(CompressedTensorsPack, RowsAndColumnsMatchABitLevelReference) {
  std::mt19937 rng(11);
  for (int b = 2; b <= 8; ++b) {
    const std::vector<std::pair<uint64_t, uint64_t>> shapes = {{1, 1}, {3, 5}, {7, 32}, {5, 33}, {9, 100}};
    for (const auto& [rows, cols] : shapes) {
      SCOPED_TRACE("bits " + std::to_string(b) + " shape " + std::to_string(rows) + "x" + std::to_string(cols));
      std::vector<uint32_t> v(rows * cols);
      for (auto& x : v) x = rng() & ((1u << b) - 1);
      const uint8_t flip = static_cast<uint8_t>(1u << (b - 1));
      const std::vector<uint8_t> stream = lowbit_stream(v, b);
      // Rows (dim 1), with the signed offset applied.
      const uint64_t wr = ct_packed_words(cols, b, "t");
      std::vector<uint8_t> packed(rows * wr * 4);
      ct_pack_rows(stream.data(), rows, cols, b, flip, packed.data());
      for (uint64_t r = 0; r < rows; ++r) {
        std::vector<uint32_t> row(v.begin() + r * cols, v.begin() + (r + 1) * cols);
        for (auto& x : row) x ^= flip;
        const auto ref = reference_words(row, b);
        ASSERT_EQ(ref.size(), wr);
        for (uint64_t k = 0; k < wr; ++k) {
          ASSERT_EQ(word_at(packed, r * wr + k), ref[k]) << "row " << r << " word " << k;
        }
      }
      std::vector<uint8_t> back(stream.size(), 0xAA);
      ct_unpack_rows(packed.data(), rows, cols, b, flip, back.data());
      EXPECT_EQ(back, stream);
      // Columns (dim 0): column c is one stream, word k at [k][c].
      const uint64_t wc = ct_packed_words(rows, b, "t");
      std::vector<uint8_t> cpacked(wc * cols * 4);
      ct_pack_columns(stream.data(), rows, cols, b, 0, cpacked.data());
      for (uint64_t c = 0; c < cols; ++c) {
        std::vector<uint32_t> col(rows);
        for (uint64_t r = 0; r < rows; ++r) col[r] = v[r * cols + c];
        const auto ref = reference_words(col, b);
        for (uint64_t k = 0; k < wc; ++k) ASSERT_EQ(word_at(cpacked, k * cols + c), ref[k]) << "col " << c;
      }
      std::fill(back.begin(), back.end(), 0x55);
      ct_unpack_columns(cpacked.data(), rows, cols, b, 0, back.data());
      EXPECT_EQ(back, stream);
    }
  }
}

// Pinned by hand from compressed-tensors' pack_to_int32: the int4 values
// -8..7 plus the offset 8 are 0..15, value j in bits [4j, 4j + 4), so the
// two words are 0x76543210 and 0xFEDCBA98.
TEST(CompressedTensorsPack, Int4RowWordsByHand) {
  QuantizedTensor q;
  q.scheme = parse_scheme("int4/channel");
  q.shape = {1, 16};
  for (int j = 0; j < 16; j += 2) {
    const int a = (j - 8) & 15, b = (j + 1 - 8) & 15;  // two's complement codes
    q.codes.push_back(static_cast<uint8_t>(a | b << 4));
  }
  q.scales = {0x00, 0x3c};  // float16 1.0
  const CtPlan p = plan_compressed_tensors(q.scheme, q.shape);
  const CtEncoded e = encode_compressed_tensors(p, q);
  ASSERT_EQ(e.tensors[0].decl.suffix, "weight_packed");
  EXPECT_EQ(word_at(e.tensors[0].bytes, 0), 0x76543210u);
  EXPECT_EQ(word_at(e.tensors[0].bytes, 1), 0xFEDCBA98u);
}

// Asymmetric zero points pack along dim 0: the zeros 0..8 of nine rows (one
// group each) fill word 0 of the single column with nibbles 0..7
// (0x76543210) and word 1 with 8.
TEST(CompressedTensorsPack, ZeroPointsPackAlongDim0ByHand) {
  QuantizedTensor q;
  q.scheme = parse_scheme("int4/g16/asym");
  q.shape = {9, 16};
  q.codes.assign(9 * 8, 0);
  q.scales.assign(9 * 2, 0);
  for (int r = 0; r < 9; r += 2) q.zeros.push_back(static_cast<uint8_t>(r | (r + 1 < 9 ? (r + 1) << 4 : 0)));
  const CtPlan p = plan_compressed_tensors(q.scheme, q.shape);
  const CtEncoded e = encode_compressed_tensors(p, q);
  ASSERT_EQ(e.tensors[2].decl.suffix, "weight_zero_point");
  EXPECT_EQ(e.tensors[2].decl.shape, (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(word_at(e.tensors[2].bytes, 0), 0x76543210u);
  EXPECT_EQ(word_at(e.tensors[2].bytes, 1), 8u);
}

// ------------------------------------------------------------ plans

TEST(CompressedTensorsPlan, NamesDtypesAndShapes) {
  struct Case {
    const char* spec;
    std::vector<uint64_t> shape;
    const char* format;
    std::vector<std::string> tensors;  // "suffix dtype [shape]"
  };
  const std::vector<Case> cases = {
      {"int4/g128", {256, 512}, "pack-quantized",
       {"weight_packed I32 [256, 64]", "weight_scale F16 [256, 4]", "weight_shape I64 [2]"}},
      {"int4/g128/asym/sf=bf16", {100, 256}, "pack-quantized",
       {"weight_packed I32 [100, 32]", "weight_scale BF16 [100, 2]", "weight_zero_point I32 [13, 2]",
        "weight_shape I64 [2]"}},
      {"int8/channel", {10, 30}, "pack-quantized",
       {"weight_packed I32 [10, 8]", "weight_scale F16 [10, 1]", "weight_shape I64 [2]"}},
      {"int:3/g32/asym", {11, 64}, "pack-quantized",
       {"weight_packed I32 [11, 6]", "weight_scale F16 [11, 2]", "weight_zero_point I32 [2, 2]",
        "weight_shape I64 [2]"}},
      {"float8_e4m3fn/tensor", {3, 5}, "float-quantized", {"weight F8_E4M3 [3, 5]", "weight_scale F32 [1]"}},
      {"float8_e4m3fn/channel", {3, 5}, "float-quantized", {"weight F8_E4M3 [3, 5]", "weight_scale F16 [3, 1]"}},
      {"float8_e4m3fn/b128x128", {300, 200}, "float-quantized",
       {"weight F8_E4M3 [300, 200]", "weight_scale F16 [3, 2]"}},
      {"e4m3fn/channel/scale=floor", {3, 5}, "float-quantized", {"weight F8_E4M3 [3, 5]", "weight_scale F32 [3, 1]"}},
      {"nvfp4", {4, 64}, "nvfp4-pack-quantized",
       {"weight_packed U8 [4, 32]", "weight_scale F8_E4M3 [4, 4]", "weight_global_scale F32 [1]"}},
      {"mxfp4", {4, 64}, "mxfp4-pack-quantized", {"weight_packed U8 [4, 32]", "weight_scale U8 [4, 2]"}},
      {"mxfp8_e4m3", {4, 64}, "mxfp8-quantized", {"weight F8_E4M3 [4, 64]", "weight_scale U8 [4, 2]"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    const CtPlan p = plan_compressed_tensors(parse_scheme(c.spec), c.shape);
    EXPECT_STREQ(ct_format_name(p.format), c.format);
    std::vector<std::string> got;
    for (const auto& t : p.tensors) {
      std::string s = t.suffix + " " + dtype_name(t.dtype) + " [";
      for (size_t i = 0; i < t.shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(t.shape[i]));
      got.push_back(s + "]");
    }
    EXPECT_EQ(got, c.tensors);
  }
}

TEST(CompressedTensorsPlan, QuantizationArgs) {
  const auto args = [](const char* spec, std::vector<uint64_t> shape) {
    return ct_args_to_json(plan_compressed_tensors(parse_scheme(spec), shape).args);
  };
  // compressed-tensors' W4A16 preset, as model_dump writes it.
  EXPECT_EQ(args("int4/g128", {8, 256}), nlohmann::json::parse(R"({"num_bits":4,"type":"int","symmetric":true,
      "strategy":"group","group_size":128,"dynamic":false})"));
  EXPECT_EQ(args("w4g128", {8, 256}), nlohmann::json::parse(R"({"num_bits":4,"type":"int","symmetric":false,
      "strategy":"group","group_size":128,"dynamic":false})"));
  EXPECT_EQ(args("w8", {8, 256}), nlohmann::json::parse(R"({"num_bits":8,"type":"int","symmetric":true,
      "strategy":"channel","group_size":null,"dynamic":false})"));
  EXPECT_EQ(args("e4m3fn/b128x128", {8, 256}), nlohmann::json::parse(R"({"num_bits":8,"type":"float",
      "symmetric":true,"strategy":"block","group_size":null,"block_structure":[128,128],"dynamic":false})"));
  EXPECT_EQ(args("nvfp4", {8, 256}), nlohmann::json::parse(R"({"num_bits":4,"type":"float","symmetric":true,
      "strategy":"tensor_group","group_size":16,"dynamic":false})"));
  EXPECT_EQ(args("mxfp4", {8, 256}), nlohmann::json::parse(R"({"num_bits":4,"type":"float","symmetric":true,
      "strategy":"group","group_size":32,"dynamic":false})"));
  EXPECT_EQ(args("mxfp8_e4m3", {8, 256}), nlohmann::json::parse(R"({"num_bits":8,"type":"float","symmetric":true,
      "strategy":"group","group_size":32,"dynamic":false,"scale_dtype":"torch.uint8"})"));
}

TEST(CompressedTensorsPlan, RefusesWhatItCannotStore) {
  struct Case {
    const char* spec;
    std::vector<uint64_t> shape;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"fp:e3m2/g32", {4, 64}, "element format"},
      {"int4/tensor", {4, 64}, "per channel or per group"},
      {"int4/g128", {4, 100}, "in_features 100 is not a multiple of 128"},
      {"int4/b16x16", {4, 64}, "per channel or per group"},
      {"int4/channel:1", {4, 64}, "per channel or per group"},
      {"int:12/channel", {4, 64}, "2- to 8-bit"},
      {"uint8/channel", {4, 64}, "need /asym"},
      {"int4/g32/asym=float", {4, 64}, "/asym=float"},
      {"int4/g32/outliers=0.01", {4, 64}, "outlier"},
      {"q4_0", {4, 64}, "llama.cpp"},
      {"nvint4", {4, 64}, "one level"},
      {"nvfp4/b16x16", {32, 64}, "nvfp4"},
      {"nvfp4", {4, 40}, "not a multiple of 16"},
      {"mxfp4", {4, 48}, "not a multiple of 32"},
      {"e2m1/g32/sf=e4m3fn", {4, 64}, "nvfp4"},
      {"e4m3fn/g128", {4, 128}, "mxfp8"},
      {"float8_e5m2/channel", {4, 64}, "element format"},
      {"int4/g32", {2, 4, 64}, "2-D"},
      {"int4/g32", {0, 64}, "2-D"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    const auto codec = parse_codec(c.spec);
    const Error e = catch_error([&] { plan_compressed_tensors(*codec, c.shape, "model.w.weight"); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    const std::string m = e.what();
    EXPECT_NE(m.find("compressed-tensors cannot store 'model.w.weight' with " + codec->spec()), std::string::npos) << m;
    EXPECT_NE(m.find(c.reason), std::string::npos) << m;
    EXPECT_NE(m.find("it stores int2..int8"), std::string::npos) << m;  // the list of what it can store
  }
}

// ------------------------------------------------------------ round trips

struct RoundTripCase {
  const char* spec;
  std::vector<uint64_t> shape;
};

// Schemes of every family, with shapes that are and are not multiples of
// the group, block and packing sizes wherever the layout allows them.
const std::vector<RoundTripCase>& round_trip_cases() {
  static const std::vector<RoundTripCase> cases = {
      {"int4/g128", {8, 256}},
      {"int4/g128/asym", {13, 384}},
      {"w4g128", {5, 128}},
      {"int4/g32/asym/sf=bf16", {9, 96}},
      {"int4/g64/scale=mse", {6, 128}},
      {"int4/channel", {7, 100}},
      {"int4/channel", {6, 101}},
      {"int4/channel/asym", {9, 77}},
      {"int8/channel", {5, 33}},
      {"w8", {4, 64}},
      {"int8/channel/asym", {6, 40}},
      {"int8/g32/asym/sf=fp32", {3, 64}},
      {"int:3/g32/asym", {11, 64}},
      {"int:2/g16", {10, 48}},
      {"int:5/channel", {3, 19}},
      {"int4/g32/scale=floor", {4, 64}},  // e8m0 scales, stored as float32 values
      {"float8_e4m3fn/tensor", {7, 45}},
      {"float8_e4m3fn/channel", {9, 31}},
      {"float8_e4m3fn/channel/sf=bf16", {4, 16}},
      {"float8_e4m3fn/b128x128", {200, 300}},
      {"float8_e4m3fn/b128x128", {256, 128}},
      {"e4m3fn/b32x16/sf=fp32", {70, 50}},
      {"e4m3fn/channel/scale=floor", {5, 64}},
      {"mxfp4", {6, 96}},
      {"mxfp4/scale=ceil", {3, 64}},
      {"mxfp8_e4m3", {4, 64}},
      {"e2m1/g16/sf=ue4m3", {4, 32}},  // one level: NVFP4 with a global scale of 1
  };
  return cases;
}

TEST_F(CompressedTensorsTest, RoundTripsEveryFamilyBitForBit) {
  const std::string module = "model.layers.0.mlp.down_proj";
  uint32_t seed = 1;
  for (const RoundTripCase& c : round_trip_cases()) {
    SCOPED_TRACE(c.spec + std::string(" ") + std::to_string(c.shape[0]) + "x" + std::to_string(c.shape[1]));
    const Scheme s = parse_scheme(c.spec);
    const auto x = normal(c.shape[0] * c.shape[1], seed++);
    const QuantizedTensor q = quantize({x.data(), c.shape}, s);
    const CtPlan p = plan_compressed_tensors(s, c.shape);
    const CtEncoded e = encode_compressed_tensors(p, q);
    EXPECT_TRUE(e.inexact.empty()) << e.inexact;
    ASSERT_EQ(e.tensors.size(), p.tensors.size());
    for (size_t i = 0; i < p.tensors.size(); ++i) {
      EXPECT_EQ(e.tensors[i].decl.suffix, p.tensors[i].suffix);
      EXPECT_EQ(e.tensors[i].bytes.size(), *tensor_nbytes(p.tensors[i].dtype, p.tensors[i].shape));
    }
    const std::string path = this->path("w.safetensors");
    write_module(path, module, p, e);
    const SafetensorsFile f = SafetensorsFile::open(path);
    const QuantizedTensor r = load_compressed_tensors_weight(f, module, p.format, p.args);
    EXPECT_EQ(r.shape, q.shape);
    EXPECT_TRUE(same_bits(dequantized(r), dequantized(q)));
  }
}

TEST_F(CompressedTensorsTest, NonFiniteBlocksStayNaN) {
  for (const char* spec : {"int4/g32", "float8_e4m3fn/channel", "nvfp4", "mxfp4", "int8/channel/asym"}) {
    SCOPED_TRACE(spec);
    std::vector<uint64_t> shape = {4, 64};
    auto x = normal(256, 3);
    x[70] = std::numeric_limits<float>::infinity();
    x[200] = std::numeric_limits<float>::quiet_NaN();
    const Scheme s = parse_scheme(spec);
    const QuantizedTensor q = quantize({x.data(), shape}, s);
    const CtPlan p = plan_compressed_tensors(s, shape);
    const CtEncoded e = encode_compressed_tensors(p, q);
    std::map<std::string, CtTensorView> views;
    for (const auto& t : e.tensors) {
      views[t.decl.suffix] = {t.decl.dtype, t.decl.shape,
                              {reinterpret_cast<const std::byte*>(t.bytes.data()), t.bytes.size()}};
    }
    const auto a = dequantized(q), b = dequantized(decode_compressed_tensors(p.format, p.args, views, "m"));
    EXPECT_TRUE(std::isnan(b[70]));
    EXPECT_TRUE(same_bits(a, b));
  }
}

// ------------------------------------------------------------ NVFP4's global scale

// Whether some float32 g has 1.0f / g == s, searched far wider than the
// encoder looks.
bool has_reciprocal(float s) {
  float up = 1.0f / s, down = up;
  for (int k = 0; k < 64; ++k) {
    if (1.0f / up == s || 1.0f / down == s) return true;
    up = std::nextafter(up, INFINITY);
    down = std::nextafter(down, 0.0f);
  }
  return false;
}

// NVFP4 data whose quantized tensor scale is exactly s (the tensor's amax
// is chosen so that amax / 2688 rounds to s), or nothing.
std::optional<QuantizedTensor> nvfp4_with_tensor_scale(float s, std::vector<float>& x) {
  x = normal(8 * 64, 9);
  for (auto& v : x) v = std::clamp(v, -3.0f, 3.0f) * s * 500.0f;
  x[5] = s * 2688.0f;
  const QuantizedTensor q = quantize({x.data(), {8, 64}}, parse_scheme("nvfp4"));
  if (q.tensor_scale != std::bit_cast<uint32_t>(s)) return std::nullopt;
  return q;
}

QuantizedTensor decode_encoded(const CtPlan& p, const CtEncoded& e) {
  std::map<std::string, CtTensorView> views;
  for (const auto& t : e.tensors) {
    views[t.decl.suffix] = {t.decl.dtype, t.decl.shape,
                            {reinterpret_cast<const std::byte*>(t.bytes.data()), t.bytes.size()}};
  }
  return decode_compressed_tensors(p.format, p.args, views, "m");
}

TEST(CompressedTensorsNvfp4, GlobalScaleIsTheReciprocalVllmInverts) {
  const CtPlan p = plan_compressed_tensors(parse_scheme("nvfp4"), {8, 64});
  int exact = 0, inexact = 0;
  // Tensor scales across the binade [2^-3, 2^-2): significands below sqrt 2
  // always have a reciprocal preimage, above it about 2 in 3 do.
  for (int i = 0; i < 400; ++i) {
    const float s = std::ldexp(1.0f + static_cast<float>(i) / 400.0f + 1e-4f, -3);
    std::vector<float> x;
    const auto q = nvfp4_with_tensor_scale(s, x);
    if (!q) continue;
    const CtEncoded e = encode_compressed_tensors(p, *q);
    float g;
    std::memcpy(&g, e.tensors[2].bytes.data(), 4);
    const QuantizedTensor r = decode_encoded(p, e);
    EXPECT_EQ(r.tensor_scale, std::bit_cast<uint32_t>(1.0f / g));  // what vLLM computes
    if (has_reciprocal(s)) {
      ++exact;
      EXPECT_TRUE(e.inexact.empty());
      EXPECT_EQ(1.0f / g, s);
      EXPECT_TRUE(same_bits(dequantized(r), dequantized(*q)));
    } else {
      ++inexact;
      EXPECT_NE(e.inexact.find("is not 1/g for any float32 g"), std::string::npos) << e.inexact;
      // One ulp away, and the read-back is q with that tensor scale.
      const uint32_t back = std::bit_cast<uint32_t>(1.0f / g), want = std::bit_cast<uint32_t>(s);
      EXPECT_EQ(back > want ? back - want : want - back, 1u);
      QuantizedTensor q2 = *q;
      q2.tensor_scale = back;
      EXPECT_TRUE(same_bits(dequantized(r), dequantized(q2)));
    }
  }
  EXPECT_GT(exact, 100);
  EXPECT_GT(inexact, 10);
}

// With QuantizeOptions::reciprocal_tensor_scale (what `lowbit quantize`
// sets for compressed-tensors NVFP4), every tensor scale has its
// reciprocal: vLLM reads back exactly the tensor lowbit quantized.
TEST(CompressedTensorsNvfp4, ReciprocalTensorScaleIsAlwaysExact) {
  const CtPlan p = plan_compressed_tensors(parse_scheme("nvfp4"), {8, 64});
  QuantizeOptions o;
  o.reciprocal_tensor_scale = true;
  int moved = 0;
  for (int i = 0; i < 400; ++i) {
    const float s = std::ldexp(1.0f + static_cast<float>(i) / 400.0f + 1e-4f, -3);
    std::vector<float> x;
    if (!nvfp4_with_tensor_scale(s, x)) continue;
    const QuantizedTensor q = quantize({x.data(), {8, 64}}, parse_scheme("nvfp4"), o);
    moved += q.tensor_scale != std::bit_cast<uint32_t>(s);
    const CtEncoded e = encode_compressed_tensors(p, q);
    EXPECT_TRUE(e.inexact.empty()) << e.inexact;
    const QuantizedTensor r = decode_encoded(p, e);
    EXPECT_EQ(r.tensor_scale, q.tensor_scale);
    EXPECT_TRUE(same_bits(dequantized(r), dequantized(q)));
  }
  EXPECT_GT(moved, 10);
}

TEST(CompressedTensorsNvfp4, AllZeroTensorStoresAnInfiniteGlobalScale) {
  const std::vector<float> x(4 * 32, 0.0f);
  const QuantizedTensor q = quantize({x.data(), {4, 32}}, parse_scheme("nvfp4"));
  const CtPlan p = plan_compressed_tensors(q.scheme, q.shape);
  const CtEncoded e = encode_compressed_tensors(p, q);
  float g;
  std::memcpy(&g, e.tensors[2].bytes.data(), 4);
  EXPECT_TRUE(std::isinf(g) && g > 0);  // 1 / inf = 0, the tensor scale
  EXPECT_TRUE(same_bits(dequantized(decode_encoded(p, e)), dequantized(q)));
}

// ------------------------------------------------------------ bad input

TEST(CompressedTensorsDecode, RejectsMalformedTensors) {
  const Scheme s = parse_scheme("int4/g32/asym");
  const std::vector<uint64_t> shape = {9, 64};
  const auto x = normal(9 * 64, 4);
  const CtPlan p = plan_compressed_tensors(s, shape);
  const CtEncoded e = encode_compressed_tensors(p, quantize({x.data(), shape}, s));
  std::vector<int64_t> neg = {-9, 64}, wide = {9, 72};
  const auto views = [&] {
    std::map<std::string, CtTensorView> v;
    for (const auto& t : e.tensors) {
      v[t.decl.suffix] = {t.decl.dtype, t.decl.shape,
                          {reinterpret_cast<const std::byte*>(t.bytes.data()), t.bytes.size()}};
    }
    return v;
  };
  struct Case {
    const char* what;
    std::function<void(std::map<std::string, CtTensorView>&, CtArgs&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"missing zero point", [](auto& v, auto&) { v.erase("weight_zero_point"); }, "no m.weight_zero_point"},
      {"packed dtype", [](auto& v, auto&) { v["weight_packed"].dtype = DType::kU32; }, "weight_packed has dtype U32"},
      {"scale shape", [](auto& v, auto&) { v["weight_scale"].shape = {2, 9}; }, "weight_scale has shape [2, 9]"},
      {"scale dtype", [](auto& v, auto&) { v["weight_scale"].dtype = DType::kI16; }, "expected F32 or F16 or BF16"},
      {"bytes", [](auto& v, auto&) { v["weight_scale"].bytes = v["weight_scale"].bytes.first(4); }, "holds 4 bytes"},
      {"negative shape",
       [&](auto& v, auto&) {
         v["weight_shape"].bytes = {reinterpret_cast<const std::byte*>(neg.data()), 16};
       },
       "weight_shape holds -9, 64"},
      {"shape vs packing",
       [&](auto& v, auto&) {
         v["weight_shape"].bytes = {reinterpret_cast<const std::byte*>(wide.data()), 16};
       },
       "weight_packed has shape [9, 8], expected [9, 9]"},
      {"zero point shape", [](auto& v, auto&) { v["weight_zero_point"].shape = {4, 1}; },
       "weight_zero_point has shape [4, 1]"},
      {"args type", [](auto&, auto& a) { a.type = "float"; }, "is not a layout lowbit reads"},
      {"args strategy", [](auto&, auto& a) { a.strategy = "tensor"; }, "is not a layout lowbit reads"},
      {"group vs in", [](auto&, auto& a) { a.group_size = 48; }, "not a multiple of group_size 48"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto v = views();
    CtArgs a = p.args;
    c.edit(v, a);
    const Error err = catch_error([&] { decode_compressed_tensors(p.format, a, v, "m"); });
    EXPECT_EQ(err.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(err.what()).find(c.message), std::string::npos) << err.what();
  }
}

TEST(CompressedTensorsDecode, RejectsBadNvfp4Scales) {
  const auto x = normal(4 * 32, 5);
  const QuantizedTensor q = quantize({x.data(), {4, 32}}, parse_scheme("nvfp4"));
  const CtPlan p = plan_compressed_tensors(q.scheme, q.shape);
  CtEncoded e = encode_compressed_tensors(p, q);
  CtEncoded neg = e;
  neg.tensors[1].bytes[3] |= 0x80;
  EXPECT_NE(std::string(catch_error([&] { decode_encoded(p, neg); }).what()).find("weight_scale element 3 is negative"),
            std::string::npos);
  for (float g : {0.0f, -1.0f, NAN}) {
    CtEncoded bad = e;
    std::memcpy(bad.tensors[2].bytes.data(), &g, 4);
    const Error err = catch_error([&] { decode_encoded(p, bad); });
    EXPECT_EQ(err.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(err.what()).find("it must be positive"), std::string::npos) << err.what();
  }
}

TEST_F(CompressedTensorsTest, MissingModuleNamesTheFile) {
  const Scheme s = parse_scheme("mxfp4");
  const auto x = normal(2 * 32, 6);
  const CtPlan p = plan_compressed_tensors(s, {2, 32});
  write_module(path("m.safetensors"), "a", p, encode_compressed_tensors(p, quantize({x.data(), {2, 32}}, s)));
  const SafetensorsFile f = SafetensorsFile::open(path("m.safetensors"));
  const Error e = catch_error([&] { load_compressed_tensors_weight(f, "b", p.format, p.args); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("has no b.weight_packed"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
}

TEST(CompressedTensorsEncode, RejectsATensorOfAnotherPlan) {
  const auto x = normal(4 * 64, 7);
  const QuantizedTensor q = quantize({x.data(), {4, 64}}, parse_scheme("int4/g32"));
  const CtPlan other = plan_compressed_tensors(parse_scheme("int4/g64"), {4, 64});
  EXPECT_EQ(catch_error([&] { encode_compressed_tensors(other, q); }).kind(), ErrorKind::kUsage);
  QuantizedTensor cut = q;
  cut.codes.pop_back();
  const CtPlan p = plan_compressed_tensors(q.scheme, q.shape);
  const Error e = catch_error([&] { encode_compressed_tensors(p, cut); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("codes hold 127 bytes"), std::string::npos) << e.what();
}

// ------------------------------------------------------------ quantization_config

std::vector<CtModule> model_modules() {
  const auto mod = [](const char* name, const char* spec, std::vector<uint64_t> shape) {
    return ct_module(name, plan_compressed_tensors(parse_scheme(spec), shape));
  };
  return {mod("model.layers.0.self_attn.q_proj", "int4/g128/asym", {256, 256}),
          mod("model.layers.0.self_attn.k_proj", "int4/g128/asym", {64, 256}),
          mod("model.layers.0.mlp.down_proj", "float8_e4m3fn/channel", {256, 512}),
          mod("model.layers.1.self_attn.q_proj", "int4/g128/asym", {256, 256})};
}

TEST(CompressedTensorsConfig, GroupsEqualArgsAndMarksMixedFormats) {
  const nlohmann::json c = ct_quantization_config(model_modules(), {"lm_head"});
  EXPECT_EQ(c["quant_method"], "compressed-tensors");
  EXPECT_EQ(c["quantization_status"], "compressed");
  EXPECT_EQ(c["format"], "mixed-precision");
  EXPECT_EQ(c["ignore"], nlohmann::json::array({"lm_head"}));
  ASSERT_EQ(c["config_groups"].size(), 2u);
  const auto& g0 = c["config_groups"]["group_0"];
  EXPECT_EQ(g0["format"], "pack-quantized");
  EXPECT_EQ(g0["targets"], nlohmann::json::array({"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                                  "model.layers.1.self_attn.q_proj"}));
  EXPECT_EQ(g0["weights"]["symmetric"], false);
  EXPECT_TRUE(g0["input_activations"].is_null());
  EXPECT_EQ(c["config_groups"]["group_1"]["format"], "float-quantized");
  // One format: no per-group format, the format at the top.
  auto one = model_modules();
  one.erase(one.begin() + 2);
  const nlohmann::json c1 = ct_quantization_config(one);
  EXPECT_EQ(c1["format"], "pack-quantized");
  EXPECT_FALSE(c1["config_groups"]["group_0"].contains("format"));
}

TEST(CompressedTensorsConfig, ParsesWhatItWrites) {
  const auto mods = model_modules();
  const nlohmann::json root = {{"architectures", {"LlamaForCausalLM"}},
                               {"quantization_config", ct_quantization_config(mods, {"lm_head"})}};
  const CtQuantizationConfig c = parse_ct_quantization_config(root.dump(2), "config.json");
  for (const CtModule& m : mods) {
    const auto* g = c.find(m.name);
    ASSERT_NE(g, nullptr) << m.name;
    EXPECT_EQ(g->format, m.format);
    EXPECT_EQ(g->args, m.args);
  }
  EXPECT_EQ(c.find("lm_head", "Linear"), nullptr);
  EXPECT_EQ(c.find("model.layers.0.mlp.up_proj"), nullptr);
}

// A config as llm-compressor writes it (fields of several versions): class
// targets, regex ignores, observer fields, an explicit null block_structure.
TEST(CompressedTensorsConfig, ParsesLlmCompressorStyle) {
  const char* text = R"({"quantization_config": {
    "config_groups": {"group_0": {"input_activations": null, "output_activations": null, "targets": ["Linear"],
      "weights": {"actorder": null, "block_structure": null, "dynamic": false, "group_size": 128, "num_bits": 4,
                  "observer": "minmax", "observer_kwargs": {}, "strategy": "group", "symmetric": true,
                  "type": "int"}}},
    "format": "pack-quantized", "global_compression_ratio": null, "ignore": ["lm_head", "re:.*mlp.gate$"],
    "kv_cache_scheme": null, "quant_method": "compressed-tensors", "quantization_status": "compressed",
    "sparsity_config": {}, "transform_config": {}, "version": "0.12.2"}})";
  const CtQuantizationConfig c = parse_ct_quantization_config(std::string_view(text), "config.json");
  ASSERT_EQ(c.groups.size(), 1u);
  const auto* g = c.find("model.layers.3.self_attn.o_proj", "Linear");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->format, CtFormat::kPackQuantized);
  EXPECT_EQ(g->args.group_size, 128u);
  EXPECT_EQ(c.find("model.layers.3.mlp.gate", "Linear"), nullptr);     // ignored by regex
  EXPECT_EQ(c.find("lm_head", "Linear"), nullptr);                     // ignored by name
  EXPECT_EQ(c.find("model.embed_tokens", "Embedding"), nullptr);       // no target
  // Strategy inferred from group_size, "RxC" block structures.
  const CtArgs a =
      ct_args_from_json(nlohmann::json::parse(R"({"num_bits": 8, "type": "float", "group_size": -1})"), "w");
  EXPECT_EQ(a.strategy, "channel");
  const CtArgs b = ct_args_from_json(
      nlohmann::json::parse(R"({"num_bits": 8, "type": "float", "strategy": "block", "block_structure": "128x64"})"),
      "w");
  EXPECT_EQ(b.block_structure, (std::array<uint64_t, 2>{128, 64}));
}

TEST(CompressedTensorsConfig, RejectsMalformedConfigs) {
  const std::string good_args = R"({"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128})";
  const auto config = [&](const std::string& group_extra, const std::string& top_extra, const std::string& args) {
    return R"({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {
      "targets": ["Linear"], "weights": )" + args + group_extra + "}}" + top_extra + "}";
  };
  struct Case {
    std::string text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"{", "not valid JSON"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper"},
      {R"({"quantization_config": {"quant_method": "gptq"}})", "quant_method is \"gptq\""},
      {config("", R"(, "quantization_status": "frozen")", good_args), "not stored compressed"},
      {config(R"(, "format": "marlin-24")", "", good_args), "format 'marlin-24' is not one lowbit reads"},
      {R"({"quant_method": "compressed-tensors", "format": "mixed-precision", "config_groups": {"g": {
          "targets": ["Linear"], "weights": )" + good_args + "}}}",
       "needs a format in each group"},
      {config(R"(, "extra": 1)", "", good_args), "unknown field 'extra'"},
      {config("", "", R"({"num_bits": 4, "foo": 1})"), "unknown quantization args field 'foo'"},
      {config("", "", R"({"num_bits": 4, "dynamic": true})"), "dynamic weight quantization"},
      {config("", "", R"({"num_bits": 4, "strategy": "group", "group_size": 128, "actorder": "group"})"),
       "needs weight_g_idx"},
      {config("", "", R"({"num_bits": 4, "strategy": "group"})"), "needs a positive group_size"},
      {config("", "", R"({"num_bits": 4, "strategy": "block"})"), "block_structure goes with strategy block"},
      {config("", "", R"({"num_bits": "4"})"), "num_bits must be an integer"},
      {config("", "", R"({"type": "posit"})"), "neither int nor float"},
      {R"({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"g": {
          "targets": ["re:(["], "weights": )" + good_args + "}}}",
       "not a valid regular expression"},
      {R"({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"g": {
          "targets": [], "weights": )" + good_args + "}}}",
       "has no targets"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    const Error e = catch_error([&] { parse_ct_quantization_config(std::string_view(c.text), "cfg.json"); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("cfg.json", 0), 0u) << e.what();
  }
}

TEST(CompressedTensorsConfig, BuilderRefusesBadModuleLists) {
  auto mods = model_modules();
  EXPECT_EQ(catch_error([&] { ct_quantization_config({}); }).kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(catch_error([&] { ct_quantization_config(mods, {mods[1].name}); }).what())
                .find("both quantized and ignored"),
            std::string::npos);
  mods.push_back(mods[0]);
  EXPECT_NE(std::string(catch_error([&] { ct_quantization_config(mods); }).what()).find("listed twice"),
            std::string::npos);
}

// ------------------------------------------------------------ samples for the Python check

// With LOWBIT_CT_TEST_OUT set, writes checkpoints for
// tests/python/test_compressed_tensors.py: per case <case>.safetensors and
// <case>.config.json, and per module <case>.<module>.input.npy (float32
// input), .lowbit.npy (lowbit's x_hat) and .readback.npy (the x_hat of what
// lowbit reads back), listed in cases.json.
TEST(CompressedTensorsSamples, WriteForPython) {
  const char* dir = std::getenv("LOWBIT_CT_TEST_OUT");
  if (!dir || !*dir) GTEST_SKIP() << "LOWBIT_CT_TEST_OUT is not set";
  struct Module {
    std::string name, spec;
    std::vector<uint64_t> shape;
    std::vector<float> data;  // empty: normal(seed)
  };
  struct Case {
    std::string name;
    std::vector<Module> modules;
  };
  std::vector<Case> cases;
  int k = 0;
  for (const RoundTripCase& c : round_trip_cases()) {
    cases.push_back({"case" + std::to_string(k++), {{"model.layers.0.mlp.down_proj", c.spec, c.shape, {}}}});
  }
  cases.push_back({"nvfp4", {{"model.layers.0.mlp.down_proj", "nvfp4", {16, 128}, {}}}});
  cases.push_back({"mixed",
                   {{"model.layers.0.self_attn.q_proj", "w4g128", {128, 256}, {}},
                    {"model.layers.0.self_attn.o_proj", "int8/channel/sf=bf16", {256, 128}, {}},
                    {"model.layers.0.mlp.up_proj", "float8_e4m3fn/b128x128", {300, 256}, {}},
                    {"model.layers.0.mlp.down_proj", "nvfp4", {256, 300 - 300 % 16}, {}}}});
  // NVFP4 whose tensor scale no float32 global scale inverts exactly.
  for (int i = 399;; --i) {
    const float s = std::ldexp(1.0f + static_cast<float>(i) / 400.0f + 1e-4f, -3);
    std::vector<float> x;
    if (has_reciprocal(s) || !nvfp4_with_tensor_scale(s, x)) continue;
    cases.push_back({"nvfp4_inexact", {{"model.layers.0.mlp.down_proj", "nvfp4", {8, 64}, x}}});
    break;
  }
  nlohmann::json manifest = nlohmann::json::array();
  uint32_t seed = 100;
  for (const Case& c : cases) {
    std::vector<CtModule> mods;
    std::vector<CtPlan> plans;
    std::vector<CtEncoded> encs;
    nlohmann::json entry = {{"name", c.name}, {"modules", nlohmann::json::array()}};
    for (const Module& m : c.modules) {
      const Scheme s = parse_scheme(m.spec);
      const auto x = m.data.empty() ? normal(m.shape[0] * m.shape[1], seed++) : m.data;
      const QuantizedTensor q = quantize({x.data(), m.shape}, s);
      plans.push_back(plan_compressed_tensors(s, m.shape, m.name));
      encs.push_back(encode_compressed_tensors(plans.back(), q));
      mods.push_back(ct_module(m.name, plans.back()));
      const std::string base = std::string(dir) + "/" + c.name + "." + m.name;
      npy_write_atomic(base + ".input.npy", "<f4", m.shape, x.data(), x.size() * 4);
      const auto xh = dequantized(q), rb = dequantized(decode_encoded(plans.back(), encs.back()));
      npy_write_atomic(base + ".lowbit.npy", "<f4", m.shape, xh.data(), xh.size() * 4);
      npy_write_atomic(base + ".readback.npy", "<f4", m.shape, rb.data(), rb.size() * 4);
      entry["modules"].push_back({{"name", m.name},
                                  {"scheme", s.spec()},
                                  {"shape", m.shape},
                                  {"exact", encs.back().inexact.empty()}});
    }
    SafetensorsWriter w(std::string(dir) + "/" + c.name + ".safetensors");
    std::vector<std::vector<size_t>> idx;
    for (size_t i = 0; i < plans.size(); ++i) idx.push_back(declare_compressed_tensors(w, c.modules[i].name, plans[i]));
    w.begin();
    for (size_t i = 0; i < plans.size(); ++i) write_compressed_tensors(w, idx[i], encs[i]);
    w.commit();
    const std::string cfg = nlohmann::json{{"quantization_config", ct_quantization_config(mods, {"lm_head"})}}.dump(2);
    write_file_atomic(std::string(dir) + "/" + c.name + ".config.json", cfg.data(), cfg.size());
    manifest.push_back(entry);
  }
  const std::string m = manifest.dump(2);
  write_file_atomic(std::string(dir) + "/cases.json", m.data(), m.size());
}

}  // namespace
}  // namespace lowbit

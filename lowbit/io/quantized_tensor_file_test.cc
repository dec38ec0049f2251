#include "lowbit/io/quantized_tensor_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lowbit/ggml/codec_registry.h"
#include "lowbit/core/error.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lowbit_qtf_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<float> data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  v[3] = 40.0f;  // something for outlier schemes to take
  return v;
}

// Every component round-trips, and the loaded tensor dequantizes to the
// same bits as the one that was saved.
TEST(QuantizedTensorFile, RoundTripsEveryKindOfScheme) {
  const std::vector<uint64_t> shape = {6, 96};
  const auto x = data(6 * 96, 5);
  for (const char* spec : {"mxfp4", "mxfp6_e3m2", "nvfp4", "nvfp4/b16x16", "int4/g32/asym", "int3/g32/asym=float",
                           "int8/channel", "e4m3fn/tensor", "ternary/g32", "q4_0", "q8_0", "posit8_1/g16",
                           "int4/g32/outliers=0.02", "int4/g32/outliers=3sigma:plain", "e2m1/g16/sf=fp:e3m2"}) {
    SCOPED_TRACE(spec);
    const QuantizedTensor q = parse_codec(spec)->quantize({x.data(), shape});
    const std::string path = temp_path("rt.safetensors");
    save_quantized_tensors(path, {{"w", &q}});
    const SafetensorsFile f = SafetensorsFile::open(path);
    const QuantizedTensor r = load_quantized_tensor(f);
    EXPECT_EQ(r.spec(), q.spec());
    EXPECT_EQ(r.fixed_codec, q.fixed_codec);
    EXPECT_EQ(r.shape, q.shape);
    EXPECT_EQ(r.codes, q.codes);
    EXPECT_EQ(r.scales, q.scales);
    EXPECT_EQ(r.zeros, q.zeros);
    EXPECT_EQ(r.tensor_scale, q.tensor_scale);
    EXPECT_EQ(r.outliers.count, q.outliers.count);
    EXPECT_EQ(r.outliers.positions, q.outliers.positions);
    EXPECT_EQ(r.outliers.values, q.outliers.values);
    EXPECT_EQ(r.bits_per_element(), q.bits_per_element());
    std::vector<float> a(x.size()), b(x.size());
    dequantize(q, a.data());
    dequantize(r, b.data());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    std::filesystem::remove(path);
  }
}

TEST(QuantizedTensorFile, NaturalDtypesForScales) {
  const auto x = data(64, 1);
  const QuantizedTensor q = quantize({x.data(), {64}}, parse_scheme("mxfp4"));
  const std::string path = temp_path("dt.safetensors");
  save_quantized_tensors(path, {{"t", &q}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.at("t.scales").dtype, DType::kF8_E8M0);
  EXPECT_EQ(f.at("t.codes").dtype, DType::kU8);
  EXPECT_EQ(f.metadata().at("t.scheme"), q.scheme.spec());
  std::filesystem::remove(path);
}

TEST(QuantizedTensorFile, SeveralTensorsNeedAName) {
  const auto x = data(64, 2);
  const QuantizedTensor a = quantize({x.data(), {64}}, parse_scheme("mxfp4"));
  const QuantizedTensor b = quantize({x.data(), {2, 32}}, parse_scheme("int8/channel"));
  const std::string path = temp_path("two.safetensors");
  save_quantized_tensors(path, {{"a", &a}, {"b", &b}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_THROW(load_quantized_tensor(f), Error);
  EXPECT_EQ(load_quantized_tensor(f, "b").scales, b.scales);
  std::filesystem::remove(path);
}

// A file whose components do not match its scheme and shape is refused with
// a message, not read out of bounds.
TEST(QuantizedTensorFile, MismatchedComponentsAreInputErrors) {
  const std::string path = temp_path("bad.safetensors");
  // 64 mxfp4 elements need 32 code bytes and 2 scales; this file has 16.
  const std::vector<uint8_t> codes(16, 0), scales(2, 127);
  write_safetensors(path,
                    {{"lowbit.layout", "quantized_tensor/1"},
                     {"lowbit.tensors", "[\"w\"]"},
                     {"w.scheme", parse_scheme("mxfp4").spec()},
                     {"w.shape", "[64]"},
                     {"w.outliers", "0 6 0"}},
                    {{"w.codes", DType::kU8, {16}, codes.data()}, {"w.scales", DType::kU8, {2}, scales.data()}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  try {
    (void)load_quantized_tensor(f);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("w.codes"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  // A safetensors file that is not a quantized tensor.
  const float v = 1.0f;
  write_safetensors(path, {}, {{"plain", DType::kF32, {1}, &v}});
  const SafetensorsFile g = SafetensorsFile::open(path);
  EXPECT_THROW(load_quantized_tensor(g), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lowbit

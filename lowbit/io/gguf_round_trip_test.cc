// Every metadata value type and a range of tensor types through GgufWriter
// and back through GgufFile, bit for bit; and the bridge to gguf-py, the
// reference implementation, for tests/python/test_gguf_io.py:
//
//   LOWBIT_GGUF_TEST_OUT=DIR gguf_round_trip_test --gtest_filter='*EveryValueType*'
//     writes DIR/lowbit_all_types.gguf and DIR/lowbit_all_types.json, the
//     manifest of what was handed to the writer (not what was read back);
//     the Python test reads the GGUF with gguf-py and compares.
//   LOWBIT_GGUF_TEST_IN=FILE LOWBIT_GGUF_TEST_OUT=DIR gguf_round_trip_test
//       --gtest_filter='*Describe*'
//     reads FILE (written by gguf-py's GGUFWriter) with lowbit and writes
//     the manifest of what it read to DIR/<FILE's name>.json.
//
// The manifest lists every metadata entry in order with its complete value
// (floats as their bits, strings as hex, so nothing is lost to JSON), and
// every tensor's name, ne, ggml type name, offset and bytes (hex).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/core/file_io.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

class GgufRoundTripTest : public testing_support::TempDirTest {};

std::string hex(const void* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<const unsigned char*>(data)[i];
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// A value in the manifest's lossless form.
Json manifest_value(const GgufValue& v) {
  Json out = {{"type", gguf_type_name(v.type())}};
  switch (v.type()) {
    case GgufType::kString:
      out["hex"] = hex(v.as_string().data(), v.as_string().size());
      return out;
    case GgufType::kArray: {
      out["element_type"] = gguf_type_name(v.element_type());
      Json items = Json::array();
      for (size_t i = 0; i < v.size(); ++i) {
        switch (v.element_type()) {
          case GgufType::kString:
            items.push_back(manifest_value(GgufValue::of(v.strings()[i])));
            break;
          case GgufType::kArray:
            items.push_back(manifest_value(v.arrays()[i]));
            break;
          default:
            items.push_back(manifest_value(GgufValue::from_bits(v.element_type(), v.element_bits(i))));
        }
      }
      out["items"] = std::move(items);
      return out;
    }
    case GgufType::kBool:
      out["value"] = v.as<bool>();
      return out;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      out["bits"] = v.bits();
      return out;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: {
      const unsigned shift = 64 - 8 * static_cast<unsigned>(gguf_fixed_size(v.type()));
      out["value"] = static_cast<int64_t>(v.bits() << shift) >> shift;
      return out;
    }
    default:
      out["value"] = v.bits();
      return out;
  }
}

struct TensorRecord {
  std::string name;
  std::vector<uint64_t> ne;
  GgmlType type;
  uint64_t offset;
  std::vector<std::byte> bytes;
};

Json manifest(const std::vector<GgufKv>& metadata, const std::vector<TensorRecord>& tensors) {
  Json meta = Json::array();
  for (const GgufKv& kv : metadata) meta.push_back({{"key", kv.key}, {"value", manifest_value(kv.value)}});
  Json ts = Json::array();
  for (const TensorRecord& t : tensors) {
    ts.push_back({{"name", t.name},
                  {"ne", t.ne},
                  {"type", std::string(ggml_type_info(t.type).name)},
                  {"offset", t.offset},
                  {"hex", hex(t.bytes.data(), t.bytes.size())}});
  }
  return {{"metadata", std::move(meta)}, {"tensors", std::move(ts)}};
}

Json manifest_of(const GgufFile& f) {
  std::vector<TensorRecord> tensors;
  for (const GgufTensorInfo& t : f.tensors()) {
    tensors.push_back({t.name, t.ne, t.type, t.offset, {t.bytes().begin(), t.bytes().end()}});
  }
  return manifest(f.metadata(), tensors);
}

template <typename T>
GgufValue extremes() {
  return GgufValue::array(std::vector<T>{std::numeric_limits<T>::lowest(), T{0}, std::numeric_limits<T>::max()});
}

// Every value type, with the values most likely to be mangled: extremes,
// NaN payloads, signed zero, subnormals, empty and non-UTF-8 strings, empty
// arrays, and arrays of arrays.
std::vector<GgufKv> every_value_type() {
  const auto f32 = [](uint32_t bits) { return GgufValue::from_bits(GgufType::kFloat32, bits); };
  const auto f64 = [](uint64_t bits) { return GgufValue::from_bits(GgufType::kFloat64, bits); };
  std::vector<GgufKv> kv = {
      {"general.architecture", GgufValue::of("llama")},
      {"u8.min", GgufValue::of(uint8_t{0})},
      {"u8.max", GgufValue::of(std::numeric_limits<uint8_t>::max())},
      {"i8.min", GgufValue::of(std::numeric_limits<int8_t>::min())},
      {"i8.max", GgufValue::of(std::numeric_limits<int8_t>::max())},
      {"u16.max", GgufValue::of(std::numeric_limits<uint16_t>::max())},
      {"i16.min", GgufValue::of(std::numeric_limits<int16_t>::min())},
      {"u32.max", GgufValue::of(std::numeric_limits<uint32_t>::max())},
      {"i32.min", GgufValue::of(std::numeric_limits<int32_t>::min())},
      {"u64.max", GgufValue::of(std::numeric_limits<uint64_t>::max())},
      {"i64.min", GgufValue::of(std::numeric_limits<int64_t>::min())},
      {"i64.max", GgufValue::of(std::numeric_limits<int64_t>::max())},
      {"f32.one_and_half", GgufValue::of(1.5f)},
      {"f32.negative_zero", f32(0x80000000u)},
      {"f32.inf", f32(0x7f800000u)},
      {"f32.snan_payload", f32(0x7fa00001u)},  // signaling NaN: must not be quieted
      {"f32.qnan_negative", f32(0xffc00123u)},
      {"f32.subnormal_min", f32(0x00000001u)},
      {"f32.max", GgufValue::of(std::numeric_limits<float>::max())},
      {"f64.pi", GgufValue::of(3.141592653589793)},
      {"f64.snan_payload", f64(0x7ff0000000000001u)},
      {"f64.negative_inf", f64(0xfff0000000000000u)},
      {"f64.subnormal", f64(0x000fffffffffffffu)},
      {"bool.true", GgufValue::of(true)},
      {"bool.false", GgufValue::of(false)},
      {"string.empty", GgufValue::of("")},
      {"string.utf8", GgufValue::of("h\xc3\xa9llo \xe2\x9c\x93 {{ messages }}\n")},
      {"string.nul_inside", GgufValue::of(std::string("a\0b", 3))},
      {"string.not_utf8", GgufValue::of("\xff\xfe")},
      {"array.u8", extremes<uint8_t>()},
      {"array.i8", extremes<int8_t>()},
      {"array.u16", extremes<uint16_t>()},
      {"array.i16", extremes<int16_t>()},
      {"array.u32", extremes<uint32_t>()},
      {"array.i32", extremes<int32_t>()},
      {"array.u64", extremes<uint64_t>()},
      {"array.i64", extremes<int64_t>()},
      {"array.f32", GgufValue::array_from_raw(GgufType::kFloat32, {std::byte{0x01}, std::byte{0x00}, std::byte{0xa0},
                                                                   std::byte{0x7f}, std::byte{0x00}, std::byte{0x00},
                                                                   std::byte{0x00}, std::byte{0x80}})},  // sNaN, -0
      {"array.f64", GgufValue::array(std::vector<double>{-1.0, 1e-300, std::numeric_limits<double>::infinity()})},
      {"array.bool", GgufValue::array(std::vector<bool>{true, false, false, true})},
      {"array.strings", GgufValue::array(std::vector<std::string>{"<s>", "", "\xc4\xa0the", std::string(300, 'x')})},
      {"array.empty_u8", GgufValue::empty_array(GgufType::kUint8)},
      {"array.empty_strings", GgufValue::empty_array(GgufType::kString)},
      {"array.empty_arrays", GgufValue::empty_array(GgufType::kArray)},
      {"array.nested",
       GgufValue::array(std::vector<GgufValue>{
           GgufValue::array(std::vector<uint32_t>{1, 2, 3}), GgufValue::array(std::vector<std::string>{"a", ""}),
           GgufValue::empty_array(GgufType::kFloat32),
           GgufValue::array(std::vector<GgufValue>{GgufValue::array(std::vector<int64_t>{-5})})})},
  };
  std::vector<int32_t> long_array(1000);
  for (size_t i = 0; i < long_array.size(); ++i) long_array[i] = static_cast<int32_t>(i * i) - 7;
  kv.push_back({"array.long", GgufValue::array(long_array)});
  kv.push_back({"general.alignment", GgufValue::of(uint32_t{64})});
  return kv;
}

struct TensorSpec {
  const char* name;
  std::vector<uint64_t> ne;
  GgmlType type;
};

// Plain types, classic and K-quant blocks, and the edge shapes.
const std::vector<TensorSpec> kTensors = {
    {"f32", {5, 3}, GgmlType::kF32},          {"f16", {8}, GgmlType::kF16},
    {"bf16", {4, 2}, GgmlType::kBF16},        {"q4_0", {64, 2}, GgmlType::kQ4_0},
    {"q4_1", {32, 3}, GgmlType::kQ4_1},       {"q8_0", {32}, GgmlType::kQ8_0},
    {"q4_k", {256, 2}, GgmlType::kQ4_K},      {"q6_k", {256}, GgmlType::kQ6_K},
    {"iq4_nl", {32}, GgmlType::kIQ4_NL},      {"tq2_0", {256}, GgmlType::kTQ2_0},
    {"mxfp4", {32, 1, 2}, GgmlType::kMXFP4},  {"i8", {7}, GgmlType::kI8},
    {"i16", {3}, GgmlType::kI16},             {"i32", {3}, GgmlType::kI32},
    {"i64", {2}, GgmlType::kI64},             {"f64", {2}, GgmlType::kF64},
    {"empty", {0, 4}, GgmlType::kF32},        {"scalar", {}, GgmlType::kF32},
    {"four_dims", {2, 3, 1, 2}, GgmlType::kF16},
};

std::vector<std::byte> pattern(size_t n, size_t seed) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 131 + seed * 17 + 3) & 0xff);
  return out;
}

fs::path out_dir(const fs::path& fallback) {
  const char* dir = std::getenv("LOWBIT_GGUF_TEST_OUT");
  return dir != nullptr && *dir != '\0' ? fs::path(dir) : fallback;
}

TEST_F(GgufRoundTripTest, EveryValueTypeAndTensorType) {
  const fs::path dir = out_dir(dir_);
  const std::string file = (dir / "lowbit_all_types.gguf").string();
  const std::vector<GgufKv> metadata = every_value_type();
  std::vector<TensorRecord> written;
  {
    GgufWriter w(file);
    for (const GgufKv& kv : metadata) w.add_metadata(kv.key, kv.value);
    for (const TensorSpec& s : kTensors) w.declare_tensor(s.name, s.ne, s.type);
    w.begin();
    for (size_t i = 0; i < kTensors.size(); ++i) {
      written.push_back({kTensors[i].name, kTensors[i].ne, kTensors[i].type, w.tensor_offset(i),
                         pattern(static_cast<size_t>(w.tensor_nbytes(i)), i)});
      w.write_tensor_data(i, written.back().bytes.data(), written.back().bytes.size());
    }
    w.commit();
  }
  const Json expected = manifest(metadata, written);
  const std::string text = expected.dump(1);
  write_file_atomic((dir / "lowbit_all_types.json").string(), text.data(), text.size());

  const GgufFile f = GgufFile::open(file);
  EXPECT_EQ(f.metadata(), metadata);  // bitwise, NaN payloads included
  EXPECT_EQ(manifest_of(f), expected);
  EXPECT_EQ(f.alignment(), 64u);
  // Typed access to a few of them.
  EXPECT_EQ(f.get_i64("i64.min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_u64("u64.max"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_string("string.nul_inside"), std::string("a\0b", 3));
  EXPECT_EQ(f.get_strings("array.strings")[3], std::string(300, 'x'));
  EXPECT_EQ(f.get_array<bool>("array.bool"), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(f.at("f32.snan_payload").bits(), 0x7fa00001u);
  EXPECT_EQ(f.at("array.nested").arrays()[3].arrays()[0].to_vector<int64_t>(), std::vector<int64_t>{-5});

  // A rewrite of what was read reproduces the file byte for byte.
  {
    GgufWriter w(path("copy.gguf"));
    w.copy_metadata(f);
    for (const GgufTensorInfo& t : f.tensors()) w.declare_tensor(t.name, t.ne, t.type);
    w.begin();
    for (size_t i = 0; i < f.tensors().size(); ++i) w.write_tensor_data(i, f.tensors()[i].data, f.tensors()[i].nbytes);
    w.commit();
  }
  EXPECT_EQ(read_file(path("copy.gguf")), read_file(file));
}

TEST(GgufInterop, DescribeFileForPython) {
  const char* in = std::getenv("LOWBIT_GGUF_TEST_IN");
  const char* out = std::getenv("LOWBIT_GGUF_TEST_OUT");
  if (in == nullptr || out == nullptr) GTEST_SKIP() << "set LOWBIT_GGUF_TEST_IN and LOWBIT_GGUF_TEST_OUT";
  const GgufFile f = GgufFile::open(in);
  const std::string text = manifest_of(f).dump(1);
  const fs::path target = fs::path(out) / (fs::path(in).filename().string() + ".json");
  write_file_atomic(target.string(), text.data(), text.size());
}

}  // namespace
}  // namespace lowbit

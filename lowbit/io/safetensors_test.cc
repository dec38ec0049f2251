#include "lowbit/io/safetensors.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

namespace fs = std::filesystem;

// ------------------------------------------------------------ helpers

class SafetensorsTest : public testing_support::TempDirTest {};

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

void append_le64(std::vector<std::byte>* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<std::byte>((value >> (8 * i)) & 0xff));
}

// A crafted file: the 8-byte length (the header's own length unless
// overridden), the header text, then `buffer_size` bytes of data.
std::vector<std::byte> craft(std::string_view header, size_t buffer_size,
                             std::optional<uint64_t> length = std::nullopt) {
  std::vector<std::byte> out;
  append_le64(&out, length.value_or(header.size()));
  const auto text = bytes_of(header);
  out.insert(out.end(), text.begin(), text.end());
  out.resize(out.size() + buffer_size, std::byte{0x5a});
  return out;
}

// Parses crafted bytes that must be rejected, and checks that the error is
// ErrorKind::kInput, names the file, and contains every given fragment.
void expect_invalid(const std::vector<std::byte>& bytes, std::vector<std::string> fragments) {
  const Error e = catch_error([&] { SafetensorsFile::from_memory(bytes, "crafted.safetensors"); });
  const std::string message = e.what();
  EXPECT_EQ(e.kind(), ErrorKind::kInput) << message;
  EXPECT_EQ(message.rfind("invalid safetensors file 'crafted.safetensors': ", 0), 0u) << message;
  for (const std::string& fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos)
        << "message lacks \"" << fragment << "\": " << message;
  }
}

// A one-tensor header: name "t", the given members spliced in.
std::string one_tensor(const std::string& members) { return "{\"t\":{" + members + "}}"; }

std::vector<std::byte> read_all(const std::string& p) { return read_file(p); }

// ------------------------------------------------------------ dtypes

TEST(SafetensorsDType, NamesRoundTripAndBits) {
  EXPECT_EQ(all_dtypes().size(), 20u);
  for (DType dtype : all_dtypes()) {
    EXPECT_EQ(parse_dtype(dtype_name(dtype)), dtype);
    EXPECT_EQ(find_dtype(dtype_name(dtype)), dtype);
  }
  EXPECT_STREQ(dtype_name(DType::kBool), "BOOL");
  EXPECT_STREQ(dtype_name(DType::kF8_E4M3), "F8_E4M3");
  EXPECT_STREQ(dtype_name(DType::kF6_E2M3), "F6_E2M3");
  EXPECT_STREQ(dtype_name(DType::kBF16), "BF16");
  EXPECT_EQ(dtype_bits(DType::kF4), 4u);
  EXPECT_EQ(dtype_bits(DType::kF6_E2M3), 6u);
  EXPECT_EQ(dtype_bits(DType::kF6_E3M2), 6u);
  EXPECT_EQ(dtype_bits(DType::kBool), 8u);
  EXPECT_EQ(dtype_bits(DType::kF8_E8M0), 8u);
  EXPECT_EQ(dtype_bits(DType::kBF16), 16u);
  EXPECT_EQ(dtype_bits(DType::kU32), 32u);
  EXPECT_EQ(dtype_bits(DType::kC64), 64u);
  EXPECT_EQ(dtype_bits(DType::kU64), 64u);
}

TEST(SafetensorsDType, UnknownNameIsAnInputError) {
  EXPECT_FALSE(find_dtype("f32"));  // names are case-sensitive, as upstream
  const Error e = catch_error([] { parse_dtype("F7"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("unknown safetensors dtype 'F7'"), std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
}

TEST(SafetensorsDType, TensorByteSizes) {
  const std::vector<uint64_t> scalar;
  EXPECT_EQ(tensor_nbytes(DType::kF32, scalar), 4u);
  EXPECT_EQ(tensor_nbytes(DType::kF32, std::vector<uint64_t>{2, 3}), 24u);
  EXPECT_EQ(tensor_nbytes(DType::kF64, std::vector<uint64_t>{0, 5}), 0u);
  EXPECT_EQ(tensor_nbytes(DType::kF4, std::vector<uint64_t>{4}), 2u);
  EXPECT_EQ(tensor_nbytes(DType::kF6_E3M2, std::vector<uint64_t>{4}), 3u);
  // Upstream refuses sub-byte tensors that end inside a byte.
  EXPECT_FALSE(tensor_nbytes(DType::kF4, std::vector<uint64_t>{3}));
  EXPECT_FALSE(tensor_nbytes(DType::kF4, scalar));
  EXPECT_FALSE(tensor_nbytes(DType::kF6_E2M3, std::vector<uint64_t>{2}));
  EXPECT_FALSE(tensor_nbytes(DType::kU8, std::vector<uint64_t>{1ull << 32, 1ull << 32}));
  EXPECT_FALSE(tensor_nbytes(DType::kF64, std::vector<uint64_t>{1ull << 62}));
  EXPECT_FALSE(tensor_nbytes(static_cast<DType>(200), scalar));
}

// ------------------------------------------------------------ round trips

TEST_F(SafetensorsTest, RoundTripEveryDTypeAndShape) {
  struct Expected {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Expected> expected;
  uint32_t seed = 1;
  for (DType dtype : all_dtypes()) {
    const std::string base = dtype_name(dtype);
    // 2x4 fills whole bytes for every dtype (F4: 4 bytes, F6: 6 bytes).
    std::vector<std::vector<uint64_t>> shapes = {{2, 4}, {0}, {3, 0, 2}, {8}};
    if (dtype_bits(dtype) % 8 == 0) shapes.push_back({});  // a scalar
    for (size_t i = 0; i < shapes.size(); ++i) {
      const uint64_t n = *tensor_nbytes(dtype, shapes[i]);
      expected.push_back({base + "." + std::to_string(i), dtype, shapes[i], random_bytes(n, seed++)});
    }
  }

  SafetensorsWriter writer(path("all.safetensors"));
  writer.add_metadata("format", "pt");
  for (const Expected& e : expected) writer.declare(e.name, e.dtype, e.shape);
  writer.begin();
  for (const Expected& e : expected) writer.write_tensor_data(e.name, e.data.data(), e.data.size());
  writer.commit();

  const SafetensorsFile file = SafetensorsFile::open(path("all.safetensors"));
  EXPECT_TRUE(file.mapping().is_mapped());
  EXPECT_EQ(file.header_size() % 8, 0u);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(file.tensors().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const Expected& e = expected[i];
    const TensorInfo& t = file.tensors()[i];  // file order is declaration order
    EXPECT_EQ(t.name, e.name);
    EXPECT_EQ(t.dtype, e.dtype) << e.name;
    EXPECT_EQ(t.shape, e.shape) << e.name;
    EXPECT_EQ(t.nbytes, e.data.size()) << e.name;
    uint64_t numel = 1;
    for (uint64_t d : e.shape) numel *= d;
    EXPECT_EQ(t.numel, numel) << e.name;
    EXPECT_EQ(std::vector<std::byte>(t.bytes().begin(), t.bytes().end()), e.data) << e.name;
    EXPECT_EQ(&file.at(e.name), &t);
    EXPECT_EQ(file.find(e.name), &t);
  }
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"empty", ""},
      {"", "empty key"},
      {"quote\"back\\slash", "line\nbreak\ttab \x01 control"},
      {"unicode", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
  };
  const float one = 1.0f;
  write_safetensors(path("m.safetensors"), metadata, {{"x", DType::kF32, {}, &one}});
  const SafetensorsFile file = SafetensorsFile::open(path("m.safetensors"));
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.tensors().size(), 1u);
  float back;
  std::memcpy(&back, file.at("x").data, 4);
  EXPECT_EQ(back, 1.0f);
}

TEST_F(SafetensorsTest, EmptyFileRoundTrip) {
  write_safetensors(path("e.safetensors"), {}, {});
  const SafetensorsFile file = SafetensorsFile::open(path("e.safetensors"));
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.file_size(), 16u);
}

TEST_F(SafetensorsTest, TensorNamesMayHoldAnyUtf8) {
  const uint8_t byte = 7;
  const std::string odd = "layers.0/\"q\"\\ \xe2\x82\xac\n";
  write_safetensors(path("n.safetensors"), {}, {{odd, DType::kU8, {1}, &byte}});
  const SafetensorsFile file = SafetensorsFile::open(path("n.safetensors"));
  EXPECT_EQ(file.tensors().at(0).name, odd);
}

// The byte-exact outputs of upstream's own serialization tests
// (safetensors/src/tensor.rs): same JSON, same padding.
TEST_F(SafetensorsTest, MatchesUpstreamBytes) {
  const std::vector<float> values = {0, 1, 2, 3, 4, 5};
  write_safetensors(path("a"), {}, {{"attn.0", DType::kF32, {1, 2, 3}, values.data()}});
  std::vector<std::byte> expected =
      craft("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 0);
  const size_t header_end = expected.size();
  expected.resize(header_end + 24);
  std::memcpy(expected.data() + header_end, values.data(), 24);
  EXPECT_EQ(read_all(path("a")), expected);

  write_safetensors(path("b"), {}, {{"attn0", DType::kF32, {1, 1, 2, 3}, values.data()}});
  expected = craft("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ", 0);
  ASSERT_EQ(expected.size(), 8u + 72u);
  expected.resize(expected.size() + 24);
  std::memcpy(expected.data() + 80, values.data(), 24);
  EXPECT_EQ(read_all(path("b")), expected);

  write_safetensors(path("c"), {}, {});
  EXPECT_EQ(read_all(path("c")), craft("{}      ", 0));

  write_safetensors(path("d"), {{"framework", "pt"}}, {});
  EXPECT_EQ(read_all(path("d")), craft("{\"__metadata__\":{\"framework\":\"pt\"}}     ", 0));
}

TEST_F(SafetensorsTest, DataStartIsAlwaysEightByteAligned) {
  const uint8_t byte = 1;
  for (size_t len = 1; len <= 16; ++len) {
    const std::string p = path("align" + std::to_string(len));
    write_safetensors(p, {}, {{std::string(len, 'n'), DType::kU8, {1}, &byte}});
    const SafetensorsFile file = SafetensorsFile::open(p);
    EXPECT_EQ(file.data_start() % 8, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file.tensors()[0].data) % 8, 0u);
  }
}

TEST_F(SafetensorsTest, FileOrderFollowsOffsetsNotHeaderOrder) {
  // Names sort as a < b < c; offsets order them c, a, b. The empty tensor
  // "z" shares offset 8 with "b" and sorts before it (smaller end).
  const std::string header =
      "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
      "\"c\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
  const SafetensorsFile file = SafetensorsFile::from_memory(craft(header, 10));
  std::vector<std::string> order;
  for (const TensorInfo& t : file.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"c", "a", "z", "b"}));
  EXPECT_EQ(file.at("a").offset, 4u);
  EXPECT_EQ(file.at("a").data, file.at("c").data + 4);
}

TEST_F(SafetensorsTest, AcceptsWhatUpstreamAccepts) {
  // Trailing padding spaces, a null "__metadata__", unknown extra members.
  const std::string header =
      "{\"__metadata__\":null,\"t\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3],"
      "\"extra\":[1,{\"x\":2}]}}   \n ";
  const SafetensorsFile file = SafetensorsFile::from_memory(craft(header, 3));
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.at("t").nbytes, 3u);
}

TEST_F(SafetensorsTest, LookupOfMissingTensor) {
  const SafetensorsFile file =
      SafetensorsFile::from_memory(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]"), 1),
                                   "x.safetensors");
  EXPECT_EQ(file.find("nope"), nullptr);
  const Error e = catch_error([&] { file.at("nope"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_EQ(std::string(e.what()), "safetensors file 'x.safetensors' has no tensor named 'nope'");
}

TEST_F(SafetensorsTest, MoveKeepsTensorPointersValid) {
  const std::vector<uint16_t> values = {1, 2, 3};
  write_safetensors(path("f"), {}, {{"v", DType::kU16, {3}, values.data()}});
  SafetensorsFile a = SafetensorsFile::open(path("f"));
  SafetensorsFile b = std::move(a);
  SafetensorsFile c = SafetensorsFile::from_memory(craft("{}", 0));
  c = std::move(b);
  EXPECT_EQ(std::memcmp(c.at("v").data, values.data(), 6), 0);
}

TEST_F(SafetensorsTest, OpenMissingFileIsAnIoError) {
  const Error e = catch_error([&] { SafetensorsFile::open(path("absent.safetensors")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find("cannot read '"), std::string::npos) << e.what();
}

TEST_F(SafetensorsTest, OpenNamesThePathInErrors) {
  const auto bytes = craft("{\"t\":7}", 0);
  write_file_atomic(path("bad.safetensors"), bytes.data(), bytes.size());
  const Error e = catch_error([&] { SafetensorsFile::open(path("bad.safetensors")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find(path("bad.safetensors")), std::string::npos) << e.what();
}

// ------------------------------------------------------------ validation

TEST(SafetensorsValidation, FileTooShort) {
  expect_invalid({}, {"the file is 0 bytes long, too short for the 8-byte header length"});
  expect_invalid(bytes_of("1234567"), {"7 bytes long, too short"});
}

TEST(SafetensorsValidation, HeaderLength) {
  expect_invalid(craft("", 16), {"the header length is 0"});
  expect_invalid(craft("{}", 0, 100'000'001), {"header length 100000001 exceeds the limit of 100000000 bytes"});
  expect_invalid(craft("{}", 0, UINT64_MAX), {"exceeds the limit"});
  expect_invalid(craft("{}", 4, 1000), {"header length 1000 runs past the end of the file (14 bytes"});
  expect_invalid(craft("{}", 0, 3), {"header length 3 runs past the end"});
}

TEST(SafetensorsValidation, HeaderNotJsonObject) {
  expect_invalid(craft("{\"t\":", 0), {"the header is not valid JSON"});
  expect_invalid(craft("{} x", 0), {"the header is not valid JSON"});
  expect_invalid(craft(std::string("{}\0\0", 4), 0), {"the header is not valid JSON: a NUL byte at offset 2"});
  expect_invalid(craft("\xEF\xBB\xBF{}", 0), {"byte-order mark"});
  expect_invalid(craft("{\"\xff\":1}", 0), {"the header is not valid JSON"});  // not UTF-8
  expect_invalid(craft("{/*c*/}", 0), {"the header is not valid JSON"});
  expect_invalid(craft("[1, 2]", 0), {"the header is not a JSON object: [1,2]"});
  expect_invalid(craft("\"text\"", 0), {"the header is not a JSON object"});
}

TEST(SafetensorsValidation, ErrorMessagesAreBounded) {
  // An unterminated 1 MB string must not be quoted in full.
  const std::string header = "{\"" + std::string(1 << 20, 'a');
  const Error e = catch_error([&] { SafetensorsFile::from_memory(craft(header, 0)); });
  EXPECT_LT(std::string(e.what()).size(), 1000u);
}

TEST(SafetensorsValidation, DeepNestingIsRefused) {
  const std::string header = "{\"t\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_invalid(craft(header, 0), {"nests deeper than 64 levels"});
}

TEST(SafetensorsValidation, EntryNotAnObject) {
  expect_invalid(craft("{\"w\":[1,2]}", 0), {"the entry of tensor 'w' is not a JSON object"});
}

TEST(SafetensorsValidation, MissingMembers) {
  expect_invalid(craft(one_tensor("\"shape\":[1],\"data_offsets\":[0,1]"), 1), {"tensor 't' has no \"dtype\""});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"data_offsets\":[0,1]"), 1), {"tensor 't' has no \"shape\""});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1]"), 1), {"tensor 't' has no \"data_offsets\""});
}

TEST(SafetensorsValidation, WronglyTypedMembers) {
  expect_invalid(craft(one_tensor("\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,1]"), 1),
                 {"the \"dtype\" of tensor 't' is not a string: 32"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]"), 1),
                 {"the \"shape\" of tensor 't' is not an array: 1"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]"), 1),
                 {"the \"data_offsets\" of tensor 't' must be [begin, end]", "[0]"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]"), 1),
                 {"\"data_offsets\" of tensor 't' must be [begin, end]"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{\"a\":0}"), 1),
                 {"\"data_offsets\" of tensor 't' must be [begin, end]"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]"), 1),
                 {"\"data_offsets\" of tensor 't' must be [begin, end] with non-negative integers"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]"), 1),
                 {"\"data_offsets\" of tensor 't'", "[0,1.0]"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]"), 1),
                 {"\"data_offsets\" of tensor 't'"});
}

TEST(SafetensorsValidation, UnknownDType) {
  expect_invalid(craft(one_tensor("\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]"), 1),
                 {"tensor 't' has unknown dtype 'F7'", "known: BOOL"});
}

TEST(SafetensorsValidation, BadShapeDimensions) {
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[2,-1],\"data_offsets\":[0,1]"), 1),
                 {"dimension 1 of tensor 't' is negative: -1"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]"), 1),
                 {"dimension 0 of tensor 't' is not an integer", "1.5"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]"), 1),
                 {"dimension 0 of tensor 't' is not an integer"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]"), 1),
                 {"dimension 0 of tensor 't' is not an integer (or does not fit in 64 bits)"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]"), 1),
                 {"dimension 0 of tensor 't' is not a number: \"1\""});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[null],\"data_offsets\":[0,1]"), 1),
                 {"dimension 0 of tensor 't' is not a number: null"});
}

TEST(SafetensorsValidation, SizeOverflow) {
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],"
                                  "\"data_offsets\":[0,1]"),
                       1),
                 {"size overflow", "shape [4294967296, 4294967296, 2] of tensor 't'",
                  "more than 2^64 - 1 elements"});
  expect_invalid(craft(one_tensor("\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
                                  "\"data_offsets\":[0,1]"),
                       1),
                 {"size overflow", "byte size of tensor 't'", "does not fit in 64 bits"});
  // A product that wraps to a small number must not pass as that number.
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,1],"
                                  "\"data_offsets\":[0,0]"),
                       0),
                 {"size overflow"});
}

TEST(SafetensorsValidation, SubByteTensorMustFillWholeBytes) {
  expect_invalid(craft(one_tensor("\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]"), 2),
                 {"tensor 't' has 3 elements of F4, which do not fill a whole number of bytes"});
  expect_invalid(craft(one_tensor("\"dtype\":\"F6_E2M3\",\"shape\":[],\"data_offsets\":[0,1]"), 1),
                 {"tensor 't' has 1 elements of F6_E2M3"});
  const SafetensorsFile ok = SafetensorsFile::from_memory(
      craft(one_tensor("\"dtype\":\"F6_E3M2\",\"shape\":[2,2],\"data_offsets\":[0,3]"), 3));
  EXPECT_EQ(ok.at("t").numel, 4u);
  EXPECT_EQ(ok.at("t").nbytes, 3u);
}

TEST(SafetensorsValidation, OffsetsReversed) {
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]"), 8),
                 {"tensor 't' has data_offsets [8, 4] with begin after end"});
}

TEST(SafetensorsValidation, TensorPastTheBuffer) {
  expect_invalid(craft(one_tensor("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]"), 12),
                 {"tensor 't' ends at byte 16 of the data buffer, past its end (the buffer has 12 bytes)"});
  expect_invalid(craft(one_tensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551614,"
                                  "18446744073709551615]"),
                       1),
                 {"past its end"});
}

TEST(SafetensorsValidation, SizeDoesNotMatchShape) {
  expect_invalid(craft(one_tensor("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), 4),
                 {"tensor 't' has 4 bytes (data_offsets [0, 4]) but its shape [2] of F32 needs 8 bytes"});
}

TEST(SafetensorsValidation, OverlappingTensors) {
  expect_invalid(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       12),
                 {"tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap"});
  // Identical ranges overlap too.
  expect_invalid(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                       8),
                 {"overlap"});
  // So does an empty tensor placed inside another.
  expect_invalid(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                       8),
                 {"tensors 'a' (bytes [0, 8)) and 'e' (bytes [4, 4)) overlap"});
}

TEST(SafetensorsValidation, HolesInTheBuffer) {
  expect_invalid(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       12),
                 {"bytes [4, 8) of the data buffer belong to no tensor (a hole before tensor 'b')"});
  expect_invalid(craft(one_tensor("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), 8),
                 {"bytes [0, 4) of the data buffer belong to no tensor"});
  expect_invalid(craft(one_tensor("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), 10),
                 {"bytes [4, 10) at the end of the data buffer belong to no tensor (6 unused bytes)"});
  expect_invalid(craft("{}", 3), {"bytes [0, 3) at the end of the data buffer belong to no tensor"});
}

TEST(SafetensorsValidation, BadMetadata) {
  expect_invalid(craft("{\"__metadata__\":[\"a\"]}", 0),
                 {"\"__metadata__\" must be a JSON object of strings"});
  expect_invalid(craft("{\"__metadata__\":{\"epoch\":3}}", 0),
                 {"metadata value of 'epoch' is not a string: 3"});
  expect_invalid(craft("{\"__metadata__\":{\"a\":\"b\",\"c\":{\"d\":\"e\"}}}", 0),
                 {"metadata value of 'c' is not a string"});
}

TEST(SafetensorsValidation, DuplicateKeys) {
  const std::string entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
  expect_invalid(craft("{\"w\":" + entry + ",\"w\":" + entry + "}", 1),
                 {"duplicate tensor name 'w' in the header"});
  expect_invalid(craft("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0),
                 {"duplicate metadata key 'k' in \"__metadata__\""});
  expect_invalid(craft("{\"__metadata__\":{},\"__metadata__\":{}}", 0),
                 {"the header has two \"__metadata__\" entries"});
  expect_invalid(craft("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
                 {"duplicate key 'dtype' in the entry of tensor 'w'"});
  // The same key in different objects is no duplicate.
  const SafetensorsFile ok = SafetensorsFile::from_memory(
      craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            2));
  EXPECT_EQ(ok.tensors().size(), 2u);
}

TEST(SafetensorsValidation, NamesInMessagesAreEscapedAndShortened) {
  const std::string name = "line\nbreak" + std::string(1000, 'x');
  const std::string header = "{\"line\\nbreak" + std::string(1000, 'x') + "\":7}";
  const Error e = catch_error([&] { SafetensorsFile::from_memory(craft(header, 0)); });
  const std::string message = e.what();
  EXPECT_NE(message.find("'line\\x0abreakxxx"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_LT(message.size(), 500u);
}

// ------------------------------------------------------------ writer

TEST_F(SafetensorsTest, ChunkedWrites) {
  const auto data = random_bytes(1000, 5);
  SafetensorsWriter writer(path("c.safetensors"));
  writer.declare("empty", DType::kF32, {0});
  writer.declare("a", DType::kU8, {1000});
  writer.declare("empty2", DType::kF32, {2, 0});
  writer.declare("b", DType::kU16, {2});
  EXPECT_EQ(writer.tensor_count(), 4u);
  EXPECT_EQ(writer.tensor_nbytes(1), 1000u);
  EXPECT_EQ(writer.data_size(), 1004u);
  writer.begin();
  writer.write_tensor_data("a", data.data(), 1);
  writer.write_tensor_data(size_t{1}, data.data() + 1, 0);
  writer.write_tensor_data("a", nullptr, 0);
  writer.write_tensor_data(size_t{1}, data.data() + 1, 600);
  writer.write_tensor_data("a", data.data() + 601, 399);
  writer.write_tensor_data("b", "wxyz", 4);
  writer.commit();

  const SafetensorsFile file = SafetensorsFile::open(path("c.safetensors"));
  const TensorInfo& a = file.at("a");
  EXPECT_EQ(std::vector<std::byte>(a.bytes().begin(), a.bytes().end()), data);
  EXPECT_EQ(std::memcmp(file.at("b").data, "wxyz", 4), 0);
  EXPECT_EQ(file.at("empty2").shape, (std::vector<uint64_t>{2, 0}));
}

// Runs fn, which must throw ErrorKind::kUsage with `fragment` in its message.
template <typename Fn>
void expect_usage(Fn fn, const std::string& fragment) {
  const Error e = catch_error(fn);
  EXPECT_EQ(e.kind(), ErrorKind::kUsage) << e.what();
  EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
}

TEST_F(SafetensorsTest, WriterRejectsBadDeclarations) {
  SafetensorsWriter writer(path("w.safetensors"));
  writer.declare("a", DType::kF32, {2});
  expect_usage([&] { writer.declare("a", DType::kF32, {2}); }, "tensor 'a' declared twice");
  expect_usage([&] { writer.declare("", DType::kF32, {2}); }, "a tensor name is empty");
  expect_usage([&] { writer.declare("__metadata__", DType::kF32, {2}); },
               "\"__metadata__\" cannot be a tensor name");
  expect_usage([&] { writer.declare("bad\xff", DType::kF32, {2}); }, "is not valid UTF-8");
  expect_usage([&] { writer.declare("f4", DType::kF4, {3}); },
               "tensor 'f4' has 3 elements of F4, which do not fill a whole number of bytes");
  expect_usage([&] { writer.declare("big", DType::kU8, {1ull << 32, 1ull << 32}); },
               "size overflow");
  expect_usage([&] { writer.declare("wide", DType::kF64, {1ull << 62}); }, "size overflow");
  writer.declare("huge", DType::kU8, {UINT64_MAX - 8});
  expect_usage([&] { writer.declare("more", DType::kU8, {1}); },
               "the data buffer would exceed 2^64 - 1 bytes at tensor 'more'");
  writer.add_metadata("k", "v");
  expect_usage([&] { writer.add_metadata("k", "w"); }, "metadata key 'k' added twice");
  expect_usage([&] { writer.add_metadata("k2", "\xc3"); }, "metadata value of 'k2' is not valid UTF-8");
  expect_usage([&] { writer.tensor_nbytes(9); }, "no tensor with index 9");
  // The error messages name the output file.
  expect_usage([&] { writer.declare("a", DType::kF32, {2}); }, path("w.safetensors"));
}

TEST_F(SafetensorsTest, WriterEnforcesTheCallOrder) {
  const float f[4] = {1, 2, 3, 4};
  SafetensorsWriter writer(path("o.safetensors"));
  writer.declare("a", DType::kF32, {2});
  writer.declare("b", DType::kF32, {2});
  expect_usage([&] { writer.write_tensor_data("a", f, 8); }, "tensor data written before begin()");
  writer.begin();
  expect_usage([&] { writer.begin(); }, "begin() called twice");
  expect_usage([&] { writer.declare("c", DType::kF32, {2}); }, "tensor 'c' declared after begin()");
  expect_usage([&] { writer.add_metadata("k", "v"); }, "metadata 'k' added after begin()");
  expect_usage([&] { writer.write_tensor_data("b", f, 8); },
               "tensor 'b' written before tensor 'a' was complete (0 of 8 bytes written)");
  expect_usage([&] { writer.write_tensor_data("nope", f, 8); }, "tensor 'nope' was not declared");
  expect_usage([&] { writer.write_tensor_data(size_t{7}, f, 8); }, "no tensor with index 7 (2 declared)");
  expect_usage([&] { writer.write_tensor_data("a", nullptr, 4); }, "null data pointer for tensor 'a'");
  writer.write_tensor_data("a", f, 4);
  expect_usage([&] { writer.write_tensor_data("a", f, 5); },
               "too much data for tensor 'a': it has 8 bytes, 4 already written, 5 more given");
  writer.write_tensor_data("a", f + 1, 4);
  writer.write_tensor_data("b", f + 2, 4);
  expect_usage([&] { writer.write_tensor_data("a", f, 1); },
               "tensor 'a' written after tensor 'b'; tensors must be written in declaration order");
  expect_usage([&] { writer.commit(); }, "tensor 'b' is incomplete: 4 of 8 bytes written");
  EXPECT_FALSE(fs::exists(path("o.safetensors")));
  // Usage errors leave the writer usable.
  writer.write_tensor_data("b", f + 3, 4);
  writer.commit();
  expect_usage([&] { writer.commit(); }, "commit() called twice");
  expect_usage([&] { writer.write_tensor_data("b", f, 0); }, "tensor data written after commit()");

  const SafetensorsFile file = SafetensorsFile::open(path("o.safetensors"));
  EXPECT_EQ(std::memcmp(file.at("a").data, f, 8), 0);
  EXPECT_EQ(std::memcmp(file.at("b").data, f + 2, 8), 0);
}

TEST_F(SafetensorsTest, CommitWithoutBeginWritesTheHeader) {
  {
    SafetensorsWriter writer(path("z.safetensors"));
    writer.declare("empty", DType::kBF16, {0, 7});
    writer.commit();
  }
  const SafetensorsFile file = SafetensorsFile::open(path("z.safetensors"));
  EXPECT_EQ(file.at("empty").nbytes, 0u);
}

TEST_F(SafetensorsTest, UncommittedWriteLeavesNoFile) {
  const float f[2] = {1, 2};
  {
    SafetensorsWriter writer(path("u.safetensors"));
    writer.declare("a", DType::kF32, {2});
    writer.begin();
    writer.write_tensor_data("a", f, 8);
  }  // no commit
  EXPECT_TRUE(listing().empty());

  // An exception in the middle of a write leaves nothing either.
  EXPECT_THROW(
      {
        SafetensorsWriter writer(path("u.safetensors"));
        writer.declare("a", DType::kF32, {2});
        writer.begin();
        writer.write_tensor_data("a", f, 4);
        throw std::runtime_error("producer failed");
      },
      std::runtime_error);
  EXPECT_TRUE(listing().empty());

  // A failing convenience call (the second name is a duplicate).
  EXPECT_THROW(write_safetensors(path("u.safetensors"), {},
                                 {{"a", DType::kF32, {2}, f}, {"a", DType::kF32, {2}, f}}),
               Error);
  EXPECT_TRUE(listing().empty());
}

TEST_F(SafetensorsTest, FailedWriteKeepsTheOldFile) {
  const float f[2] = {1, 2};
  write_safetensors(path("keep.safetensors"), {{"v", "1"}}, {{"a", DType::kF32, {2}, f}});
  const auto before = read_all(path("keep.safetensors"));
  {
    SafetensorsWriter writer(path("keep.safetensors"));
    writer.add_metadata("v", "2");
    writer.declare("a", DType::kF32, {2});
    writer.begin();
    writer.write_tensor_data("a", f, 4);
    EXPECT_THROW(writer.commit(), Error);  // incomplete
  }
  EXPECT_EQ(read_all(path("keep.safetensors")), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"keep.safetensors"});
}

TEST_F(SafetensorsTest, WriterIntoMissingDirectoryFailsAtOnce) {
  const Error e = catch_error([&] { SafetensorsWriter writer(path("no/such/dir/x.safetensors")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
}

// ------------------------------------------------------------ robustness

// Random damage to a valid file must give either a valid file or a
// lowbit::Error, never a crash, a hang, or another exception type; and an
// accepted file's tensors must lie inside it. Under the sanitizer build this
// also checks that no mutation makes the parser read out of bounds.
TEST_F(SafetensorsTest, DamagedFilesNeverCrash) {
  const std::vector<uint8_t> u8 = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f};
  const std::vector<uint16_t> bf16 = {0x3f80, 0x4000};
  const uint8_t f4[2] = {0x12, 0x34};
  write_safetensors(path("seed.safetensors"), {{"format", "pt"}, {"note", "fuzz"}},
                    {{"w.f32", DType::kF32, {3}, f32.data()},
                     {"w.bf16", DType::kBF16, {1, 2}, bf16.data()},
                     {"w.u8", DType::kU8, {7}, u8.data()},
                     {"w.empty", DType::kI64, {0, 4}, nullptr},
                     {"w.f4", DType::kF4, {2, 2}, f4}});
  const std::vector<std::byte> seed = read_all(path("seed.safetensors"));
  const size_t header_end = 8 + SafetensorsFile::from_memory(seed).header_size();

  std::mt19937 rng(12345);
  const char kJsonish[] = "{}[]\":,-0123456789.eE \\u";
  int accepted = 0;
  int rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::vector<std::byte> bytes = seed;
    const int kind = static_cast<int>(rng() % 5);
    if (kind == 0) {
      bytes.resize(rng() % bytes.size());  // truncation
    } else if (kind == 1) {
      // A different header length, near the real one or anywhere.
      const uint64_t n = (rng() % 2) ? header_end - 8 + (rng() % 17) - 8
                                     : (static_cast<uint64_t>(rng()) << 32) | rng();
      for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    } else {
      // 1 to 4 byte changes, mostly in the header, often JSON punctuation.
      const int changes = 1 + static_cast<int>(rng() % 4);
      for (int c = 0; c < changes; ++c) {
        const size_t at = (rng() % 4 != 0) ? 8 + rng() % (header_end - 8) : rng() % bytes.size();
        bytes[at] = (kind == 2) ? static_cast<std::byte>(rng() & 0xff)
                                : static_cast<std::byte>(kJsonish[rng() % (sizeof kJsonish - 1)]);
      }
      if (kind == 4 && rng() % 2) bytes.resize(bytes.size() + rng() % 9);  // extra data
    }
    try {
      const SafetensorsFile file = SafetensorsFile::from_memory(bytes, "fuzz");
      ++accepted;
      const uint64_t size = file.file_size();
      for (const TensorInfo& t : file.tensors()) {
        ASSERT_LE(file.data_start() + t.offset + t.nbytes, size);
        // Touch every byte: the sanitizers would flag anything outside.
        unsigned sum = 0;
        for (std::byte b : t.bytes()) sum += static_cast<unsigned>(b);
        (void)sum;
      }
    } catch (const Error& e) {
      ++rejected;
      ASSERT_EQ(e.kind(), ErrorKind::kInput) << e.what();
    }
  }
  // Both outcomes occur, or the mutations are not exercising anything.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

TEST_F(SafetensorsTest, TruncatedFilesOnDiskAreRejected) {
  const std::vector<float> f32 = {1, 2, 3, 4};
  write_safetensors(path("t.safetensors"), {}, {{"x", DType::kF32, {4}, f32.data()}});
  const auto bytes = read_all(path("t.safetensors"));
  for (size_t len = 0; len < bytes.size(); ++len) {
    write_file_atomic(path("cut.safetensors"), bytes.data(), len);
    const Error e = catch_error([&] { SafetensorsFile::open(path("cut.safetensors")); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << len << ": " << e.what();
  }
}

}  // namespace
}  // namespace lowbit

#include "lowbit/io/gguf_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class GgufReaderTest : public testing_support::TempDirTest {};

// Builds GGUF bytes by hand, field by field, little-endian, so that each
// test states exactly what its file holds.
class Craft {
 public:
  Craft& raw(std::string_view text) {
    for (char c : text) bytes.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Craft& u8(uint8_t v) { return le(v, 1); }
  Craft& u32(uint32_t v) { return le(v, 4); }
  Craft& u64(uint64_t v) { return le(v, 8); }
  Craft& str(std::string_view s) { return u64(s.size()).raw(s); }
  Craft& zeros(size_t n) {
    bytes.resize(bytes.size() + n, std::byte{0});
    return *this;
  }
  Craft& fill(size_t n, uint8_t value) {
    bytes.resize(bytes.size() + n, std::byte{value});
    return *this;
  }
  Craft& pad_to(size_t alignment) { return zeros((alignment - bytes.size() % alignment) % alignment); }

  // The fixed header.
  Craft& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(tensors).u64(kvs);
  }
  // A UINT32 metadata entry (type id 4).
  Craft& kv_u32(std::string_view key, uint32_t value) { return str(key).u32(4).u32(value); }
  // A tensor info.
  Craft& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }

  std::vector<std::byte> bytes;

 private:
  Craft& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    return *this;
  }
};

constexpr uint32_t kF32 = 0, kQ4_0 = 2;  // ggml type ids

GgufFile parse(const Craft& c) { return GgufFile::from_memory(c.bytes, "crafted.gguf"); }

// Parses crafted bytes that must be rejected and checks that the error is
// ErrorKind::kInput, names the file, and contains every fragment.
void expect_invalid(const Craft& c, std::vector<std::string> fragments) {
  const Error e = catch_error([&] { parse(c); });
  const std::string message = e.what();
  EXPECT_EQ(e.kind(), ErrorKind::kInput) << message;
  EXPECT_EQ(message.rfind("invalid GGUF file 'crafted.gguf': ", 0), 0u) << message;
  for (const std::string& fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos) << "message lacks \"" << fragment << "\": " << message;
  }
}

// A file with one F32 tensor of `n` elements at offset 0, its data 0x5a.
Craft one_tensor_file(uint64_t n, uint32_t version = 3) {
  Craft c;
  c.header(1, 0, version).tensor("t", {n}, kF32, 0).pad_to(32).fill(4 * n, 0x5a);
  return c;
}

// ------------------------------------------------------------ what is read

TEST(GgufReader, ReadsAHandMadeFile) {
  Craft c;
  c.header(2, 3)
      .kv_u32("general.alignment", 16)
      .str("general.name").u32(8).str("tiny")
      .str("ids").u32(9).u32(5).u64(2).u32(7).u32(0xfffffff9u)  // ARRAY of INT32 {7, -7}
      .tensor("b", {2}, kF32, 32)   // listed first, stored second
      .tensor("a", {32, 1}, kQ4_0, 0);
  const size_t header = c.bytes.size();
  c.pad_to(16).fill(18, 0xaa).zeros(14).fill(8, 0xbb);
  const GgufFile f = parse(c);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 16u);
  EXPECT_EQ(f.header_size(), header);
  EXPECT_EQ(f.data_start(), (header + 15) / 16 * 16);
  ASSERT_EQ(f.metadata().size(), 3u);
  EXPECT_EQ(f.metadata()[0].key, "general.alignment");
  EXPECT_EQ(f.metadata()[1].key, "general.name");
  EXPECT_EQ(f.get_string("general.name"), "tiny");
  EXPECT_EQ(f.get_array<int32_t>("ids"), (std::vector<int32_t>{7, -7}));

  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensorInfo& b = f.tensors()[0];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.offset, 32u);
  EXPECT_EQ(b.nbytes, 8u);
  EXPECT_EQ(b.data, f.tensors()[1].data + 32);
  EXPECT_EQ(b.bytes()[0], std::byte{0xbb});
  const GgufTensorInfo& a = f.tensor("a");
  EXPECT_EQ(a.type, GgmlType::kQ4_0);
  EXPECT_EQ(a.ne, (std::vector<uint64_t>{32, 1}));
  EXPECT_EQ(a.shape(), (std::vector<uint64_t>{1, 32}));
  EXPECT_EQ(a.numel, 32u);
  EXPECT_EQ(a.nbytes, 18u);
  EXPECT_EQ(a.bytes()[17], std::byte{0xaa});
  EXPECT_EQ(f.find_tensor("c"), nullptr);
}

TEST(GgufReader, VersionTwoHasTheSameLayout) {
  const GgufFile f = parse(one_tensor_file(3, 2));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.tensors()[0].nbytes, 12u);
}

TEST(GgufReader, NoTensorsNeedNoDataSection) {
  Craft c;
  c.header(0, 1).kv_u32("k", 1);  // no padding after the header
  const GgufFile f = parse(c);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_u32("k"), 1u);
}

TEST(GgufReader, ScalarsAndZeroSizedTensors) {
  Craft c;
  c.header(4, 0)
      .tensor("scalar", {}, kF32, 0)
      .tensor("empty", {0, 9}, kF32, 32)
      .tensor("empty_q", {0}, kQ4_0, 32)
      .tensor("last_empty", {4, 0}, kF32, 32);
  c.pad_to(32).fill(4, 1).zeros(28);  // the file ends where the empty tensors start
  const GgufFile f = parse(c);
  EXPECT_EQ(f.tensor("scalar").numel, 1u);
  EXPECT_EQ(f.tensor("scalar").nbytes, 4u);
  EXPECT_TRUE(f.tensor("scalar").shape().empty());
  for (const char* name : {"empty", "empty_q", "last_empty"}) {
    EXPECT_EQ(f.tensor(name).numel, 0u) << name;
    EXPECT_TRUE(f.tensor(name).bytes().empty()) << name;
  }
}

TEST(GgufReader, NestedArrays) {
  Craft c;
  c.header(0, 1).str("nested").u32(9).u32(9).u64(2);  // ARRAY of 2 ARRAYs
  c.u32(0).u64(3).u8(1).u8(2).u8(3);                 //   ARRAY of UINT8 {1, 2, 3}
  c.u32(8).u64(1).str("x");                          //   ARRAY of STRING {"x"}
  const GgufFile f = parse(c);
  const auto& inner = f.at("nested").arrays();
  ASSERT_EQ(inner.size(), 2u);
  EXPECT_EQ(inner[0].to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(inner[1].strings(), std::vector<std::string>{"x"});
}

TEST(GgufReader, TypedGetters) {
  Craft c;
  c.header(0, 3).kv_u32("u", 7).str("f").u32(6).u32(0x3fc00000u).str("s").u32(8).str("hi");
  const GgufFile f = parse(c);
  EXPECT_EQ(f.get_u32("u"), 7u);
  EXPECT_EQ(f.get_f32("f"), 1.5f);
  EXPECT_EQ(f.get_or<uint32_t>("missing", 32), 32u);
  EXPECT_EQ(f.get_or<uint32_t>("u", 32), 7u);

  Error e = catch_error([&] { f.get_i32("u"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_STREQ(e.what(), "metadata key 'u' of GGUF file 'crafted.gguf' is UINT32, not INT32");
  e = catch_error([&] { f.get_or<float>("u", 0.0f); });
  EXPECT_STREQ(e.what(), "metadata key 'u' of GGUF file 'crafted.gguf' is UINT32, not FLOAT32");
  e = catch_error([&] { f.get_strings("s"); });
  EXPECT_STREQ(e.what(), "metadata key 's' of GGUF file 'crafted.gguf' is STRING, not ARRAY of STRING");
  e = catch_error([&] { f.get_u64("nope"); });
  EXPECT_STREQ(e.what(), "GGUF file 'crafted.gguf' has no metadata key 'nope'");
  e = catch_error([&] { f.tensor("nope"); });
  EXPECT_STREQ(e.what(), "GGUF file 'crafted.gguf' has no tensor named 'nope'");
}

TEST_F(GgufReaderTest, OpenMapsTheFileAndNamesThePath) {
  const Craft c = one_tensor_file(2);
  write_file_atomic(path("m.gguf"), c.bytes.data(), c.bytes.size());
  GgufFile f = GgufFile::open(path("m.gguf"));
  EXPECT_TRUE(f.mapping().is_mapped());
  EXPECT_EQ(f.tensors()[0].data, f.mapping().data() + f.data_start());
  const GgufFile moved = std::move(f);
  EXPECT_EQ(moved.tensors()[0].bytes()[0], std::byte{0x5a});  // still valid after the move

  EXPECT_EQ(catch_error([&] { GgufFile::open(path("missing.gguf")); }).kind(), ErrorKind::kIo);
  write_file_atomic(path("bad.gguf"), "GGUX", 4);
  const Error e = catch_error([&] { GgufFile::open(path("bad.gguf")); });
  EXPECT_EQ(std::string(e.what()).rfind("invalid GGUF file '" + path("bad.gguf") + "': bad magic", 0), 0u);
}

// ------------------------------------------------------------ what is refused

TEST(GgufReaderValidation, ShorterThanTheHeader) {
  const Craft full = one_tensor_file(1);
  for (size_t n = 0; n < 24; ++n) {
    Craft c;
    c.bytes.assign(full.bytes.begin(), full.bytes.begin() + static_cast<std::ptrdiff_t>(n));
    expect_invalid(c, {"the file is " + std::to_string(n) + " bytes long, shorter than the 24-byte GGUF header"});
  }
}

TEST(GgufReaderValidation, BadMagic) {
  Craft c;
  c.raw("{\"__").u32(3).u64(0).u64(0);
  expect_invalid(c, {"bad magic: the file starts with '{\"__', not 'GGUF'"});
  Craft d;
  d.raw("GGU\n").u32(3).u64(0).u64(0);
  expect_invalid(d, {"'GGU\\x0a'"});
}

TEST(GgufReaderValidation, Versions) {
  expect_invalid(one_tensor_file(1, 1), {"GGUF version 1 is not supported"});
  expect_invalid(one_tensor_file(1, 0), {"unsupported GGUF version 0"});
  expect_invalid(one_tensor_file(1, 4), {"unsupported GGUF version 4; lowbit reads versions 2 and 3"});
  // A big-endian writer stores the version as 00 00 00 03.
  expect_invalid(one_tensor_file(1, 0x03000000u), {"big-endian GGUF file"});
}

TEST(GgufReaderValidation, AbsurdCounts) {
  Craft c;
  c.header(1ull << 60, 0).zeros(64);
  expect_invalid(c, {"claims 0 metadata entries and 1152921504606846976 tensors, more than the remaining 64 bytes"});
  Craft d;
  d.header(0, UINT64_MAX).zeros(64);  // 13 * count overflows
  expect_invalid(d, {"claims 18446744073709551615 metadata entries"});
  Craft e;
  e.header(3, 0).tensor("t", {1}, kF32, 0);  // room for one tensor info, not three
  expect_invalid(e, {"more than the remaining"});
}

TEST(GgufReaderValidation, StringsBeyondTheFile) {
  Craft key;
  key.header(0, 1).u64(1ull << 60).raw("general");
  expect_invalid(key, {"the key of metadata entry 0 at byte 32 needs 1152921504606846976 bytes, but only 7 remain"});
  Craft value;
  value.header(0, 1).str("k").u32(8).u64(100).raw("short");
  expect_invalid(value, {"the value of metadata key 'k'", "needs 100 bytes, but only 5 remain"});
  Craft name;
  name.header(1, 0).u64(40).raw("blk.0").zeros(19);
  expect_invalid(name, {"the name of tensor info 0"});
  Craft cut;
  cut.header(0, 1).str("k").u32(4).u8(1);  // a UINT32 with one byte
  expect_invalid(cut, {"the value of metadata key 'k' at byte 37 needs 4 bytes, but only 1 remain"});
}

TEST(GgufReaderValidation, ArraysBeyondTheFile) {
  // 2^60 strings would be a 32 EiB vector: refused from the count alone.
  Craft strings;
  strings.header(0, 1).str("tokens").u32(9).u32(8).u64(1ull << 60).str("a");
  expect_invalid(strings, {"the value of metadata key 'tokens' claims 1152921504606846976 elements of STRING, "
                           "at least 8 bytes each, but only 9 bytes remain"});
  Craft bytes;
  bytes.header(0, 1).str("b").u32(9).u32(0).u64(5).zeros(4);
  expect_invalid(bytes, {"claims 5 elements of UINT8"});
  Craft arrays;
  arrays.header(0, 1).str("n").u32(9).u32(9).u64(UINT64_MAX).zeros(24);
  expect_invalid(arrays, {"claims 18446744073709551615 elements of ARRAY"});
  Craft inner;  // the outer array fits, an inner one claims too much
  inner.header(0, 1).str("n").u32(9).u32(9).u64(1).u32(10).u64(3).u64(1);
  expect_invalid(inner, {"an element of the value of metadata key 'n' claims 3 elements of UINT64"});
}

TEST(GgufReaderValidation, UnknownValueTypes) {
  Craft c;
  c.header(0, 1).str("k").u32(13).u32(0);
  expect_invalid(c, {"the type of metadata key 'k' is 13, which is not a GGUF value type"});
  Craft d;
  d.header(0, 1).str("k").u32(9).u32(0xffffffffu).u64(0);
  expect_invalid(d, {"the element type of the value of metadata key 'k' is 4294967295"});
}

TEST(GgufReaderValidation, BoolsMustBeZeroOrOne) {
  Craft c;
  c.header(0, 1).str("b").u32(7).u8(2);
  expect_invalid(c, {"the value of metadata key 'b' is a BOOL of value 2, not 0 or 1"});
  Craft d;
  d.header(0, 1).str("b").u32(9).u32(7).u64(3).u8(0).u8(1).u8(255);
  expect_invalid(d, {"element 2 of the value of metadata key 'b' is a BOOL of value 255"});
}

TEST(GgufReaderValidation, ArraysNestAtMostSixteenDeep) {
  const auto nested = [](int depth) {
    Craft c;
    c.header(0, 1).str("deep").u32(9);
    for (int i = 1; i < depth; ++i) c.u32(9).u64(1);  // an array holding one array
    c.u32(0).u64(0);                                  // the innermost: empty, of UINT8
    return c;
  };
  EXPECT_EQ(parse(nested(GgufFile::kMaxArrayDepth)).at("deep").size(), 1u);
  expect_invalid(nested(GgufFile::kMaxArrayDepth + 1), {"nests arrays more than 16 levels deep"});
  // Far deeper than the stack could take if the depth were not capped.
  expect_invalid(nested(200000), {"nests arrays more than 16 levels deep"});
}

TEST(GgufReaderValidation, DuplicateKeysAndTensorNames) {
  Craft c;
  c.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  expect_invalid(c, {"duplicate metadata key 'k' (entries 0 and 1)"});
  Craft d;
  d.header(2, 0).tensor("t", {1}, kF32, 0).tensor("t", {1}, kF32, 32).pad_to(32).zeros(64);
  expect_invalid(d, {"duplicate tensor name 't' (tensor infos 0 and 1)"});
}

TEST(GgufReaderValidation, Alignment) {
  Craft wrong_type;
  wrong_type.header(0, 1).str("general.alignment").u32(5).u32(32);  // INT32
  expect_invalid(wrong_type, {"general.alignment is INT32, not UINT32"});
  for (uint32_t a : {0u, 3u, 48u, 0xffffffffu}) {
    Craft c;
    c.header(0, 1).kv_u32("general.alignment", a);
    expect_invalid(c, {"general.alignment is " + std::to_string(a) + ", not a power of two"});
  }
}

TEST(GgufReaderValidation, TensorInfos) {
  Craft dims;
  dims.header(1, 0).tensor("t", {1, 1, 1, 1, 1}, kF32, 0).pad_to(32).zeros(4);
  expect_invalid(dims, {"tensor 't' has 5 dimensions; ggml allows at most 4"});
  for (uint32_t id : {4u, 5u, 31u, 36u, 1000u, 0xffffffffu}) {  // retired (Q4_2, Q4_3, ...) or undefined
    Craft c;
    c.header(1, 0).tensor("w", {32}, id, 0).pad_to(32).zeros(256);
    expect_invalid(c, {"tensor 'w' has ggml type id " + std::to_string(id) + ", which is not a ggml type lowbit knows"});
  }
  Craft overflow;
  overflow.header(1, 0).tensor("big", {1ull << 32, 1ull << 32}, kF32, 0).pad_to(32).zeros(4);
  expect_invalid(overflow, {"tensor 'big': size overflow"});
  Craft negative;
  negative.header(1, 0).tensor("neg", {UINT64_MAX}, 24, 0).pad_to(32).zeros(4);  // I8
  expect_invalid(negative, {"over 2^63 - 1"});
  Craft block;
  block.header(1, 0).tensor("q", {48, 2}, kQ4_0, 0).pad_to(32).zeros(64);
  expect_invalid(block, {"tensor 'q' has 48 elements per row (ne[0]), not a multiple of the Q4_0 block size 32"});
}

TEST(GgufReaderValidation, TensorData) {
  Craft misaligned;
  misaligned.header(1, 0).tensor("t", {1}, kF32, 8).pad_to(32).zeros(64);
  expect_invalid(misaligned, {"tensor 't' has data offset 8, not a multiple of the alignment 32"});

  Craft truncated = one_tensor_file(4);
  truncated.bytes.pop_back();
  expect_invalid(truncated, {"tensor 't' (16 bytes at offset 0 of the data section, which starts at byte 64) "
                             "runs past the end of the file (79 bytes)"});
  Craft far;
  far.header(1, 0).tensor("t", {1}, kF32, UINT64_MAX - 31).pad_to(32).zeros(4);  // start overflows
  expect_invalid(far, {"runs past the end of the file"});
  Craft empty_past_end;
  empty_past_end.header(1, 0).tensor("e", {0}, kF32, 64).pad_to(32).zeros(32);
  expect_invalid(empty_past_end, {"tensor 'e' (0 bytes at offset 64"});

  Craft overlap;
  overlap.header(3, 0)
      .tensor("a", {16}, kF32, 0)   // [0, 64)
      .tensor("b", {1}, kF32, 96)   // [96, 100)
      .tensor("c", {8}, kF32, 32);  // [32, 64): inside a
  overlap.pad_to(32).zeros(128);
  expect_invalid(overlap, {"the data of tensors 'a' (bytes [0, 64)) and 'c' (bytes [32, 64)) overlap"});
  Craft same;
  same.header(2, 0).tensor("a", {1}, kF32, 0).tensor("b", {1}, kF32, 0).pad_to(32).zeros(32);
  expect_invalid(same, {"overlap"});
  // Zero-byte tensors overlap nothing.
  Craft empties;
  empties.header(2, 0).tensor("a", {1}, kF32, 0).tensor("b", {0}, kF32, 0).pad_to(32).zeros(32);
  EXPECT_EQ(parse(empties).tensors().size(), 2u);
}

TEST(GgufReaderValidation, NamesInMessagesAreEscapedAndShortened) {
  Craft c;
  c.header(0, 2).kv_u32(std::string(300, 'k') + "\n", 1).kv_u32(std::string(300, 'k') + "\n", 2);
  const Error e = catch_error([&] { parse(c); });
  const std::string message = e.what();
  EXPECT_NE(message.find("'" + std::string(200, 'k') + "...'"), std::string::npos) << message;
  EXPECT_LT(message.size(), 400u);
}

// ------------------------------------------------------------ robustness

std::vector<std::byte> seed_file(const std::string& path) {
  GgufWriter w(path);
  w.add_metadata("general.architecture", GgufValue::of("llama"));
  w.add_metadata("general.alignment", GgufValue::of(uint32_t{16}));
  w.add_metadata("tokens", GgufValue::array(std::vector<std::string>{"a", "", "bc"}));
  w.add_metadata("scores", GgufValue::array(std::vector<float>{0.5f, -1.0f}));
  w.add_metadata("flags", GgufValue::array(std::vector<bool>{true, false}));
  w.add_metadata("nested", GgufValue::array(std::vector<GgufValue>{GgufValue::array(std::vector<int8_t>{-1})}));
  w.add_metadata("f64", GgufValue::of(2.5));
  const std::vector<float> f = {1, 2, 3};
  const std::vector<std::byte> q(18, std::byte{0x11});
  w.declare_tensor("f", {3}, GgmlType::kF32);
  w.declare_tensor("q", {32, 1}, GgmlType::kQ4_0);
  w.declare_tensor("e", {0, 2}, GgmlType::kF16);
  w.begin();
  w.write_tensor_data(0, f.data(), 12);
  w.write_tensor_data(1, q.data(), q.size());
  w.commit();
  return read_file(path);
}

// Parses damaged bytes: true if they are accepted, false if refused with
// a kInput error; anything else (another error kind or exception, a
// tensor outside the file) fails the test. Every tensor byte of an accepted
// file is read, so that the sanitizers see any range outside the buffer.
bool survives(const std::vector<std::byte>& bytes) {
  try {
    const GgufFile file = GgufFile::from_memory(bytes, "fuzz");
    uint64_t checksum = 0;
    for (const GgufTensorInfo& t : file.tensors()) {
      EXPECT_LE(file.data_start() + t.offset + t.nbytes, file.file_size()) << t.name;
      checksum = std::accumulate(t.bytes().begin(), t.bytes().end(), checksum,
                                 [](uint64_t sum, std::byte b) { return sum + static_cast<uint8_t>(b); });
    }
    volatile uint64_t sink = checksum;  // keeps the reads
    (void)sink;
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
    return false;
  }
}

// Random damage to a valid file must give either a valid file or a
// lowbit::Error of kind kInput: never a crash, a hang, a bad_alloc or
// another exception; an accepted file's tensors must lie inside it (the
// sanitizer build also checks that nothing reads out of bounds).
TEST_F(GgufReaderTest, DamagedFilesNeverCrash) {
  const std::vector<std::byte> seed = seed_file(path("seed.gguf"));
  const size_t header_end = GgufFile::from_memory(seed).header_size();
  // Values that make counts, lengths and offsets extreme.
  const uint64_t kInteresting[] = {0, 1, 2, 3, 4, 8, 9, 12, 13, 31, 32, 33, 255, 0xffff, 0x7fffffff,
                                   0xffffffff, 1ull << 32, 1ull << 60, 1ull << 63, UINT64_MAX};
  std::mt19937 rng(20240611);
  int accepted = 0, rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::vector<std::byte> bytes = seed;
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {
      bytes.resize(rng() % bytes.size());  // truncation
    } else if (kind == 1) {
      // 1 to 4 random bytes, mostly in the header.
      const int changes = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < changes; ++i) {
        const size_t at = (rng() % 4 != 0) ? rng() % header_end : rng() % bytes.size();
        bytes[at] = static_cast<std::byte>(rng() & 0xff);
      }
    } else if (kind == 2) {
      // An extreme value over 4 or 8 bytes somewhere in the header.
      const uint64_t v = kInteresting[rng() % std::size(kInteresting)];
      const size_t width = (rng() % 2) ? 8 : 4;
      const size_t at = rng() % (header_end - width);
      for (size_t i = 0; i < width; ++i) bytes[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
    } else {
      // A small change to a byte: counts and lengths off by a little.
      const size_t at = rng() % header_end;
      bytes[at] = static_cast<std::byte>(static_cast<uint8_t>(bytes[at]) + (rng() % 2 ? 1 : 0xff));
    }
    (survives(bytes) ? accepted : rejected) += 1;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

TEST_F(GgufReaderTest, EveryTruncationIsRejected) {
  const std::vector<std::byte> seed = seed_file(path("seed.gguf"));
  // The last tensor ends before the final padding; cutting only padding
  // after it leaves a valid file, so stop at its end.
  const GgufFile whole = GgufFile::from_memory(seed);
  uint64_t end = 0;
  for (const GgufTensorInfo& t : whole.tensors()) end = std::max(end, whole.data_start() + t.offset + t.nbytes);
  for (size_t len = 0; len < end; ++len) {
    const std::vector<std::byte> cut(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(len));
    const Error e = catch_error([&] { GgufFile::from_memory(cut, "cut"); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << len << ": " << e.what();
  }
}

}  // namespace
}  // namespace lowbit

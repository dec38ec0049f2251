#include "lowbit/core/npy.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

namespace fs = std::filesystem;

std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A .npy file built by hand: magic, version, little-endian header length,
// the header text exactly as given, then the data.
std::vector<std::byte> make_npy(int major, const std::string& header, const std::string& data) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t len_bytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return to_bytes(out + header + data);
}

std::string floats(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  size_t i = 0;
  for (float v : values) std::memcpy(&out[4 * i++], &v, 4);
  return out;
}

// The lowbit::Error thrown by fn; fails the test if there is none.
// Parses `bytes` as "t.npy" and expects ErrorKind::kInput with a message that
// names the file and contains `needle`.
void expect_input_error(const std::vector<std::byte>& bytes, const std::string& needle) {
  const Error e = catch_error([&] { npy_parse(bytes, "t.npy"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
  const std::string msg = e.what();
  EXPECT_NE(msg.find("t.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nwanted: " << needle;
}

// What np.save(np.array([1, 2, 3], np.float32)) writes with numpy >= 1.24:
// the dict, 20 growth-axis spaces (21 - len("3")), 40 alignment spaces and a
// newline, so that the header length is 118 (0x76) and the data starts at
// byte 128.
const std::string kNumpyDictF4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
std::string numpy_file_f4() {
  return std::string("\x93NUMPY\x01\x00\x76\x00", 10) + kNumpyDictF4 + std::string(60, ' ') + "\n" +
         floats({1.0f, 2.0f, 3.0f});
}

TEST(NpyTest, ParsesNumpyWrittenFile) {
  const std::vector<std::byte> bytes = to_bytes(numpy_file_f4());
  ASSERT_EQ(bytes.size(), 128u + 12u);
  const NpyArray a = npy_parse(bytes, "t.npy");
  EXPECT_EQ(a.descr, "<f4");
  EXPECT_EQ(a.shape, std::vector<uint64_t>{3});
  EXPECT_EQ(a.num_elements(), 3u);
  EXPECT_EQ(a.itemsize(), 4u);
  ASSERT_EQ(a.data.size(), 12u);
  float values[3];
  std::memcpy(values, a.data.data(), 12);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], 2.0f);
  EXPECT_EQ(values[2], 3.0f);
}

TEST(NpyTest, WritesWhatNumpyWrites) {
  const std::vector<uint64_t> shape = {3};
  const std::string data = floats({1.0f, 2.0f, 3.0f});
  EXPECT_EQ(npy_serialize("<f4", shape, data.data(), data.size()), to_bytes(numpy_file_f4()));

  // 2-D: growth padding follows shape[0] ("2").
  const std::vector<uint64_t> shape2 = {2, 5};
  EXPECT_EQ(npy_header("<f8", shape2),
            std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 5), }" +
                std::string(20 + 38, ' ') + "\n");
  // 0-d: no growth padding.
  EXPECT_EQ(npy_header("|u1", {}),
            std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                "{'descr': '|u1', 'fortran_order': False, 'shape': (), }" +
                std::string(62, ' ') + "\n");
}

TEST(NpyTest, HeaderIsAlignedAndEndsWithNewline) {
  for (size_t ndim = 0; ndim < 40; ++ndim) {
    const std::vector<uint64_t> shape(ndim, 123456789);
    const std::string header = npy_header("<i2", shape);
    EXPECT_EQ(header.size() % 64, 0u) << ndim;
    EXPECT_EQ(header.back(), '\n');
    EXPECT_EQ(header[6], '\x01');
  }
}

TEST(NpyTest, RoundTripEveryDtype) {
  const char* descrs[] = {"<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8",
                          "|u1", "<u2", "<u4", "<u8", "|b1"};
  const std::vector<std::vector<uint64_t>> shapes = {{}, {0}, {1}, {7}, {2, 3}, {2, 0, 3}, {1, 2, 3, 4}};
  for (const char* descr : descrs) {
    for (const auto& shape : shapes) {
      uint64_t count = 1;
      for (uint64_t d : shape) count *= d;
      const size_t bytes = count * npy_descr_itemsize(descr);
      std::vector<std::byte> data(bytes);
      for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<std::byte>(i * 13 + 1);
      const std::vector<std::byte> file = npy_serialize(descr, shape, data.data(), data.size());
      const NpyArray a = npy_parse(file, "rt.npy");
      EXPECT_EQ(a.descr, descr);
      EXPECT_EQ(a.shape, shape);
      EXPECT_EQ(a.data, data);
    }
  }
}

TEST(NpyTest, FallsBackToVersion2ForHugeHeaders) {
  // 30000 dimensions of 1 need about 90000 header bytes, past version 1.0's
  // 16-bit length field.
  const std::vector<uint64_t> shape(30000, 1);
  const float value = 5.0f;
  const std::vector<std::byte> file = npy_serialize("<f4", shape, &value, 4);
  EXPECT_EQ(static_cast<int>(file[6]), 2);
  EXPECT_EQ(static_cast<int>(file[7]), 0);
  EXPECT_EQ((file.size() - 4) % 64, 0u);
  const NpyArray a = npy_parse(file, "big.npy");
  EXPECT_EQ(a.shape, shape);
  EXPECT_EQ(a.num_elements(), 1u);
}

TEST(NpyTest, ReadsVersions2And3) {
  const std::string header = "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }\n";
  for (int major : {2, 3}) {
    const NpyArray a = npy_parse(make_npy(major, header, "abcd"), "v.npy");
    EXPECT_EQ(a.descr, "<u2");
    EXPECT_EQ(a.shape, std::vector<uint64_t>{2});
    EXPECT_EQ(a.data, to_bytes("abcd"));
  }
}

TEST(NpyTest, ToleratesSpellingVariants) {
  const std::string data4 = "abcdefgh";
  const char* headers[] = {
      // no trailing comma, no spaces, keys in another order, double quotes
      "{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<f4\"}",
      // generous spacing and tabs, trailing newline padding
      "{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , ) , }   \n",
      // Python 2 numpy wrote long integers as 2L
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n",
      // Fortran order is the same layout in one dimension
      "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n",
  };
  for (const char* header : headers) {
    const NpyArray a = npy_parse(make_npy(1, header, data4), "t.npy");
    EXPECT_EQ(a.descr, "<f4") << header;
    EXPECT_EQ(a.shape, std::vector<uint64_t>{2}) << header;
  }
  // Two-dimensional shapes without a trailing comma.
  const NpyArray b =
      npy_parse(make_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4)}\n", data4),
                "t.npy");
  EXPECT_EQ(b.shape, (std::vector<uint64_t>{2, 4}));
}

TEST(NpyTest, OneByteTypesAcceptAnyByteOrderMarker) {
  for (const char* descr : {"<u1", "|u1", ">u1", "=u1"}) {
    const std::string header =
        std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (3,), }\n";
    EXPECT_EQ(npy_parse(make_npy(1, header, "xyz"), "t.npy").descr, "|u1") << descr;
  }
}

TEST(NpyTest, EveryTruncationIsAnInputError) {
  const std::vector<std::byte> full = to_bytes(numpy_file_f4());
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Error e = catch_error([&] { npy_parse(cut, "cut.npy"); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << n;
    EXPECT_NE(std::string(e.what()).find("cut.npy"), std::string::npos) << e.what();
  }
}

TEST(NpyTest, TruncatedDataNamesSizes) {
  std::string file = numpy_file_f4();
  file.pop_back();
  expect_input_error(to_bytes(file), "needs 12 data bytes but the file has 11 (truncated)");
}

TEST(NpyTest, TrailingDataIsRejected) {
  expect_input_error(to_bytes(numpy_file_f4() + "!"),
                     "needs 12 data bytes but the file has 13 (trailing bytes)");
}

TEST(NpyTest, HeaderLengthBeyondFile) {
  std::string file = numpy_file_f4();
  file[8] = '\xff';
  file[9] = '\x7f';
  expect_input_error(to_bytes(file), "header length 32767 extends past the end of the file (140 bytes)");
  // Version 2 with a 4 GiB header length.
  std::string v2("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14);
  expect_input_error(to_bytes(v2), "header length 4294967295 extends past the end");
}

TEST(NpyTest, ShapeProductOverflow) {
  // (2**40, 2**40) wraps to 0 in 64 bits, which would "match" empty data.
  expect_input_error(
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }\n", ""),
      "size overflow: shape (1099511627776, 1099511627776) has more than 2**64 - 1 elements");
  // The element count fits but the byte count does not: 2**62 * 4.
  expect_input_error(
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }\n", ""),
      "size overflow: shape (4611686018427387904,) of '<f4' needs more than 2**64 - 1 bytes");
  // A dimension that does not fit in 64 bits at all.
  expect_input_error(
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }\n", ""),
      "does not fit in 64 bits");
  // A zero dimension makes any product zero: no overflow, no data.
  const NpyArray a = npy_parse(
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 18446744073709551615), }\n", ""),
      "t.npy");
  EXPECT_EQ(a.num_elements(), 0u);
  // ...even when the dimensions before the zero overflow on their own.
  const NpyArray b = npy_parse(
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 0), }\n", ""),
      "t.npy");
  EXPECT_EQ(b.num_elements(), 0u);
}

TEST(NpyTest, BadMagicAndVersion) {
  expect_input_error({}, "the file is empty");
  expect_input_error(to_bytes("PK\x03\x04 zip file"), "not a .npy file");
  expect_input_error(to_bytes(std::string("\x93NUMPZ\x01\x00", 8)), "not a .npy file");
  expect_input_error(to_bytes(std::string("\x93NUM", 4)), "truncated");
  std::string file = numpy_file_f4();
  file[6] = '\x04';
  expect_input_error(to_bytes(file), "unsupported .npy format version 4.0");
  file[6] = '\x01';
  file[7] = '\x01';
  expect_input_error(to_bytes(file), "unsupported .npy format version 1.1");
}

TEST(NpyTest, UnsupportedDtypes) {
  const auto with_descr = [](const std::string& descr) {
    return make_npy(1, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }\n", "ab");
  };
  expect_input_error(with_descr("'<c8'"), "unsupported dtype '<c8'; supported dtypes: <f2 <f4");
  expect_input_error(with_descr("'<V2'"), "raw void types");
  expect_input_error(with_descr("'|O'"), "unsupported dtype '|O'");
  expect_input_error(with_descr("'>f4'"), "big-endian dtype '>f4' is not supported");
  expect_input_error(with_descr("'|f4'"), "unsupported dtype '|f4'");
  expect_input_error(with_descr("''"), "unsupported dtype ''");
  expect_input_error(with_descr("[('a', '<f4')]"), "structured dtypes");
}

TEST(NpyTest, FortranOrderRejectedForMatrices) {
  expect_input_error(
      make_npy(1, "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2), }\n", "abcd"),
      "Fortran-order (column-major) arrays with more than one dimension are not supported");
}

TEST(NpyTest, MalformedDictionaries) {
  const std::string data = "abcd";
  const struct {
    const char* header;
    const char* needle;
  } cases[] = {
      {"", "the header must start with '{'"},
      {"['descr']", "the header must start with '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "the header has no 'shape'"},
      {"{'descr': '<f4', 'shape': (1,)}", "the header has no 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (1,)}", "the header has no 'descr'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
       "key 'descr' appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", "must be True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "an integer, not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "'shape' must be a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "unexpected text after"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}'"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}", "expected ':'"},
      {"{'descr': '<f4", "unterminated string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
      {"{descr: '<f4'}", "expected a quoted key"},
      {"{'de\\'scr': '<f4'}", "unsupported character in a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    expect_input_error(make_npy(1, c.header, data), c.needle);
  }
}

TEST(NpyTest, NumElementsAndItemsize) {
  NpyArray a;
  a.descr = "<i2";
  a.shape = {};
  EXPECT_EQ(a.num_elements(), 1u);
  a.shape = {3, 4, 5};
  EXPECT_EQ(a.num_elements(), 60u);
  EXPECT_EQ(a.itemsize(), 2u);
  a.shape = {uint64_t{1} << 40, uint64_t{1} << 40};
  EXPECT_EQ(catch_error([&] { (void)a.num_elements(); }).kind(), ErrorKind::kInput);
  a.descr = "<V2";
  // A dtype met in a file is the input's problem (exit 1), not a usage one.
  EXPECT_EQ(catch_error([&] { (void)a.itemsize(); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(npy_descr_itemsize("<f8"), 8u);
  EXPECT_EQ(npy_descr_itemsize(">f8"), 0u);
}

TEST(NpyTest, SerializeRejectsBadArguments) {
  const std::vector<uint64_t> shape = {2};
  const float data[2] = {1, 2};
  EXPECT_EQ(catch_error([&] { npy_serialize("<c8", shape, data, 8); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(catch_error([&] { npy_serialize("<f4", shape, data, 7); }).kind(), ErrorKind::kInternal);
  const std::vector<uint64_t> huge = {uint64_t{1} << 40, uint64_t{1} << 40};
  EXPECT_EQ(catch_error([&] { npy_serialize("<f4", huge, data, 8); }).kind(), ErrorKind::kInternal);
}

class NpyFileTest : public testing_support::TempDirTest {};

TEST_F(NpyFileTest, WriteThenRead) {
  const std::string path = (dir_ / "w.npy").string();
  const std::vector<uint64_t> shape = {2, 3};
  const std::vector<int32_t> values = {1, -2, 3, -4, 5, -6};
  npy_write_atomic(path, "<i4", shape, values.data(), values.size() * 4);
  EXPECT_EQ(read_file(path), npy_serialize("<i4", shape, values.data(), values.size() * 4));
  const NpyArray a = npy_read(path);
  EXPECT_EQ(a.descr, "<i4");
  EXPECT_EQ(a.shape, shape);
  ASSERT_EQ(a.data.size(), 24u);
  std::vector<int32_t> back(6);
  std::memcpy(back.data(), a.data.data(), 24);
  EXPECT_EQ(back, values);
}

TEST_F(NpyFileTest, ReadErrorsNameThePath) {
  const std::string missing = (dir_ / "missing.npy").string();
  EXPECT_EQ(catch_error([&] { npy_read(missing); }).kind(), ErrorKind::kIo);
  const std::string bad = (dir_ / "bad.npy").string();
  write_file_atomic(bad, "not numpy", 9);
  const Error e = catch_error([&] { npy_read(bad); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_EQ(std::string(e.what()),
            "invalid .npy file '" + bad + "': not a .npy file (it does not start with \"\\x93NUMPY\")");
}

TEST_F(NpyFileTest, FailedWriteLeavesNoFile) {
  const std::string path = (dir_ / "x.npy").string();
  const std::vector<uint64_t> shape = {4};
  const float data[3] = {1, 2, 3};
  EXPECT_EQ(catch_error([&] { npy_write_atomic(path, "<f4", shape, data, 12); }).kind(),
            ErrorKind::kInternal);
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace lowbit

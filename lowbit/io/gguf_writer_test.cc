#include "lowbit/io/gguf_writer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"

namespace lowbit {
namespace {

using testing_support::catch_error;
namespace fs = std::filesystem;

class GgufWriterTest : public testing_support::TempDirTest {};

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 31 + seed * 7 + 1) & 0xff);
  return out;
}

// Expects a kUsage error whose message names the file and holds `fragment`.
template <typename Fn>
void expect_usage(const GgufWriter& w, Fn fn, const std::string& fragment) {
  const Error e = catch_error(fn);
  const std::string message = e.what();
  EXPECT_EQ(e.kind(), ErrorKind::kUsage) << message;
  EXPECT_EQ(message.rfind("cannot write GGUF file '" + w.path() + "': ", 0), 0u) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << "lacks \"" << fragment << "\": " << message;
}

// ------------------------------------------------------------ layout

// The bytes below are derived by hand from the GGUF layout (gguf_format.h):
// no lowbit code produces them.
TEST_F(GgufWriterTest, WritesTheDocumentedLayoutByteForByte) {
  const float x[3] = {1.0f, -2.0f, 0.5f};  // 0x3f800000, 0xc0000000, 0x3f000000
  const int8_t y[5] = {1, -1, 2, -2, 127};
  {
    GgufWriter w(path("l.gguf"));
    w.add_metadata("a", GgufValue::of(uint8_t{7}));
    EXPECT_EQ(w.declare_tensor("x", {3}, GgmlType::kF32), 0u);
    EXPECT_EQ(w.declare_tensor("y", {5}, GgmlType::kI8), 1u);
    w.begin();
    EXPECT_EQ(w.data_start(), 128u);
    EXPECT_EQ(w.tensor_offset(1), 32u);
    w.write_tensor_data(0, x, sizeof x);
    w.write_tensor_data(1, y, sizeof y);
    w.commit();
  }
  std::vector<uint8_t> expected = {
      'G', 'G', 'U', 'F', 3, 0, 0, 0,  // magic, version 3
      2, 0, 0, 0, 0, 0, 0, 0,          // 2 tensors
      1, 0, 0, 0, 0, 0, 0, 0,          // 1 metadata entry
      1, 0, 0, 0, 0, 0, 0, 0, 'a',     // key "a"
      0, 0, 0, 0, 7,                   // UINT8 7
      // "x": 1 dimension, ne 3, F32 (0), offset 0
      1, 0, 0, 0, 0, 0, 0, 0, 'x', 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      // "y": 1 dimension, ne 5, I8 (24), offset 32 (12 bytes of x rounded up to 32)
      1, 0, 0, 0, 0, 0, 0, 0, 'y', 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 24, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0,
  };
  expected.resize(128, 0);  // 104 header bytes, zero-padded to the data section at 128
  for (uint8_t b : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f}) expected.push_back(b);
  expected.resize(128 + 32, 0);
  for (int8_t v : y) expected.push_back(static_cast<uint8_t>(v));
  expected.resize(128 + 64, 0);  // the file ends padded to the alignment
  const std::vector<std::byte> got = read_file(path("l.gguf"));
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(static_cast<uint8_t>(got[i]), expected[i]) << "byte " << i;
}

TEST_F(GgufWriterTest, TensorsAtEveryAlignment) {
  struct Spec {
    const char* name;
    std::vector<uint64_t> ne;
    GgmlType type;
  };
  const std::vector<Spec> specs = {{"f32", {3}, GgmlType::kF32},          {"q4", {32, 2}, GgmlType::kQ4_0},
                                   {"empty", {0}, GgmlType::kF16},        {"i8", {5}, GgmlType::kI8},
                                   {"scalar", {}, GgmlType::kF32},        {"q6k", {256}, GgmlType::kQ6_K},
                                   {"bf16", {7, 1, 1, 1}, GgmlType::kBF16}};
  for (uint32_t alignment = 1; alignment <= 65536; alignment *= 2) {
    SCOPED_TRACE(alignment);
    const std::string file = path("a" + std::to_string(alignment) + ".gguf");
    std::vector<std::vector<std::byte>> data;
    std::vector<uint64_t> offsets;
    {
      GgufWriter w(file);
      w.set_alignment(alignment);
      EXPECT_EQ(w.alignment(), alignment);
      for (const Spec& s : specs) w.declare_tensor(s.name, s.ne, s.type);
      w.begin();
      EXPECT_EQ(w.data_start() % alignment, 0u);
      for (size_t i = 0; i < specs.size(); ++i) {
        data.push_back(pattern(static_cast<size_t>(w.tensor_nbytes(i)), static_cast<unsigned>(i)));
        offsets.push_back(w.tensor_offset(i));
        w.write_tensor_data(i, data.back().data(), data.back().size());
      }
      w.commit();
    }
    const GgufFile f = GgufFile::open(file);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.get_u32("general.alignment"), alignment);
    EXPECT_EQ(f.data_start() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), specs.size());
    uint64_t expected_offset = 0;  // packed in order, each at the next multiple of the alignment
    std::vector<bool> is_data(f.file_size(), false);
    for (size_t i = 0; i < specs.size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      EXPECT_EQ(t.name, specs[i].name);
      EXPECT_EQ(t.ne, specs[i].ne);
      EXPECT_EQ(t.type, specs[i].type);
      EXPECT_EQ(t.offset, expected_offset);
      EXPECT_EQ(t.offset, offsets[i]);
      EXPECT_TRUE(std::equal(t.bytes().begin(), t.bytes().end(), data[i].begin(), data[i].end())) << t.name;
      for (uint64_t b = 0; b < t.nbytes; ++b) is_data[f.data_start() + t.offset + b] = true;
      expected_offset = (t.offset + t.nbytes + alignment - 1) / alignment * alignment;
    }
    EXPECT_EQ(f.file_size(), f.data_start() + expected_offset);
    // Every byte after the tensor infos that is not tensor data is padding: zero.
    const std::byte* base = f.tensors()[0].data - f.tensors()[0].offset - f.data_start();
    for (uint64_t b = f.header_size(); b < f.file_size(); ++b) {
      if (!is_data[b] && base[b] != std::byte{0}) ADD_FAILURE() << "padding byte " << b << " is not zero";
    }
  }
}

TEST_F(GgufWriterTest, DefaultAlignmentWritesNoKey) {
  const float v[3] = {1, 2, 3};
  {
    GgufWriter w(path("d.gguf"));
    EXPECT_EQ(w.alignment(), 32u);
    w.declare_tensor("t", {3}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(0, v, sizeof v);
    w.commit();
  }
  const GgufFile f = GgufFile::open(path("d.gguf"));
  EXPECT_EQ(f.find("general.alignment"), nullptr);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_start() % 32, 0u);
  EXPECT_EQ(f.file_size(), f.data_start() + 32);
}

TEST_F(GgufWriterTest, EmptyFileCommitsWithoutBegin) {
  {
    GgufWriter w(path("e.gguf"));
    w.commit();
  }
  const GgufFile f = GgufFile::open(path("e.gguf"));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.file_size(), 32u);  // the 24-byte header padded to 32
}

TEST_F(GgufWriterTest, ChunkedWrites) {
  const std::vector<std::byte> a = pattern(18 * 4, 1);  // 4 blocks of Q4_0
  const std::vector<std::byte> b = pattern(6, 2);
  {
    GgufWriter w(path("c.gguf"));
    w.declare_tensor("a", {128}, GgmlType::kQ4_0);
    w.declare_tensor("zero", {0, 3}, GgmlType::kF32);
    w.declare_tensor("b", {3}, GgmlType::kF16);
    w.begin();
    for (size_t i = 0; i < a.size(); ++i) {
      w.write_tensor_data(0, a.data() + i, 1);
      w.write_tensor_data(0, a.data(), 0);  // empty chunks are fine
    }
    w.write_tensor_data("b", b.data(), 2);
    w.write_tensor_data("b", b.data() + 2, 4);
    w.commit();
  }
  const GgufFile f = GgufFile::open(path("c.gguf"));
  EXPECT_TRUE(std::equal(f.tensor("a").bytes().begin(), f.tensor("a").bytes().end(), a.begin(), a.end()));
  EXPECT_TRUE(std::equal(f.tensor("b").bytes().begin(), f.tensor("b").bytes().end(), b.begin(), b.end()));
  EXPECT_EQ(f.tensor("zero").nbytes, 0u);
}

// ------------------------------------------------------------ misuse

TEST_F(GgufWriterTest, RefusesBadDeclarationsAndMetadata) {
  GgufWriter w(path("m.gguf"));
  w.add_metadata("k", GgufValue::of(uint8_t{1}));
  expect_usage(w, [&] { w.add_metadata("k", GgufValue::of(uint8_t{2})); }, "metadata key 'k' added twice");
  expect_usage(w, [&] { w.add_metadata("general.alignment", GgufValue::of(int32_t{32})); },
               "general.alignment must be a UINT32, not INT32");
  expect_usage(w, [&] { w.set_alignment(48); }, "general.alignment 48 is not a power of two");
  expect_usage(w, [&] { w.set_alignment(0); }, "general.alignment 0 is not a power of two");
  GgufValue deep = GgufValue::empty_array(GgufType::kUint8);
  for (int i = 0; i < GgufFile::kMaxArrayDepth; ++i) deep = GgufValue::array(std::vector<GgufValue>{deep});
  expect_usage(w, [&] { w.add_metadata("deep", deep); }, "nests arrays more than 16 levels deep");

  w.declare_tensor("t", {32}, GgmlType::kQ8_0);
  expect_usage(w, [&] { w.declare_tensor("t", {32}, GgmlType::kQ8_0); }, "tensor 't' declared twice");
  expect_usage(w, [&] { w.declare_tensor("", {1}, GgmlType::kF32); }, "a tensor name is empty");
  expect_usage(w, [&] { w.declare_tensor(std::string(64, 'n'), {1}, GgmlType::kF32); },
               "is 64 bytes long; llama.cpp accepts at most 63");
  w.declare_tensor(std::string(63, 'n'), {1}, GgmlType::kF32);
  expect_usage(w, [&] { w.declare_tensor("d", {1, 1, 1, 1, 1}, GgmlType::kF32); },
               "tensor 'd' has 5 dimensions; ggml allows at most 4");
  expect_usage(w, [&] { w.declare_tensor("q", {16, 2}, GgmlType::kQ4_K); },
               "tensor 'q' has 16 elements per row (ne[0]), not a multiple of the Q4_K block size 256");
  expect_usage(w, [&] { w.declare_tensor("o", {1ull << 62, 4}, GgmlType::kF32); }, "size overflow");
  expect_usage(w, [&] { w.declare_tensor("r", {1}, static_cast<GgmlType>(4)); },
               "tensor 'r' has ggml type id 4, which ggml does not define");

  // None of the refused calls changed anything: the file is as declared.
  EXPECT_EQ(w.metadata().size(), 1u);
  EXPECT_EQ(w.alignment(), 32u);
  EXPECT_EQ(w.tensor_count(), 2u);
  const std::vector<std::byte> q8 = pattern(34, 3);
  const float one = 1;
  w.begin();
  w.write_tensor_data(0, q8.data(), q8.size());
  w.write_tensor_data(1, &one, 4);
  w.commit();
  const GgufFile f = GgufFile::open(path("m.gguf"));
  EXPECT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.metadata().size(), 1u);
}

TEST_F(GgufWriterTest, EnforcesTheCallOrder) {
  const std::vector<std::byte> data = pattern(64, 0);
  GgufWriter w(path("o.gguf"));
  w.declare_tensor("a", {4}, GgmlType::kF32);
  w.declare_tensor("b", {2}, GgmlType::kF32);
  expect_usage(w, [&] { w.write_tensor_data(0, data.data(), 16); }, "tensor data written before begin()");
  expect_usage(w, [&] { w.tensor_offset(0); }, "only after begin()");
  w.begin();
  expect_usage(w, [&] { w.begin(); }, "begin() called twice");
  expect_usage(w, [&] { w.add_metadata("k", GgufValue::of(true)); }, "metadata key 'k' added after begin()");
  expect_usage(w, [&] { w.remove_metadata("k"); }, "removed after begin()");
  expect_usage(w, [&] { w.set_alignment(64); }, "added after begin()");
  expect_usage(w, [&] { w.declare_tensor("c", {1}, GgmlType::kF32); }, "tensor 'c' declared after begin()");
  expect_usage(w, [&] { w.write_tensor_data(1, data.data(), 8); },
               "tensor 'b' written before tensor 'a' was complete (0 of 16 bytes written)");
  expect_usage(w, [&] { w.write_tensor_data(2, data.data(), 8); }, "no tensor with index 2 (2 declared)");
  expect_usage(w, [&] { w.write_tensor_data("zz", data.data(), 8); }, "tensor 'zz' was not declared");
  expect_usage(w, [&] { w.write_tensor_data(0, nullptr, 8); }, "null data pointer for tensor 'a'");
  expect_usage(w, [&] { w.write_tensor_data(0, data.data(), 17); },
               "too much data for tensor 'a': it has 16 bytes, 0 already written, 17 more given");
  w.write_tensor_data(0, data.data(), 10);
  expect_usage(w, [&] { w.write_tensor_data(0, data.data(), 7); }, "10 already written, 7 more given");
  expect_usage(w, [&] { w.commit(); }, "tensor 'a' is incomplete: 10 of 16 bytes written");
  w.write_tensor_data(0, data.data() + 10, 6);
  w.write_tensor_data(1, data.data(), 8);
  expect_usage(w, [&] { w.write_tensor_data(0, data.data(), 1); },
               "tensor 'a' written after tensor 'b'; tensors must be written in declaration order");
  w.commit();
  expect_usage(w, [&] { w.commit(); }, "commit() called twice");
  expect_usage(w, [&] { w.write_tensor_data(1, data.data(), 1); }, "tensor data written after commit()");
  expect_usage(w, [&] { w.begin(); }, "begin() called after commit()");
  EXPECT_EQ(GgufFile::open(path("o.gguf")).tensor("b").nbytes, 8u);
}

// ------------------------------------------------------------ metadata editing

TEST_F(GgufWriterTest, SetAndRemoveMetadataKeepTheOrder) {
  GgufWriter w(path("s.gguf"));
  w.add_metadata("a", GgufValue::of(uint32_t{1}));
  w.set_alignment(64);
  w.add_metadata("b", GgufValue::of("x"));
  w.set_metadata("a", GgufValue::of(2.5f));  // replaced in place, even with another type
  w.set_metadata("c", GgufValue::of(int64_t{-3}));  // appended
  EXPECT_TRUE(w.remove_metadata("b"));
  EXPECT_FALSE(w.remove_metadata("b"));
  ASSERT_EQ(w.metadata().size(), 3u);
  EXPECT_EQ(w.metadata()[0].key, "a");
  EXPECT_EQ(w.metadata()[1].key, "general.alignment");
  EXPECT_EQ(w.metadata()[2].key, "c");
  EXPECT_EQ(w.alignment(), 64u);
  w.set_metadata("general.alignment", GgufValue::of(uint32_t{8}));
  EXPECT_EQ(w.alignment(), 8u);
  EXPECT_TRUE(w.remove_metadata("general.alignment"));
  EXPECT_EQ(w.alignment(), 32u);
  w.commit();
  const GgufFile f = GgufFile::open(path("s.gguf"));
  EXPECT_EQ(f.metadata(), w.metadata());
  EXPECT_EQ(f.get_f32("a"), 2.5f);
}

TEST_F(GgufWriterTest, CopyMetadataChangesOnlyWhatIsSet) {
  const std::vector<std::byte> t = pattern(64 * 2, 5);
  {
    GgufWriter w(path("in.gguf"));
    w.add_metadata("general.architecture", GgufValue::of("llama"));
    w.set_alignment(64);
    w.add_metadata("general.file_type", GgufValue::of(uint32_t{0}));
    w.add_metadata("tokenizer.ggml.tokens", GgufValue::array(std::vector<std::string>{"<s>", "a", ""}));
    w.add_metadata("tokenizer.ggml.scores", GgufValue::array(std::vector<float>{0.0f, -1.5f, -2.0f}));
    w.declare_tensor("w", {64}, GgmlType::kF16);
    w.begin();
    w.write_tensor_data(0, t.data(), t.size());
    w.commit();
  }
  const GgufFile in = GgufFile::open(path("in.gguf"));
  {
    GgufWriter w(path("out.gguf"));
    w.copy_metadata(in);
    EXPECT_EQ(w.alignment(), 64u);  // the input's, carried by general.alignment
    w.set_metadata("general.file_type", GgufValue::of(uint32_t{8}));
    w.add_metadata("general.quantized_by", GgufValue::of("lowbit"));
    expect_usage(w, [&] { w.copy_metadata(in); }, "added twice");
    for (const GgufTensorInfo& ti : in.tensors()) w.declare_tensor(ti.name, ti.ne, ti.type);
    w.begin();
    for (size_t i = 0; i < in.tensors().size(); ++i) {
      w.write_tensor_data(i, in.tensors()[i].data, in.tensors()[i].nbytes);
    }
    w.commit();
  }
  const GgufFile out = GgufFile::open(path("out.gguf"));
  std::vector<GgufKv> expected = in.metadata();
  expected[2].value = GgufValue::of(uint32_t{8});
  expected.push_back({"general.quantized_by", GgufValue::of("lowbit")});
  EXPECT_EQ(out.metadata(), expected);
  EXPECT_EQ(out.alignment(), 64u);
  EXPECT_TRUE(std::equal(out.tensor("w").bytes().begin(), out.tensor("w").bytes().end(), t.begin(), t.end()));
}

// ------------------------------------------------------------ all or nothing

TEST_F(GgufWriterTest, UncommittedWritesLeaveNoFile) {
  const float f[2] = {1, 2};
  {
    GgufWriter w(path("u.gguf"));
    w.declare_tensor("a", {2}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(0, f, 8);
  }  // no commit
  EXPECT_TRUE(listing().empty());
  EXPECT_THROW(
      {
        GgufWriter w(path("u.gguf"));
        w.declare_tensor("a", {2}, GgmlType::kF32);
        w.begin();
        w.write_tensor_data(0, f, 4);
        throw std::runtime_error("producer failed");
      },
      std::runtime_error);
  EXPECT_TRUE(listing().empty());
}

TEST_F(GgufWriterTest, FailedCommitKeepsTheOldFile) {
  const float f[2] = {1, 2};
  {
    GgufWriter w(path("keep.gguf"));
    w.add_metadata("v", GgufValue::of(uint32_t{1}));
    w.commit();
  }
  const std::vector<std::byte> before = read_file(path("keep.gguf"));
  {
    GgufWriter w(path("keep.gguf"));
    w.add_metadata("v", GgufValue::of(uint32_t{2}));
    w.declare_tensor("a", {2}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(0, f, 4);
    EXPECT_THROW(w.commit(), Error);  // incomplete
  }
  EXPECT_EQ(read_file(path("keep.gguf")), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"keep.gguf"});
}

TEST_F(GgufWriterTest, UnwritableDirectoriesFailAtOnce) {
  Error e = catch_error([&] { GgufWriter w(path("no/such/dir/x.gguf")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find("cannot write '" + path("no/such/dir/x.gguf") + "'"), std::string::npos);
  write_file_atomic(path("plain"), "x", 1);  // a file where a directory should be
  e = catch_error([&] { GgufWriter w(path("plain/x.gguf")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find(std::strerror(ENOTDIR)), std::string::npos) << e.what();
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  fs::create_directory(path("ro"));
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  e = catch_error([&] { GgufWriter w(path("ro/x.gguf")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find(std::strerror(EACCES)), std::string::npos) << e.what();
}

// /dev/full fails every write with ENOSPC, as a full disk does (AtomicFile
// writes devices directly, so no temporary file is involved).
TEST_F(GgufWriterTest, FullDiskIsAnIoError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  GgufWriter w("/dev/full");
  w.add_metadata("general.name", GgufValue::of("x"));
  const Error e = catch_error([&] { w.begin(); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find("the disk is full"), std::string::npos) << e.what();
}

// A file-size limit surfaces as a kIo error naming the file, and the
// temporary file is removed. The limit is set in a forked child so that
// this process keeps its own; the child leaves the message in a file under
// the limit and reports through its exit status (gtest assertions cannot
// cross the fork).
TEST_F(GgufWriterTest, FileSizeLimitFailsCleanly) {
  const std::string target = path("big.gguf");
  const std::string report = path("report.txt");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ignore_sigxfsz();
    const struct rlimit limit = {4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    const std::vector<std::byte> data = pattern(3000, 0);
    try {
      GgufWriter w(target);
      w.declare_tensor("a", {3000}, GgmlType::kI8);
      w.declare_tensor("b", {3000}, GgmlType::kI8);
      w.begin();
      w.write_tensor_data(0, data.data(), data.size());
      w.write_tensor_data(1, data.data(), data.size());  // crosses 4096 bytes
      w.commit();
    } catch (const Error& e) {
      write_file_atomic(report, e.what(), std::strlen(e.what()));
      ::_exit(e.kind() == ErrorKind::kIo ? 0 : 2);
    }
    ::_exit(1);  // no error
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by a signal: " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const std::vector<std::byte> text = read_file(report);
  const std::string message(reinterpret_cast<const char*>(text.data()), text.size());
  EXPECT_NE(message.find("cannot write '" + target + "': " + std::strerror(EFBIG)), std::string::npos) << message;
  EXPECT_NE(message.find("ulimit -f"), std::string::npos) << message;
  EXPECT_EQ(listing(), std::vector<std::string>{"report.txt"});  // no temporary file left
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

TEST_F(GgufWriterTest, RetypeAfterBeginMovesTheLaterTensorsAndRewritesTheHeader) {
  const std::string out = path("r.gguf");
  GgufWriter w(out);
  w.add_metadata("general.name", GgufValue::of(std::string("x")));
  w.declare_tensor("a", {32, 2}, GgmlType::kQ8_0);
  w.declare_tensor("b", {32, 2}, GgmlType::kQ8_0);
  w.declare_tensor("c", {3}, GgmlType::kF32);
  w.begin();
  const std::vector<uint8_t> q8(w.tensor_nbytes(0), 0x11);
  w.write_tensor_data(0, q8.data(), q8.size());
  // Tensor a is written: it can no longer change.
  EXPECT_EQ(catch_error([&] { w.retype_tensor(0, GgmlType::kF32); }).kind(), ErrorKind::kUsage);
  w.retype_tensor(1, GgmlType::kF32);
  EXPECT_EQ(w.tensor_nbytes(1), 64u * 4);
  const std::vector<float> b(64, 2.5f), c = {1, 2, 3};
  w.write_tensor_data(1, b.data(), b.size() * 4);
  w.write_tensor_data(2, c.data(), c.size() * 4);
  w.commit();
  const GgufFile g = GgufFile::open(out);
  ASSERT_EQ(g.tensors().size(), 3u);
  EXPECT_EQ(g.tensors()[0].type, GgmlType::kQ8_0);
  EXPECT_EQ(g.tensors()[1].type, GgmlType::kF32);
  EXPECT_EQ(g.tensors()[2].offset, g.tensors()[1].offset + 64 * 4);  // 32-byte aligned already
  const auto* bytes = g.mapping().data() + g.data_start();
  float v[3];
  std::memcpy(v, bytes + g.tensors()[2].offset, 12);
  EXPECT_EQ(v[0], 1.f);
  EXPECT_EQ(v[2], 3.f);
  float b0;
  std::memcpy(&b0, bytes + g.tensors()[1].offset, 4);
  EXPECT_EQ(b0, 2.5f);
}

TEST_F(GgufWriterTest, RetypeBeforeBeginIsAMistake) {
  GgufWriter w(path("r.gguf"));
  w.declare_tensor("a", {32}, GgmlType::kQ8_0);
  EXPECT_EQ(catch_error([&] { w.retype_tensor(0, GgmlType::kF32); }).kind(), ErrorKind::kUsage);
}

}  // namespace
}  // namespace lowbit

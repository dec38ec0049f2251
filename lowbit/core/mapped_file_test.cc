#include "lowbit/core/mapped_file.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

namespace fs = std::filesystem;

class MappedFileTest : public testing_support::TempDirTest {};

std::vector<std::byte> pattern_bytes(size_t n) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(i * 131 + 17);
  return out;
}

std::vector<std::byte> contents(const MappedFile& file) {
  return std::vector<std::byte>(file.data(), file.data() + file.size());
}

TEST_F(MappedFileTest, MapsRegularFile) {
  const auto data = pattern_bytes(100003);  // not a whole number of pages
  write_file_atomic(path("f"), data.data(), data.size());
  const MappedFile file = MappedFile::open(path("f"));
  EXPECT_TRUE(file.is_mapped());
  EXPECT_EQ(file.path(), path("f"));
  ASSERT_EQ(file.size(), data.size());
  EXPECT_EQ(contents(file), data);
  EXPECT_EQ(file.bytes().size(), data.size());
}

TEST_F(MappedFileTest, EmptyFileHasNullData) {
  write_file_atomic(path("empty"), nullptr, 0);
  const MappedFile file = MappedFile::open(path("empty"));
  EXPECT_EQ(file.data(), nullptr);
  EXPECT_EQ(file.size(), 0u);
  EXPECT_FALSE(file.is_mapped());
  file.advise_sequential();
  file.advise_willneed(0, 100);
}

TEST_F(MappedFileTest, DefaultConstructedIsEmpty) {
  const MappedFile file;
  EXPECT_EQ(file.data(), nullptr);
  EXPECT_EQ(file.size(), 0u);
}

TEST_F(MappedFileTest, MissingFileThrowsIo) {
  const Error e = catch_error([&] { MappedFile::open(path("nope")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()),
            std::string("cannot read '") + path("nope") + "': No such file or directory");
}

TEST_F(MappedFileTest, DirectoryIsRefused) {
  const Error e = catch_error([&] { MappedFile::open(dir_.string()); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()), std::string("cannot read '") + dir_.string() + "': Is a directory");
}

TEST_F(MappedFileTest, UnreadableFileThrowsIo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read a mode-000 file";
  write_file_atomic(path("secret"), "x", 1);
  ASSERT_EQ(::chmod(path("secret").c_str(), 0), 0);
  const Error e = catch_error([&] { MappedFile::open(path("secret")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
}

TEST_F(MappedFileTest, MoveKeepsTheAddress) {
  const auto data = pattern_bytes(5000);
  write_file_atomic(path("f"), data.data(), data.size());
  MappedFile a = MappedFile::open(path("f"));
  const std::byte* address = a.data();

  MappedFile b(std::move(a));
  EXPECT_EQ(b.data(), address);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);

  MappedFile c = MappedFile::open(path("f"));
  c = std::move(b);  // releases c's own mapping
  EXPECT_EQ(c.data(), address);
  EXPECT_EQ(contents(c), data);
  c = MappedFile();
  EXPECT_EQ(c.data(), nullptr);
}

// AtomicFile replaces files by rename, so a mapping of the old file keeps
// showing the old contents: lowbit's own writes never pull pages from under
// a reader.
TEST_F(MappedFileTest, MappingSurvivesReplacementByRename) {
  write_file_atomic(path("f"), "old contents", 12);
  const MappedFile file = MappedFile::open(path("f"));
  write_file_atomic(path("f"), "new", 3);
  ASSERT_EQ(file.size(), 12u);
  EXPECT_EQ(std::memcmp(file.data(), "old contents", 12), 0);
}

TEST_F(MappedFileTest, CharacterDeviceIsReadNotMapped) {
  const MappedFile file = MappedFile::open("/dev/null");
  EXPECT_FALSE(file.is_mapped());
  EXPECT_EQ(file.size(), 0u);
  EXPECT_EQ(file.data(), nullptr);
}

TEST_F(MappedFileTest, FifoIsReadIntoMemory) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0) << std::strerror(errno);
  const auto data = pattern_bytes(200000);  // more than a pipe buffer
  std::thread writer([&] {
    FILE* f = std::fopen(path("fifo").c_str(), "wb");
    if (f == nullptr) return;
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  });
  const MappedFile file = MappedFile::open(path("fifo"));
  writer.join();
  EXPECT_FALSE(file.is_mapped());
  EXPECT_EQ(contents(file), data);
}

TEST_F(MappedFileTest, AdviceIsHarmlessForAnyRange) {
  const auto data = pattern_bytes(3 * 4096 + 5);
  write_file_atomic(path("f"), data.data(), data.size());
  const MappedFile file = MappedFile::open(path("f"));
  file.advise_sequential();
  file.advise_willneed(0, file.size());
  file.advise_willneed(4097, 10);
  file.advise_willneed(file.size() - 1, 1000000);
  file.advise_willneed(file.size(), 1);
  file.advise_willneed(SIZE_MAX, SIZE_MAX);
  EXPECT_EQ(contents(file), data);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Resident pages of this process (/proc/self/statm, second field).
size_t resident_pages() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident : 0;
}

TEST_F(MappedFileTest, DontNeedDropsResidentPagesAndKeepsTheBytes) {
  const size_t n = size_t{16} << 20;
  std::vector<std::byte> data = pattern_bytes(n);
  write_file_atomic(path("big"), data.data(), data.size());
  std::vector<std::byte>().swap(data);
  const MappedFile m = MappedFile::open(path("big"));
  const long page = ::sysconf(_SC_PAGESIZE);
  // Touch every page so that the whole file is resident.
  unsigned sum = 0;
  for (size_t i = 0; i < n; i += static_cast<size_t>(page)) sum += static_cast<unsigned>(m.data()[i]);
  const size_t before = resident_pages();
  if (before == 0) GTEST_SKIP() << "no /proc/self/statm";
  m.advise_dontneed(0, n);
  const size_t after = resident_pages();
  EXPECT_LE(after + (n / static_cast<size_t>(page)) * 3 / 4, before) << "resident " << before << " -> " << after;
  // The bytes read back unchanged.
  unsigned again = 0;
  for (size_t i = 0; i < n; i += static_cast<size_t>(page)) again += static_cast<unsigned>(m.data()[i]);
  EXPECT_EQ(again, sum);
  for (size_t i : {size_t{0}, size_t{12345}, n - 1}) {
    EXPECT_EQ(m.data()[i], static_cast<std::byte>(i * 131 + 17)) << i;
  }
  // Ranges outside the file, empty or smaller than a page do nothing harmful.
  m.advise_dontneed(n + 5, 10);
  m.advise_dontneed(3, 0);
  m.advise_dontneed(100, 10);
  EXPECT_EQ(m.data()[105], static_cast<std::byte>(105 * 131 + 17));
}

}  // namespace
}  // namespace lowbit

#include "lowbit/core/file_io.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

namespace fs = std::filesystem;

// A fresh empty directory per test, removed afterwards, so that "leaves
// nothing behind" can be checked by listing it.
class FileIoTest : public testing_support::TempDirTest {};

std::vector<std::byte> bytes_of(const std::string& text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

// Runs fn and returns the lowbit::Error it throws; fails the test if it
// throws nothing.
TEST_F(FileIoTest, RoundTrip) {
  std::vector<std::byte> data(100000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 31 + 7);
  write_file_atomic(path("a.bin"), data.data(), data.size());
  EXPECT_EQ(read_file(path("a.bin")), data);
  EXPECT_EQ(listing(), std::vector<std::string>{"a.bin"});
}

TEST_F(FileIoTest, EmptyFileRoundTrip) {
  write_file_atomic(path("empty"), nullptr, 0);
  EXPECT_TRUE(read_file(path("empty")).empty());
}

TEST_F(FileIoTest, ManyWritesAppend) {
  AtomicFile out(path("parts"));
  out.write("abc", 3);
  out.write("", 0);
  out.write("defg", 4);
  EXPECT_EQ(out.size(), 7u);
  out.commit();
  EXPECT_EQ(read_file(path("parts")), bytes_of("abcdefg"));
}

TEST_F(FileIoTest, ReplacesExistingFileOnlyOnCommit) {
  write_file_atomic(path("f"), "old", 3);
  {
    AtomicFile out(path("f"));
    out.write("new contents", 12);
    // Until commit the old file is still what readers see.
    EXPECT_EQ(read_file(path("f")), bytes_of("old"));
    out.commit();
  }
  EXPECT_EQ(read_file(path("f")), bytes_of("new contents"));
  {
    AtomicFile abandoned(path("f"));
    abandoned.write("xx", 2);
  }
  EXPECT_EQ(read_file(path("f")), bytes_of("new contents"));
  EXPECT_EQ(listing(), std::vector<std::string>{"f"});
}

TEST_F(FileIoTest, TempFileIsBesideTheFinalPath) {
  AtomicFile out(path("x.npy"));
  EXPECT_EQ(out.final_path(), path("x.npy"));
  EXPECT_EQ(out.temp_path().rfind(path("x.npy.tmp."), 0), 0u) << out.temp_path();
  EXPECT_TRUE(fs::exists(out.temp_path()));
}

TEST_F(FileIoTest, DestroyedWithoutCommitLeavesNothing) {
  std::string temp;
  {
    AtomicFile out(path("never"));
    out.write("partial", 7);
    temp = out.temp_path();
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(path("never")));
  EXPECT_TRUE(listing().empty());
}

TEST_F(FileIoTest, CommittedFileHasUmaskMode) {
  const mode_t old_mask = ::umask(027);
  write_file_atomic(path("m"), "x", 1);
  ::umask(old_mask);
  struct stat st;
  ASSERT_EQ(::stat(path("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(FileIoTest, MissingDirectoryThrowsIoAndLeavesNothing) {
  const std::string target = path("no_such_dir/out.bin");
  const Error e = catch_error([&] { write_file_atomic(target, "x", 1); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()),
            "cannot write '" + target + "': " + std::strerror(ENOENT));
  EXPECT_TRUE(listing().empty());
}

TEST_F(FileIoTest, DirectoryAsTargetThrowsIo) {
  fs::create_directory(path("d"));
  const Error e = catch_error([&] { AtomicFile out(path("d")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()), "cannot write '" + path("d") + "': " + std::strerror(EISDIR));
  EXPECT_EQ(listing(), std::vector<std::string>{"d"});
}

TEST_F(FileIoTest, UnwritableDirectoryThrowsIo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  fs::create_directory(path("ro"));
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  const Error e = catch_error([&] { write_file_atomic(path("ro/f"), "x", 1); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()), "cannot write '" + path("ro/f") + "': " + std::strerror(EACCES));
  fs::permissions(path("ro"), fs::perms::owner_all);
}

TEST_F(FileIoTest, DevNullIsWrittenDirectly) {
  if (!fs::exists("/dev/null")) GTEST_SKIP();
  AtomicFile out("/dev/null");
  EXPECT_TRUE(out.temp_path().empty());
  out.write("discard me", 10);
  out.commit();
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(FileIoTest, CommitTwiceIsAnInternalError) {
  AtomicFile out(path("twice"));
  out.commit();
  EXPECT_EQ(catch_error([&] { out.commit(); }).kind(), ErrorKind::kInternal);
  EXPECT_EQ(catch_error([&] { out.write("x", 1); }).kind(), ErrorKind::kInternal);
  EXPECT_TRUE(read_file(path("twice")).empty());
}

TEST_F(FileIoTest, ReadMissingFileThrowsIo) {
  const Error e = catch_error([&] { read_file(path("missing")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()),
            "cannot read '" + path("missing") + "': " + std::strerror(ENOENT));
}

TEST_F(FileIoTest, ReadDirectoryThrowsIo) {
  const Error e = catch_error([&] { read_file(dir_.string()); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()),
            "cannot read '" + dir_.string() + "': " + std::strerror(EISDIR));
}

TEST_F(FileIoTest, ReadUnreadableFileThrowsIo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  write_file_atomic(path("secret"), "x", 1);
  fs::permissions(path("secret"), fs::perms::none);
  const Error e = catch_error([&] { read_file(path("secret")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_EQ(std::string(e.what()),
            "cannot read '" + path("secret") + "': " + std::strerror(EACCES));
}

TEST_F(FileIoTest, ReadsFilesWithoutAUsefulSize) {
  // /proc files report st_size 0 but have contents.
  if (!fs::exists("/proc/self/status")) GTEST_SKIP();
  EXPECT_FALSE(read_file("/proc/self/status").empty());
}

// The file-size limit is set in a forked child so that this test process
// keeps its own limit. The child reports what happened through its exit
// status and a pipe, since gtest assertions cannot cross the fork.
TEST_F(FileIoTest, FileSizeLimitFailsCleanly) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const std::string target = path("big.bin");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ignore_sigxfsz();
    struct rlimit limit;
    limit.rlim_cur = 4096;
    limit.rlim_max = 4096;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    // 10000 bytes: the first write(2) is cut short at 4096 bytes, the retry
    // then fails with EFBIG.
    std::vector<char> data(10000, 'z');
    int status = 1;  // "no error was thrown"
    std::string message;
    try {
      write_file_atomic(target, data.data(), data.size());
    } catch (const Error& e) {
      status = e.kind() == ErrorKind::kIo ? 0 : 2;
      message = e.what();
    } catch (...) {
      status = 4;
    }
    (void)!::write(pipe_fds[1], message.data(), message.size());
    ::close(pipe_fds[1]);
    ::_exit(status);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by a signal: " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "message: " << message;
  EXPECT_NE(message.find("cannot write '" + target + "': " + std::strerror(EFBIG)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("ulimit -f"), std::string::npos) << message;
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace lowbit

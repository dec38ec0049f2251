#include "lowbit/core/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/core/temp_paths.h"

namespace lowbit {
namespace {

// Linux caps a single read(2)/write(2) at about 2 GiB; asking for at most
// 1 GiB at a time keeps every call well inside that and inside ssize_t.
constexpr size_t kMaxIoChunk = size_t{1} << 30;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_read(const std::string& path, int err) {
  fail_io("cannot read '" + path + "': " + errno_text(err));
}

// The process umask, read without changing it: the umask(2) call can only
// set-and-return, which would race with other threads creating files. Linux
// reports it in /proc/self/status since 4.7; 022 is the usual default
// elsewhere.
mode_t current_umask() {
  FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return 022;
  mode_t mask = 022;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::string_view text(line);
    if (text.substr(0, 6) == "Umask:") {
      mask = static_cast<mode_t>(std::strtoul(line + 6, nullptr, 8)) & 0777;
      break;
    }
  }
  std::fclose(f);
  return mask;
}

// Makes the rename durable: without syncing the directory a crash right after
// commit() could lose the new directory entry even though the data was
// synced. Some file systems refuse fsync on directories; the data itself is
// already safe then, so failures here are not reported.
void sync_parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

std::vector<std::byte> read_file(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail_read(path, errno);

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail_read(path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail_read(path, EISDIR);
  }

  // For regular files st_size is the expected length, plus one byte so that
  // the read which sees EOF needs no reallocation. We still read to EOF
  // because the size is only a hint: files in /proc report 0, pipes have none,
  // and a file may grow while we read it.
  const bool regular = S_ISREG(st.st_mode);
  std::vector<std::byte> bytes;
  size_t used = 0;
  try {
    bytes.resize(regular ? static_cast<size_t>(st.st_size) + 1 : size_t{64} << 10);
    for (;;) {
      if (used == bytes.size()) bytes.resize(used + std::max(used / 2, size_t{64} << 10));
      const ssize_t got = ::read(fd, bytes.data() + used, std::min(bytes.size() - used, kMaxIoChunk));
      if (got < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        fail_read(path, err);
      }
      if (got == 0) break;
      used += static_cast<size_t>(got);
    }
  } catch (const std::bad_alloc&) {
    ::close(fd);
    fail_read(path, ENOMEM);
  }
  ::close(fd);
  bytes.resize(used);
  return bytes;
}

void ignore_sigxfsz() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = SIG_IGN;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGXFSZ, &action, nullptr);
}

AtomicFile::AtomicFile(std::string final_path) : final_path_(std::move(final_path)) {
  struct stat st;
  if (::stat(final_path_.c_str(), &st) == 0) {
    // Failing now is kinder than failing in commit() after all the work.
    if (S_ISDIR(st.st_mode)) fail_write(EISDIR);
    // A device or pipe (/dev/null, /dev/stdout, a FIFO) cannot be replaced
    // by a rename, and must not be: renaming over /dev/null as root would
    // swap the device node for a regular file. Such targets are streams with
    // no "partial file" to protect, so they are written directly.
    if (!S_ISREG(st.st_mode)) {
      do {
        fd_ = ::open(final_path_.c_str(), O_WRONLY | O_CLOEXEC);
      } while (fd_ < 0 && errno == EINTR);
      if (fd_ < 0) fail_write(errno);
      direct_ = true;
      return;
    }
  }
  // The template must live in the destination directory: rename(2) is atomic
  // only within one file system, and a temp file elsewhere (say /tmp) would
  // make commit() fail with EXDEV after all the work was done.
  std::string name = final_path_ + ".tmp.XXXXXX";
  {
    // Created and registered in one step, so that a signal's clean-up
    // (signal_guard.h) removes it whenever it exists.
    const auto lock = lock_temp_paths();
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0) fail_write(errno);
    temp_token_ = register_temp_path(name, false);
  }
  temp_path_ = std::move(name);
  const mode_t mode = 0666 & ~current_umask();
  if (::fchmod(fd_, mode) != 0) {
    // The destructor does not run for a throwing constructor, so clean up here.
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
    unregister_temp_path(temp_token_);
    fail_write(err);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  unregister_temp_path(temp_token_);
}

void AtomicFile::fail_write(int err) {
  failed_ = true;
  std::string message = "cannot write '" + final_path_ + "': " + errno_text(err);
  if (err == ENOSPC) {
    message += " (the disk is full; nothing was written to the final path)";
  } else if (err == EFBIG) {
    message += " (the file-size limit was reached, see 'ulimit -f'; nothing was written to "
               "the final path)";
  }
  fail_io(std::move(message));
}

void AtomicFile::write_fully(const void* data, size_t size, int64_t offset) {
  const auto* p = static_cast<const std::byte*>(data);
  while (size > 0) {
    const size_t chunk = std::min(size, kMaxIoChunk);
    const ssize_t n = offset < 0 ? ::write(fd_, p, chunk) : ::pwrite(fd_, p, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write(errno);
    }
    // write(2) returns 0 only for a zero-length request; treat it as "no
    // space" rather than spinning forever.
    if (n == 0) fail_write(ENOSPC);
    p += n;
    size -= static_cast<size_t>(n);
    if (offset >= 0) offset += n;
  }
}

void AtomicFile::write(const void* data, size_t size) {
  if (committed_ || failed_ || fd_ < 0) {
    fail_internal("AtomicFile::write on '" + final_path_ + "' after commit or a failed write");
  }
  write_fully(data, size, -1);
  bytes_written_ += size;
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t size) {
  if (committed_ || failed_ || fd_ < 0) {
    fail_internal("AtomicFile::write_at on '" + final_path_ + "' after commit or a failed write");
  }
  if (offset > bytes_written_ || size > bytes_written_ - offset) {
    fail_internal("AtomicFile::write_at on '" + final_path_ + "' past the bytes written");
  }
  if (direct_) fail_usage("cannot write '" + final_path_ + "': it is a stream, and this output must be rewritten in place");
  write_fully(data, size, static_cast<int64_t>(offset));
}

void AtomicFile::commit() {
  if (committed_ || failed_ || fd_ < 0) {
    fail_internal("AtomicFile::commit on '" + final_path_ + "' twice or after a failed write");
  }
  // Without fsync a crash after the rename could leave the final name
  // pointing at an empty or partial file on some file systems (ext4 with
  // delayed allocation), which is exactly what the temp-and-rename dance is
  // meant to prevent.
  if (!direct_ && ::fsync(fd_) != 0) fail_write(errno);
  const int fd = fd_;
  fd_ = -1;
  // close(2) can report a deferred write error (NFS, quotas); the fd is gone
  // either way, so it is not retried on EINTR.
  if (::close(fd) != 0 && errno != EINTR) fail_write(errno);
  if (direct_) {
    committed_ = true;
    return;
  }
  {
    // Published and unregistered in one step: a signal's clean-up either
    // removes the temporary first (and the rename fails) or finds the
    // output complete.
    const auto lock = lock_temp_paths();
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) fail_write(errno);
    unregister_temp_path(std::exchange(temp_token_, 0));
  }
  committed_ = true;
  sync_parent_directory(final_path_);
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  AtomicFile file(path);
  file.write(data, size);
  file.commit();
}

}  // namespace lowbit

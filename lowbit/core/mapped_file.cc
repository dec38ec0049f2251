#include "lowbit/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/signal_guard.h"

namespace lowbit {
namespace {

[[noreturn]] void fail_read(const std::string& path, int err) {
  std::string message("cannot read '");
  message += path;
  message += "': ";
  message += std::strerror(err);
  fail_io(std::move(message));
}

// Closes the descriptor on every path out of open(), exceptions included.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail_read(path, errno);
  FdCloser closer{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) fail_read(path, errno);
  // open(2) succeeds on a directory with O_RDONLY and mmap would then fail
  // with the less helpful ENODEV; say what is wrong instead.
  if (S_ISDIR(st.st_mode)) fail_read(path, EISDIR);

  MappedFile file;
  file.path_ = path;
  if (!S_ISREG(st.st_mode)) {
    // Pipes and character devices cannot be mapped and have no reliable
    // size; read_file reads them to EOF with the same error messages.
    file.owned_ = read_file(path);
    file.size_ = file.owned_.size();
    file.data_ = file.size_ == 0 ? nullptr : file.owned_.data();
    return file;
  }
  if (st.st_size == 0) return file;  // mmap(2) rejects a zero length
  if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    fail_read(path, EFBIG);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  // A read-only MAP_PRIVATE mapping can never write back to the file. The
  // mapping keeps its own reference to the file, so the descriptor is closed
  // on return.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail_read(path, errno);
  file.data_ = static_cast<const std::byte*>(p);
  file.size_ = size;
  file.mapped_ = true;
  // Another process may truncate the file while it is mapped; the signal
  // guard then turns the SIGBUS into an error naming it.
  file.guard_ = guard_mapped_range(p, size, path);
  return file;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      guard_(std::exchange(other.guard_, 0)),
      owned_(std::move(other.owned_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    guard_ = std::exchange(other.guard_, 0);
    owned_ = std::move(other.owned_);
  }
  return *this;
}

void MappedFile::release() noexcept {
  unguard_mapped_range(std::exchange(guard_, 0));
  if (mapped_) {
    // munmap can only fail for an invalid range, which would be a bug here;
    // a destructor has no way to report it anyway.
    (void)::munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.clear();
  owned_.shrink_to_fit();
}

void MappedFile::advise_sequential() const noexcept {
  if (!mapped_) return;
  (void)::madvise(const_cast<std::byte*>(data_), size_, MADV_SEQUENTIAL);
}

void MappedFile::advise_willneed(size_t offset, size_t length) const noexcept {
  if (!mapped_ || offset >= size_) return;
  if (length > size_ - offset) length = size_ - offset;
  if (length == 0) return;
  // madvise wants a page-aligned start; the mapping itself is page-aligned,
  // so rounding the offset down stays inside it.
  const long page_or_error = ::sysconf(_SC_PAGESIZE);
  const size_t page = page_or_error > 0 ? static_cast<size_t>(page_or_error) : 4096;
  const size_t start = offset - offset % page;
  (void)::madvise(const_cast<std::byte*>(data_) + start, length + (offset - start), MADV_WILLNEED);
}

void MappedFile::advise_dontneed(size_t offset, size_t length) const noexcept {
  if (!mapped_ || offset >= size_) return;
  if (length > size_ - offset) length = size_ - offset;
  // Only pages wholly inside the range: a neighbour's bytes on a shared
  // page stay resident.
  const long page_or_error = ::sysconf(_SC_PAGESIZE);
  const size_t page = page_or_error > 0 ? static_cast<size_t>(page_or_error) : 4096;
  const size_t start = (offset + page - 1) / page * page, end = (offset + length) / page * page;
  if (end <= start) return;
  (void)::madvise(const_cast<std::byte*>(data_) + start, end - start, MADV_DONTNEED);
}

}  // namespace lowbit

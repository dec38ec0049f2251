// A read-only view of a whole file, memory-mapped.
//
// Checkpoints are large (gigabytes) and a reader usually touches only some
// tensors, or touches each once: mapping the file lets the kernel page in
// just what is read and share the pages with the page cache instead of
// copying everything into a heap buffer first, as read_file would.
//
//   MappedFile file = MappedFile::open(path);
//   parse(file.data(), file.size());
//
// Special cases:
//   - an empty file is not mapped (mmap(2) refuses length 0): data() is
//     nullptr and size() is 0;
//   - a pipe or character device (/dev/stdin, a FIFO, "<(cat x)") cannot be
//     mapped, so it is read into memory instead, through read_file; the
//     interface is the same, is_mapped() tells the difference;
//   - a directory is refused with EISDIR.
//
// Caveat: if another process truncates the file while it is mapped, reading
// the vanished pages raises SIGBUS. No portable remedy exists short of
// copying the file; lowbit never modifies files in place (AtomicFile replaces
// them by rename, which leaves an existing mapping intact), so this needs an
// outside writer. Each mapping is registered with the signal guard
// (signal_guard.h): in a program that installed it, such a SIGBUS becomes an
// error naming the file and exit status 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

class MappedFile {
 public:
  // Maps `path` read-only. Any failure (missing file, a directory,
  // permission denied, mmap refused) throws ErrorKind::kIo with the message
  // "cannot read '<path>': <strerror>".
  static MappedFile open(const std::string& path);

  // An empty view, as of an empty file; useful as a moved-from state.
  MappedFile() = default;
  ~MappedFile();

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The first byte, or nullptr when size() is 0. Valid until this object is
  // destroyed or assigned to; moving it keeps the address.
  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::string& path() const noexcept { return path_; }
  // True when the bytes are an mmap of the file, false for an empty file or
  // a stream that was read into memory.
  bool is_mapped() const noexcept { return mapped_; }

  // Access-pattern hints (madvise). They change speed only, never results,
  // so failures are ignored and they do nothing for unmapped views.
  // Sequential: the whole file will be read front to back (more readahead,
  // pages may be dropped behind the reader).
  void advise_sequential() const noexcept;
  // Will need [offset, offset + length) soon: start reading it in now.
  // The range is clipped to the file.
  void advise_willneed(size_t offset, size_t length) const noexcept;
  // Done with [offset, offset + length) for now: the whole pages inside it
  // leave this process's memory (MADV_DONTNEED; they stay in the page
  // cache, and a later read faults them back in with the same bytes, as
  // the mapping is read-only). Streaming over a model this way keeps the
  // resident set near one tensor instead of growing to the whole file.
  void advise_dontneed(size_t offset, size_t length) const noexcept;

 private:
  void release() noexcept;

  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  uint32_t guard_ = 0;  // guard_mapped_range's token
  std::vector<std::byte> owned_;  // the contents of a stream that cannot be mapped
};

}  // namespace lowbit

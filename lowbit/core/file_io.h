// Whole-file reads and all-or-nothing writes.
//
// The house rule is "never a partial output file": a command that fails
// half-way (bad input discovered late, disk full, file-size limit, an
// exception anywhere) must leave either the old file or no file, never a
// truncated one that a later tool would mistake for a result. AtomicFile gets
// this by writing to a temporary name in the destination's own directory
// (rename(2) is only atomic within one file system) and renaming it over the
// final name only after everything was written and fsync'ed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

// The whole contents of `path`. Any failure (missing file, a directory,
// permission denied, a read error) throws ErrorKind::kIo with the message
// "cannot read '<path>': <strerror>".
std::vector<std::byte> read_file(const std::string& path);

// Sets SIGXFSZ to SIG_IGN.
//
// When a write crosses the process's file-size limit (ulimit -f,
// RLIMIT_FSIZE) the kernel sends SIGXFSZ, whose default action kills the
// process with a core dump: the user sees no message and, worse, the
// AtomicFile destructor never runs, so the temporary file stays behind. With
// the signal ignored, write(2) fails with EFBIG instead and AtomicFile
// reports it as a normal ErrorKind::kIo error and cleans up. Programs (the
// lowbit CLI's main, test binaries that exercise the limit) call this once at
// start-up; the library does not change signal dispositions behind a host
// program's back.
void ignore_sigxfsz();

// A file that appears at its final path complete or not at all.
//
//   AtomicFile out(path);     // creates "<path>.tmp.XXXXXX" beside it
//   out.write(header, n);
//   out.write(data, m);
//   out.commit();             // fsync, close, rename over `path`
//
// If commit() is never reached (an exception, an early return), the
// destructor removes the temporary file, so the final path is untouched: an
// existing file there keeps its old contents. The committed file gets mode
// 0666 & ~umask, as a file made by open(O_CREAT) would, not the 0600 that
// mkstemp gives.
//
// An existing final path that is not a regular file (/dev/null, /dev/stdout,
// a FIFO) is written directly instead: it cannot be renamed over, and a
// stream has no partial file to protect.
class AtomicFile {
 public:
  // Creates the temporary file. Throws ErrorKind::kIo
  // "cannot write '<final_path>': <strerror>" if the directory is missing or
  // not writable.
  explicit AtomicFile(std::string final_path);
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends `size` bytes, retrying short writes and EINTR. Throws
  // ErrorKind::kIo naming the final path on failure, with a hint for a full
  // disk (ENOSPC) or the file-size limit (EFBIG). After a failed write the
  // file can no longer be committed.
  void write(const void* data, size_t size);

  // Writes `size` bytes at `offset` over bytes already written (a header
  // completed at the end). The range must lie within size(). Throws kUsage
  // when writing directly to a stream, which cannot seek.
  void write_at(uint64_t offset, const void* data, size_t size);

  // Flushes the data to disk, closes the file and renames it to the final
  // path. Throws ErrorKind::kIo on failure (the temporary is then removed by
  // the destructor), ErrorKind::kInternal if called twice or after a failed
  // write.
  void commit();

  const std::string& final_path() const noexcept { return final_path_; }
  // The temporary name, e.g. for tests that check it is cleaned up; empty
  // when writing directly to a device or pipe.
  const std::string& temp_path() const noexcept { return temp_path_; }
  // Bytes written so far.
  size_t size() const noexcept { return bytes_written_; }

 private:
  [[noreturn]] void fail_write(int err);
  // Writes all of data, at the file position (offset < 0) or at offset.
  void write_fully(const void* data, size_t size, int64_t offset);

  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  size_t bytes_written_ = 0;
  uint64_t temp_token_ = 0;  // the temp_paths.h registration of temp_path_
  bool direct_ = false;  // writing straight to a device or pipe, no temp file
  bool failed_ = false;
  bool committed_ = false;
};

// Writes `size` bytes to `path` through an AtomicFile.
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace lowbit

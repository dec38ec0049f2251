// safetensors files: the checkpoint format of Hugging Face models.
//
// Layout (https://github.com/huggingface/safetensors):
//   8 bytes    N, the header length, unsigned little-endian
//   N bytes    a UTF-8 JSON object:
//                { "<tensor name>": { "dtype": "F16", "shape": [4096, 4096],
//                                     "data_offsets": [begin, end] },
//                  ...,
//                  "__metadata__": { "<key>": "<string value>", ... } }   (optional)
//   the rest   the byte buffer; [begin, end) is relative to its start
// Tensors are little-endian, row-major (C order), and packed with no gaps.
//
// The reader is as strict as the upstream Rust crate, so that a file lowbit
// accepts is one every other safetensors tool accepts too: the tensors must
// cover the byte buffer exactly (no overlaps, no unused bytes, nothing past
// the last tensor), and each tensor's byte range must match its shape and
// dtype. It is stricter in two ways that upstream's JSON library hides:
// duplicate keys (two tensors with one name) are an error rather than "the
// last one wins", and JSON nesting is capped.
//
// Sub-byte dtypes (F4, F6_E2M3, F6_E3M2) are packed densely. As upstream,
// a tensor of them must fill a whole number of bytes (elements * bits a
// multiple of 8); upstream rejects anything else ("MisalignedSlice") rather
// than rounding up to a padded final byte, so lowbit does the same, when
// reading and when writing.
//
// Every problem in a file throws ErrorKind::kInput with a message of the form
//   invalid safetensors file '<path>': <problem, naming the tensor>
// and the reader never reads outside the file, whatever the header claims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/mapped_file.h"
#include "lowbit/core/tensor.h"

namespace lowbit {

class AtomicFile;

// The byte size of a tensor: numel(shape) * dtype_bits / 8, or nullopt when
// the element count or the bit count overflows 64 bits, or when the bits do
// not fill a whole number of bytes (possible for sub-byte dtypes only).
std::optional<uint64_t> tensor_nbytes(DType dtype, std::span<const uint64_t> shape) noexcept;

// One tensor of an open file.
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;  // empty for a scalar
  uint64_t offset;              // begin, relative to the start of the byte buffer
  uint64_t nbytes;              // end - begin
  // The first byte of the tensor inside the file's mapping, valid as long
  // as the SafetensorsFile that returned it (moving the file keeps it valid).
  // Not necessarily aligned for the element type: files from writers that
  // do not pad the header (or that pack sub-byte and odd-sized tensors
  // before wider ones) put data anywhere; copy or use unaligned loads.
  const std::byte* data;
  uint64_t numel;  // the product of shape; 1 for a scalar

  std::span<const std::byte> bytes() const noexcept {
    return {data, static_cast<size_t>(nbytes)};
  }
};

// A parsed, validated safetensors file. Tensor data is not copied: it stays
// in the memory map (or the buffer given to from_memory) and TensorInfo::data
// points into it.
class SafetensorsFile {
 public:
  // The largest header accepted, as upstream: 100 MB (decimal).
  static constexpr uint64_t kMaxHeaderSize = 100'000'000;

  // Maps and validates `path`. ErrorKind::kIo if it cannot be read,
  // ErrorKind::kInput if it is not a valid safetensors file.
  static SafetensorsFile open(const std::string& path);

  // Validates a file held in memory, taking ownership of the bytes.
  // `name_for_errors` stands in for the path in messages.
  static SafetensorsFile from_memory(std::vector<std::byte> bytes,
                                     std::string name_for_errors = "<memory>");

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // The path (or the name given to from_memory).
  const std::string& path() const noexcept { return path_; }

  // The "__metadata__" entries (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  // All tensors in file order: by increasing offset (ties, which only
  // zero-byte tensors can have, by name).
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }

  // The tensor with that name, or nullptr.
  const TensorInfo* find(std::string_view name) const noexcept;

  // The tensor with that name; throws ErrorKind::kInput
  // "safetensors file '<path>' has no tensor named '<name>'" otherwise.
  const TensorInfo& at(std::string_view name) const;

  // N, the header length from the first 8 bytes (padding included).
  uint64_t header_size() const noexcept { return header_size_; }
  // Where the byte buffer starts in the file: 8 + N.
  uint64_t data_start() const noexcept { return 8 + header_size_; }
  // The size of the whole file.
  uint64_t file_size() const noexcept { return bytes_.size(); }

  // The underlying memory map, e.g. for madvise hints before a long read.
  // Empty for a file made by from_memory.
  const MappedFile& mapping() const noexcept { return mapping_; }

 private:
  SafetensorsFile() = default;
  void parse();

  std::string path_;
  MappedFile mapping_;              // open(): the file's mapping
  std::vector<std::byte> owned_;    // from_memory(): the bytes
  std::span<const std::byte> bytes_;  // whichever of the two holds the file
  uint64_t header_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

// Writes a safetensors file tensor by tensor, so that a checkpoint larger
// than memory can be produced (or converted) with one tensor in memory at a
// time.
//
//   SafetensorsWriter out(path);
//   out.add_metadata("format", "pt");
//   out.declare("a", DType::kF32, {4, 4});      // every tensor, in file order
//   out.declare("b", DType::kBF16, {8});
//   out.begin();                               // writes the header
//   out.write_tensor_data("a", a, 64);         // in the declared order,
//   out.write_tensor_data("b", b1, 8);         // in one or several chunks
//   out.write_tensor_data("b", b2, 8);
//   out.commit();                              // the file appears
//
// Everything goes through an AtomicFile: if commit() is not reached (an
// exception, an early return), the destructor removes the temporary file and
// an existing file at `path` keeps its old contents.
//
// The output is deterministic: "__metadata__" first with keys in sorted
// order, then the tensors in declaration order, all in compact JSON as
// upstream's serde_json writes it, padded with spaces so that the byte
// buffer starts at a multiple of 8 bytes (as upstream does). Tensors are
// packed in declaration order; to match upstream's layout byte for byte,
// declare them in upstream's order (dtype descending, then name).
//
// Mistakes by the caller throw ErrorKind::kUsage: a call out of order, a
// duplicate, empty or non-UTF-8 name, a shape whose size overflows or does
// not fill whole bytes, a header over kMaxHeaderSize, or data that does not
// match the declared sizes. Such errors leave the writer as it was, so the
// caller may go on (or give up and let the destructor clean up). Write
// failures throw ErrorKind::kIo; the writer can then only be destroyed.
class SafetensorsWriter {
 public:
  // Creates the temporary file beside `path` now, so that a missing or
  // read-only directory fails before any work (ErrorKind::kIo).
  explicit SafetensorsWriter(std::string path);
  ~SafetensorsWriter();

  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Adds a "__metadata__" entry. Before begin() only; each key once.
  void add_metadata(std::string key, std::string value);

  // Declares the next tensor and returns its index (0, 1, ...). Before
  // begin() only. The name must be non-empty, valid UTF-8, unique and not
  // "__metadata__".
  size_t declare(std::string name, DType dtype, std::vector<uint64_t> shape);

  // Writes the length and the header. Before any tensor data; once.
  void begin();

  // Appends `nbytes` bytes of the tensor's data. Tensors must be written in
  // declaration order, each completely before the next one starts;
  // zero-byte tensors need no call. A tensor may be written in several
  // chunks. More bytes than declared is an error.
  void write_tensor_data(size_t index, const void* data, size_t nbytes);
  void write_tensor_data(std::string_view name, const void* data, size_t nbytes);

  // Checks that every tensor was written completely, then commits the
  // AtomicFile. Calls begin() first if it has not been called.
  void commit();

  const std::string& path() const noexcept { return path_; }
  size_t tensor_count() const noexcept { return tensors_.size(); }
  // The declared byte size of tensor `index`.
  uint64_t tensor_nbytes(size_t index) const;
  // The total size of the byte buffer declared so far.
  uint64_t data_size() const noexcept { return data_size_; }

 private:
  struct Declared {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    uint64_t begin;
    uint64_t nbytes;
  };

  [[noreturn]] void fail(const std::string& problem) const;
  std::string header_json() const;

  std::string path_;
  std::unique_ptr<AtomicFile> out_;
  std::map<std::string, std::string> metadata_;
  std::vector<Declared> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  uint64_t data_size_ = 0;
  bool begun_ = false;
  bool committed_ = false;
  size_t current_ = 0;          // the tensor being written
  uint64_t current_written_ = 0;  // bytes of it written so far
};

// One tensor for write_safetensors. `data` must hold
// tensor_nbytes(dtype, shape) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
  const void* data;
};

// Writes a whole file in one call, tensors in the given order, through
// SafetensorsWriter (same errors, same all-or-nothing guarantee).
void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<TensorToWrite>& tensors);

}  // namespace lowbit

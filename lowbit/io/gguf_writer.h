// Writing GGUF files that llama.cpp loads, tensor by tensor, so that a model
// larger than memory can be produced with one tensor in memory at a time.
//
//   GgufWriter out(path);
//   out.copy_metadata(input);                            // all of it, in order
//   out.set_metadata("general.file_type", GgufValue::of(uint32_t{3}));
//   size_t i = out.declare_tensor("blk.0.ffn_up.weight", {576, 1536}, GgmlType::kQ4_1);
//   ...                                                  // every tensor, in file order
//   out.begin();                                         // header, metadata, tensor infos
//   out.write_tensor_data(i, chunk, n);                  // in declaration order,
//   out.write_tensor_data(i, chunk2, n2);                // in one or several chunks
//   out.commit();                                        // the file appears
//
// Layout (as ggml's and gguf-py's writers): version 3, metadata in insertion
// order, tensor infos in declaration order, the data section at the first
// multiple of the alignment after them, and each tensor at the next multiple
// of the alignment after the previous one, zero-padded; the file ends padded
// to the alignment too. ne is in ggml order (ne[0] fastest; reverse a
// row-major shape with reverse_dims).
//
// The alignment is the metadata value "general.alignment" (UINT32): 32 when
// absent; set_alignment() or adding that key sets it, and copy_metadata()
// keeps the input's.
//
// Tensors must satisfy ggml's limits so that llama.cpp can load the file:
// a non-empty name under 64 bytes, at most 4 dimensions, whole blocks per
// row, counts that fit (gguf_tensor_size). Metadata is written as given,
// arrays of arrays included (which the spec allows but llama.cpp's loader
// refuses), nested at most GgufFile::kMaxArrayDepth levels.
//
// Everything goes through an AtomicFile: if commit() is not reached (an
// exception, an early return), the destructor removes the temporary file and
// an existing file at `path` keeps its old contents.
//
// Mistakes by the caller throw ErrorKind::kUsage and leave the writer as it
// was: a call out of order, a duplicate key or tensor name, a tensor ggml
// cannot hold, data that does not match the declared sizes. Write failures
// (full disk, file-size limit) throw ErrorKind::kIo; the writer can then
// only be destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/ggml/type.h"
#include "lowbit/io/gguf_value.h"

namespace lowbit {

class AtomicFile;
class GgufFile;

class GgufWriter {
 public:
  // Creates the temporary file beside `path` now, so that a missing or
  // read-only directory fails before any work (ErrorKind::kIo).
  explicit GgufWriter(std::string path);
  ~GgufWriter();

  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Sets "general.alignment" (a non-zero power of two), in place if the key
  // exists, else appended. Before begin() only.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const noexcept { return alignment_; }

  // Appends a metadata entry. Before begin() only; each key once.
  void add_metadata(std::string key, GgufValue value);
  // Replaces the value of `key` where it stands, or appends it if absent.
  void set_metadata(std::string key, GgufValue value);
  // Removes `key`; returns whether it was there.
  bool remove_metadata(std::string_view key);
  // Appends every metadata entry of `from`, in its order (add_metadata
  // rules: a key already added is an error).
  void copy_metadata(const GgufFile& from);
  const std::vector<GgufKv>& metadata() const noexcept { return metadata_; }

  // Declares the next tensor and returns its index (0, 1, ...). `ne` is in
  // ggml order. Before begin() only.
  size_t declare_tensor(std::string name, std::vector<uint64_t> ne, GgmlType type);

  // Lays the tensors out and writes the header, the metadata, the tensor
  // infos and the padding before the data. Once, before any tensor data.
  void begin();

  // Changes the type of tensor `index` after begin(), before any of its
  // data is written: for a writer that finds out only when quantizing it
  // that the declared type cannot hold the tensor. The tensors after it
  // move; the header, whose size does not change, is written again at
  // commit(). Needs a regular file (not a pipe) as the output.
  void retype_tensor(size_t index, GgmlType type);

  // Appends `nbytes` bytes of a tensor's data. Tensors must be written in
  // declaration order, each completely before the next one starts; a tensor
  // may come in several chunks; zero-byte tensors need no call. More bytes
  // than declared is an error.
  void write_tensor_data(size_t index, const void* data, size_t nbytes);
  void write_tensor_data(std::string_view name, const void* data, size_t nbytes);

  // Checks that every tensor was written completely, writes the final
  // padding and commits the AtomicFile. Calls begin() first if needed.
  void commit();

  const std::string& path() const noexcept { return path_; }
  size_t tensor_count() const noexcept { return tensors_.size(); }
  // The byte size of tensor `index` (ggml_row_bytes of its shape).
  uint64_t tensor_nbytes(size_t index) const;
  // The offset of tensor `index` in the data section; after begin() only.
  uint64_t tensor_offset(size_t index) const;
  // Where the data section starts in the file; after begin() only.
  uint64_t data_start() const;

 private:
  struct Declared {
    std::string name;
    std::vector<uint64_t> ne;
    GgmlType type;
    uint64_t nbytes;
    uint64_t offset = 0;  // set by begin()
  };

  [[noreturn]] void fail(std::string_view problem) const;
  void check_metadata(const std::string& key, const GgufValue& value) const;
  void update_alignment(const std::string& key, const GgufValue& value);
  const Declared& declared(size_t index) const;
  void skip_complete_tensors(size_t up_to);
  // Why writing tensor `index` now breaks the declaration order.
  std::string order_problem(size_t index) const;
  void write_zeros(uint64_t count);
  uint64_t lay_out(size_t from);
  std::string header_bytes() const;

  std::string path_;
  std::unique_ptr<AtomicFile> out_;
  uint32_t alignment_;
  std::vector<GgufKv> metadata_;
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<Declared> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  bool begun_ = false;
  bool committed_ = false;
  bool header_dirty_ = false;  // a tensor changed type after begin()
  uint64_t data_start_ = 0;
  uint64_t data_size_ = 0;        // the padded size of the data section
  uint64_t data_written_ = 0;     // bytes of the data section written so far
  size_t current_ = 0;            // the tensor being written
  uint64_t current_written_ = 0;  // bytes of it written so far
};

}  // namespace lowbit

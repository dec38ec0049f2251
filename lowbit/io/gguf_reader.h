// Reading GGUF files (llama.cpp's model container; layout in gguf_format.h,
// reference in docs/gguf.md).
//
//   const GgufFile file = GgufFile::open("model.gguf");
//   uint32_t blocks = file.get_u32("llama.block_count");
//   const auto& tokens = file.get_strings("tokenizer.ggml.tokens");
//   for (const GgufTensorInfo& t : file.tensors()) use(t.name, t.shape(), t.type, t.bytes());
//
// The file is memory-mapped; metadata values are parsed into owned
// GgufValues (they are small), tensor data stays in the mapping and is
// never copied. Versions 3 and 2 (same layout) are read; version 1 and
// big-endian files are refused.
//
// Every problem in a file throws ErrorKind::kInput with a message of the form
//   invalid GGUF file '<path>': <problem, naming the key or tensor>
// and the reader never reads outside the file nor allocates by a count it
// has not bounded by the bytes that remain, whatever the header claims.
// What is checked: the magic and version; every string, array and count
// against the remaining bytes; known value types, BOOL values 0 or 1, and
// arrays nested at most kMaxArrayDepth deep; unique keys and tensor names;
// general.alignment a UINT32 power of two; per tensor, at most 4 dimensions,
// a known ggml type, whole blocks per row, element and byte counts that fit
// (gguf_tensor_size), an aligned offset, data inside the file, and no two
// tensors' bytes overlapping. Tensors may lie in any order with gaps between
// them, as the spec allows (llama.cpp itself wants them packed in order,
// which is what GgufWriter writes).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/mapped_file.h"
#include "lowbit/ggml/type.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_value.h"

namespace lowbit {

// One tensor of an open file.
struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] varies fastest; n_dims entries
  GgmlType type;
  uint64_t offset;  // from the start of the data section (a multiple of the alignment)
  uint64_t numel;   // the product of ne; 1 for a tensor with no dimensions
  uint64_t nbytes;
  // The first byte inside the file's mapping, valid as long as the GgufFile
  // (moving the file keeps it valid). Aligned to the file's alignment
  // relative to the start of the file (the mapping itself is page-aligned).
  const std::byte* data;

  std::span<const std::byte> bytes() const noexcept { return {data, static_cast<size_t>(nbytes)}; }
  // The row-major (numpy, lowbit) shape: ne reversed.
  std::vector<uint64_t> shape() const { return reverse_dims(ne); }
};

// A parsed, validated GGUF file.
class GgufFile {
 public:
  // Arrays of arrays may nest this deep (a real file needs 1 or 2 levels);
  // the cap stops a file of nested array headers from exhausting the stack.
  static constexpr int kMaxArrayDepth = 16;

  // Maps and validates `path`. ErrorKind::kIo if it cannot be read,
  // ErrorKind::kInput if it is not a valid GGUF file.
  static GgufFile open(const std::string& path);

  // Validates a file held in memory, taking ownership of the bytes.
  // `name_for_errors` stands in for the path in messages.
  static GgufFile from_memory(std::vector<std::byte> bytes, std::string name_for_errors = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const noexcept { return path_; }
  uint32_t version() const noexcept { return version_; }
  uint32_t alignment() const noexcept { return alignment_; }
  // Where the tensor infos end, before the padding.
  uint64_t header_size() const noexcept { return header_size_; }
  // Where the data section starts: header_size() rounded up to the alignment.
  uint64_t data_start() const noexcept { return data_start_; }
  uint64_t file_size() const noexcept { return bytes_.size(); }

  // ---- metadata, in file order

  const std::vector<GgufKv>& metadata() const noexcept { return metadata_; }
  // The value of `key`, or nullptr.
  const GgufValue* find(std::string_view key) const noexcept;
  // The value of `key`; ErrorKind::kInput "GGUF file '<path>' has no
  // metadata key '<key>'" otherwise.
  const GgufValue& at(std::string_view key) const;

  // Typed getters: the value of `key`, which must exist and have exactly
  // that type (ErrorKind::kInput naming the file, the key and both types).
  template <GgufScalar T>
  T get(std::string_view key) const {
    return at(key).as<T>(describe_key(key));
  }
  // The value of `key` if present (it must then have type T), else `fallback`.
  template <GgufScalar T>
  T get_or(std::string_view key, T fallback) const {
    const GgufValue* v = find(key);
    return v == nullptr ? fallback : v->as<T>(describe_key(key));
  }
  uint8_t get_u8(std::string_view key) const { return get<uint8_t>(key); }
  int8_t get_i8(std::string_view key) const { return get<int8_t>(key); }
  uint16_t get_u16(std::string_view key) const { return get<uint16_t>(key); }
  int16_t get_i16(std::string_view key) const { return get<int16_t>(key); }
  uint32_t get_u32(std::string_view key) const { return get<uint32_t>(key); }
  int32_t get_i32(std::string_view key) const { return get<int32_t>(key); }
  uint64_t get_u64(std::string_view key) const { return get<uint64_t>(key); }
  int64_t get_i64(std::string_view key) const { return get<int64_t>(key); }
  float get_f32(std::string_view key) const { return get<float>(key); }
  double get_f64(std::string_view key) const { return get<double>(key); }
  bool get_bool(std::string_view key) const { return get<bool>(key); }
  const std::string& get_string(std::string_view key) const;
  // Arrays: of exactly T, or of STRING.
  template <GgufScalar T>
  std::vector<T> get_array(std::string_view key) const {
    return at(key).to_vector<T>(describe_key(key));
  }
  const std::vector<std::string>& get_strings(std::string_view key) const;

  // ---- tensors, in the order of the header's tensor infos

  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }
  // The tensor with that name, or nullptr.
  const GgufTensorInfo* find_tensor(std::string_view name) const noexcept;
  // The tensor with that name; ErrorKind::kInput otherwise.
  const GgufTensorInfo& tensor(std::string_view name) const;

  // The underlying memory map (empty for a file made by from_memory).
  const MappedFile& mapping() const noexcept { return mapping_; }

 private:
  GgufFile() = default;
  void parse();
  std::string describe_key(std::string_view key) const;

  std::string path_;
  MappedFile mapping_;                // open(): the file's mapping
  std::vector<std::byte> owned_;      // from_memory(): the bytes
  std::span<const std::byte> bytes_;  // whichever of the two holds the file
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t header_size_ = 0;
  uint64_t data_start_ = 0;
  std::vector<GgufKv> metadata_;
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace lowbit

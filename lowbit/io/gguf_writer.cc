#include "lowbit/io/gguf_writer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_reader.h"

namespace lowbit {
namespace {

std::string num(uint64_t value) { return std::to_string(value); }

// Little-endian encoding into the header buffer.
void put_bytes(std::string* out, const void* data, size_t size) {
  out->append(static_cast<const char*>(data), size);
}
void put_u32(std::string* out, uint32_t value) { put_bytes(out, &value, sizeof value); }
void put_u64(std::string* out, uint64_t value) { put_bytes(out, &value, sizeof value); }
void put_string(std::string* out, std::string_view text) {
  put_u64(out, text.size());
  put_bytes(out, text.data(), text.size());
}

// A value without its leading type id: the bits, the string, or an array's
// element type, length and elements (inner arrays with their own element
// type and length, as the spec nests them).
void put_payload(std::string* out, const GgufValue& value) {
  if (value.type() == GgufType::kString) return put_string(out, value.as_string());
  if (!value.is_array()) {
    const uint64_t bits = value.bits();
    return put_bytes(out, &bits, gguf_fixed_size(value.type()));  // little-endian host
  }
  const GgufType element = value.element_type();
  put_u32(out, static_cast<uint32_t>(element));
  put_u64(out, value.size());
  if (element == GgufType::kString) {
    for (const std::string& s : value.strings()) put_string(out, s);
  } else if (element == GgufType::kArray) {
    for (const GgufValue& inner : value.arrays()) put_payload(out, inner);
  } else {
    const std::span<const std::byte> raw = value.raw_elements();
    put_bytes(out, raw.data(), raw.size());
  }
}

// How deeply arrays nest in `value`: 0 for a scalar, 1 for a flat array.
int array_depth(const GgufValue& value) {
  if (!value.is_array()) return 0;
  int deepest = 0;
  if (value.element_type() == GgufType::kArray) {
    for (const GgufValue& inner : value.arrays()) deepest = std::max(deepest, array_depth(inner));
  }
  return deepest + 1;
}

}  // namespace

GgufWriter::GgufWriter(std::string path)
    : path_(std::move(path)), out_(std::make_unique<AtomicFile>(path_)), alignment_(kGgufDefaultAlignment) {}

GgufWriter::~GgufWriter() = default;

void GgufWriter::fail(std::string_view problem) const {
  fail_usage(gguf_cat("cannot write GGUF file ", gguf_quote(path_), ": ", problem));
}

// ---------------------------------------------------------------- metadata

void GgufWriter::check_metadata(const std::string& key, const GgufValue& value) const {
  if (begun_) fail(gguf_cat("metadata key ", gguf_quote(key), " added after begin()"));
  if (array_depth(value) > GgufFile::kMaxArrayDepth) {
    fail(gguf_cat("metadata key ", gguf_quote(key), " nests arrays more than ",
                  num(GgufFile::kMaxArrayDepth), " levels deep, which readers refuse"));
  }
  if (key != kGgufAlignmentKey) return;
  if (value.type() != GgufType::kUint32) {
    fail(gguf_cat("general.alignment must be a UINT32, not ", gguf_type_name(value.type())));
  }
  if (!is_valid_gguf_alignment(value.as<uint32_t>())) {
    fail(gguf_cat("general.alignment ", num(value.as<uint32_t>()), " is not a power of two"));
  }
}

void GgufWriter::update_alignment(const std::string& key, const GgufValue& value) {
  if (key == kGgufAlignmentKey) alignment_ = value.as<uint32_t>();
}

void GgufWriter::add_metadata(std::string key, GgufValue value) {
  check_metadata(key, value);
  if (key_index_.count(key) != 0) fail(gguf_cat("metadata key ", gguf_quote(key), " added twice"));
  update_alignment(key, value);
  key_index_.emplace(key, metadata_.size());
  metadata_.push_back(GgufKv{std::move(key), std::move(value)});
}

void GgufWriter::set_metadata(std::string key, GgufValue value) {
  const auto it = key_index_.find(key);
  if (it == key_index_.end()) return add_metadata(std::move(key), std::move(value));
  check_metadata(key, value);
  update_alignment(key, value);
  metadata_[it->second].value = std::move(value);
}

bool GgufWriter::remove_metadata(std::string_view key) {
  if (begun_) fail(gguf_cat("metadata key ", gguf_quote(key), " removed after begin()"));
  const auto it = key_index_.find(key);
  if (it == key_index_.end()) return false;
  metadata_.erase(metadata_.begin() + static_cast<std::ptrdiff_t>(it->second));
  key_index_.clear();
  for (size_t i = 0; i < metadata_.size(); ++i) key_index_.emplace(metadata_[i].key, i);
  if (key == kGgufAlignmentKey) alignment_ = kGgufDefaultAlignment;
  return true;
}

void GgufWriter::copy_metadata(const GgufFile& from) {
  for (const GgufKv& kv : from.metadata()) add_metadata(kv.key, kv.value);
}

void GgufWriter::set_alignment(uint32_t alignment) {
  set_metadata(std::string(kGgufAlignmentKey), GgufValue::of(alignment));
}

// ---------------------------------------------------------------- tensors

size_t GgufWriter::declare_tensor(std::string name, std::vector<uint64_t> ne, GgmlType type) {
  const std::string q = gguf_quote(name);
  if (begun_) fail(gguf_cat("tensor ", q, " declared after begin()"));
  if (name.empty()) fail("a tensor name is empty");
  if (name.size() >= kGgmlMaxName) {
    fail(gguf_cat("tensor name ", q, " is ", num(name.size()), " bytes long; llama.cpp accepts at most ",
                  num(kGgmlMaxName - 1)));
  }
  if (tensor_index_.count(name) != 0) fail(gguf_cat("tensor ", q, " declared twice"));
  const std::optional<GgmlTypeInfo> info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) {
    fail(gguf_cat("tensor ", q, " has ggml type id ", num(static_cast<uint32_t>(type)),
                  ", which ggml does not define"));
  }
  const GgufTensorSize size = gguf_tensor_size(name, *info, ne);
  if (!size.problem.empty()) fail(size.problem);
  const size_t index = tensors_.size();
  tensor_index_.emplace(name, index);
  tensors_.push_back(Declared{std::move(name), std::move(ne), type, size.nbytes});
  return index;
}

const GgufWriter::Declared& GgufWriter::declared(size_t index) const {
  if (index >= tensors_.size()) {
    fail(gguf_cat("no tensor with index ", num(index), " (", num(tensors_.size()), " declared)"));
  }
  return tensors_[index];
}

uint64_t GgufWriter::tensor_nbytes(size_t index) const { return declared(index).nbytes; }

uint64_t GgufWriter::tensor_offset(size_t index) const {
  const Declared& t = declared(index);
  if (!begun_) fail("tensor offsets are known only after begin()");
  return t.offset;
}

uint64_t GgufWriter::data_start() const {
  if (!begun_) fail("the data section's position is known only after begin()");
  return data_start_;
}

// ---------------------------------------------------------------- writing

void GgufWriter::write_zeros(uint64_t count) {
  static constexpr std::array<std::byte, 4096> kZeros{};
  while (count > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(count, kZeros.size()));
    out_->write(kZeros.data(), n);
    count -= n;
  }
}

// Offsets from tensor `from` on, each tensor at the aligned end of the one
// before; returns the padded end of the data section.
uint64_t GgufWriter::lay_out(size_t from) {
  uint64_t end = from == 0 ? 0 : tensors_[from - 1].offset + tensors_[from - 1].nbytes;
  if (from > 0) {
    const std::optional<uint64_t> padded = gguf_align_up(end, alignment_);
    if (!padded) fail("size overflow: the data section would exceed 2^64 - 1 bytes");
    end = *padded;
  }
  for (size_t i = from; i < tensors_.size(); ++i) {
    tensors_[i].offset = end;
    uint64_t tensor_end;
    std::optional<uint64_t> padded;
    if (!checked_add(end, tensors_[i].nbytes, &tensor_end) ||
        !(padded = gguf_align_up(tensor_end, alignment_))) {
      fail(gguf_cat("size overflow: the data section would exceed 2^64 - 1 bytes at tensor ",
                    gguf_quote(tensors_[i].name)));
    }
    end = *padded;
  }
  return end;
}

std::string GgufWriter::header_bytes() const {
  std::string header(kGgufMagic, sizeof kGgufMagic);
  put_u32(&header, kGgufVersion);
  put_u64(&header, tensors_.size());
  put_u64(&header, metadata_.size());
  for (const GgufKv& kv : metadata_) {
    put_string(&header, kv.key);
    put_u32(&header, static_cast<uint32_t>(kv.value.type()));
    put_payload(&header, kv.value);
  }
  for (const Declared& t : tensors_) {
    put_string(&header, t.name);
    put_u32(&header, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t dim : t.ne) put_u64(&header, dim);
    put_u32(&header, static_cast<uint32_t>(t.type));
    put_u64(&header, t.offset);
  }
  return header;
}

void GgufWriter::begin() {
  if (committed_) fail("begin() called after commit()");
  if (begun_) fail("begin() called twice");
  // The layout first, so that an impossible one fails before anything is
  // written (and leaves the offsets as they were).
  const std::vector<Declared> saved = tensors_;
  uint64_t end;
  try {
    end = lay_out(0);
  } catch (...) {
    tensors_ = saved;
    throw;
  }
  const std::string header = header_bytes();
  const std::optional<uint64_t> start = gguf_align_up(header.size(), alignment_);
  if (!start) fail("size overflow: the header and its padding exceed 2^64 - 1 bytes");
  data_start_ = *start;
  data_size_ = end;
  begun_ = true;
  out_->write(header.data(), header.size());
  write_zeros(data_start_ - header.size());
}

void GgufWriter::retype_tensor(size_t index, GgmlType type) {
  if (committed_) fail("retype_tensor() called after commit()");
  if (!begun_) fail("retype_tensor() called before begin(); declare the tensor with its type instead");
  const Declared& t = declared(index);
  skip_complete_tensors(index);
  if (index != current_ || current_written_ != 0) {
    fail(gguf_cat("tensor ", gguf_quote(t.name), " cannot change type: its data or a later tensor's is written"));
  }
  const std::optional<GgmlTypeInfo> info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) fail(gguf_cat("ggml type id ", num(static_cast<uint32_t>(type)), " is not defined"));
  const GgufTensorSize size = gguf_tensor_size(t.name, *info, t.ne);
  if (!size.problem.empty()) fail(size.problem);
  const std::vector<Declared> saved = tensors_;
  tensors_[index].type = type;
  tensors_[index].nbytes = size.nbytes;
  try {
    data_size_ = lay_out(index);
  } catch (...) {
    tensors_ = saved;
    throw;
  }
  // Type ids and offsets have fixed widths: the header keeps its size and
  // is written again over the old one at commit().
  header_dirty_ = true;
}

// Moves past the tensors before `up_to` that are complete; zero-byte ones
// always are.
void GgufWriter::skip_complete_tensors(size_t up_to) {
  while (current_ < up_to && current_written_ == tensors_[current_].nbytes) {
    ++current_;
    current_written_ = 0;
  }
}

std::string GgufWriter::order_problem(size_t index) const {
  const std::string name = gguf_quote(tensors_[index].name);
  const Declared& pending = tensors_[current_];
  const std::string rule = "; tensors must be written in declaration order";
  if (index < current_) return gguf_cat("tensor ", name, " written after tensor ", gguf_quote(pending.name), rule);
  return gguf_cat("tensor ", name, " written before tensor ", gguf_quote(pending.name), " was complete (",
                  num(current_written_), " of ", num(pending.nbytes), " bytes written)", rule);
}

void GgufWriter::write_tensor_data(size_t index, const void* data, size_t nbytes) {
  if (committed_) fail("tensor data written after commit()");
  if (!begun_) fail("tensor data written before begin()");
  const Declared& t = declared(index);
  if (data == nullptr && nbytes > 0) fail(gguf_cat("null data pointer for tensor ", gguf_quote(t.name)));
  skip_complete_tensors(index);
  if (index != current_) fail(order_problem(index));
  if (nbytes > t.nbytes - current_written_) {
    fail(gguf_cat("too much data for tensor ", gguf_quote(t.name), ": it has ", num(t.nbytes), " bytes, ",
                  num(current_written_), " already written, ", num(nbytes), " more given"));
  }
  if (nbytes == 0) return;
  if (current_written_ == 0) {  // the tensor's first bytes: pad up to its offset
    write_zeros(t.offset - data_written_);
    data_written_ = t.offset;
  }
  out_->write(data, nbytes);
  current_written_ += nbytes;
  data_written_ += nbytes;
}

void GgufWriter::write_tensor_data(std::string_view name, const void* data, size_t nbytes) {
  const auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) fail(gguf_cat("tensor ", gguf_quote(name), " was not declared"));
  write_tensor_data(it->second, data, nbytes);
}

void GgufWriter::commit() {
  if (committed_) fail("commit() called twice");
  if (!begun_) begin();
  skip_complete_tensors(tensors_.size());
  if (current_ < tensors_.size()) {
    const Declared& t = tensors_[current_];
    fail(gguf_cat("tensor ", gguf_quote(t.name), " is incomplete: ", num(current_written_), " of ",
                  num(t.nbytes), " bytes written"));
  }
  write_zeros(data_size_ - data_written_);
  data_written_ = data_size_;
  if (header_dirty_) {
    const std::string header = header_bytes();
    out_->write_at(0, header.data(), header.size());
  }
  out_->commit();
  committed_ = true;
}

}  // namespace lowbit

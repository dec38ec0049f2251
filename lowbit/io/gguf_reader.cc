#include "lowbit/io/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"

namespace lowbit {
namespace {

std::string num(uint64_t value) { return std::to_string(value); }

// How many elements to reserve for a count read from the file. Counts are
// bounded by the bytes that remain, but an element in memory is larger than
// its smallest encoding (a std::string is 32 bytes, an empty string in the
// file 8), so reserving a claimed count in full could still ask for many
// times the file's size. Beyond this cap vectors grow as elements are
// actually read, which keeps memory proportional to real content.
size_t reserve_for(uint64_t count) { return static_cast<size_t>(std::min<uint64_t>(count, 4096)); }

// The smallest number of bytes one element of `type` takes inside an array:
// its size for fixed-size types, a length for a string, an element type and
// a length for an array. Counts are bounded with it before anything is
// allocated.
uint64_t min_element_bytes(GgufType type) {
  if (type == GgufType::kString) return 8;
  if (type == GgufType::kArray) return 4 + 8;
  return gguf_fixed_size(type);
}

// Walks the header front to back. Every read checks that the bytes exist;
// every failure names the file.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  [[noreturn]] void fail(std::string_view problem) const {
    fail_input(gguf_cat("invalid GGUF file ", gguf_quote(path_), ": ", problem));
  }

  uint64_t pos() const noexcept { return pos_; }
  uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(gguf_cat(what, " at byte ", num(pos_), " needs ", num(n), " bytes, but only ",
                    num(remaining()), " remain in the file; the file may be truncated"));
    }
  }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));  // little-endian host (gguf_value.h)
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(std::string_view what) {
    const auto n = read<uint64_t>(gguf_cat("the length of ", what));
    need(n, what);
    std::string text(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return text;
  }

  GgufValue read_value(GgufType type, std::string_view what, int depth) {
    if (type == GgufType::kString) return GgufValue::of(read_string(what));
    if (type == GgufType::kArray) return read_array(what, depth);
    const size_t size = gguf_fixed_size(type);
    need(size, what);
    uint64_t bits = 0;
    std::memcpy(&bits, bytes_.data() + pos_, size);
    pos_ += size;
    if (type == GgufType::kBool && bits > 1) {
      fail(gguf_cat(what, " is a BOOL of value ", num(bits), ", not 0 or 1"));
    }
    return GgufValue::from_bits(type, bits);
  }

  GgufType read_type(std::string_view what) {
    const auto id = read<uint32_t>(what);
    const std::optional<GgufType> type = gguf_type_from_id(id);
    if (!type) fail(gguf_cat(what, " is ", num(id), ", which is not a GGUF value type (0 to 12)"));
    return *type;
  }

 private:
  GgufValue read_array(std::string_view what, int depth) {
    if (depth >= GgufFile::kMaxArrayDepth) {
      fail(gguf_cat(what, " nests arrays more than ", num(GgufFile::kMaxArrayDepth), " levels deep"));
    }
    const GgufType element = read_type(gguf_cat("the element type of ", what));
    const auto n = read<uint64_t>(gguf_cat("the length of ", what));
    const uint64_t min_bytes = min_element_bytes(element);
    if (n > remaining() / min_bytes) {
      fail(gguf_cat(what, " claims ", num(n), " elements of ", gguf_type_name(element),
                    ", at least ", num(min_bytes), " bytes each, but only ", num(remaining()),
                    " bytes remain in the file"));
    }
    const auto count = static_cast<size_t>(n);
    const std::string element_what = gguf_cat("an element of ", what);
    if (element == GgufType::kString) {
      std::vector<std::string> strings;
      strings.reserve(reserve_for(count));
      for (size_t i = 0; i < count; ++i) strings.push_back(read_string(element_what));
      return GgufValue::array(std::move(strings));
    }
    if (element == GgufType::kArray) {
      std::vector<GgufValue> arrays;
      arrays.reserve(reserve_for(count));
      for (size_t i = 0; i < count; ++i) arrays.push_back(read_array(element_what, depth + 1));
      return GgufValue::array(std::move(arrays));
    }
    const size_t nbytes = count * static_cast<size_t>(min_bytes);  // bounded by the file above
    const std::byte* first = bytes_.data() + pos_;
    if (element == GgufType::kBool) {
      for (size_t i = 0; i < count; ++i) {
        if (first[i] > std::byte{1}) {
          fail(gguf_cat("element ", num(i), " of ", what, " is a BOOL of value ",
                        num(static_cast<uint64_t>(first[i])), ", not 0 or 1"));
        }
      }
    }
    pos_ += nbytes;
    return GgufValue::array_from_raw(element, std::vector<std::byte>(first, first + nbytes));
  }

  std::span<const std::byte> bytes_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

// A tensor's data range, for the overlap check.
struct Extent {
  uint64_t begin;
  uint64_t end;
  size_t index;
};

}  // namespace

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  GgufFile file;
  file.path_ = path;
  file.mapping_ = MappedFile::open(path);
  file.bytes_ = file.mapping_.bytes();
  file.parse();
  return file;
}

GgufFile GgufFile::from_memory(std::vector<std::byte> bytes, std::string name_for_errors) {
  GgufFile file;
  file.path_ = std::move(name_for_errors);
  file.owned_ = std::move(bytes);
  file.bytes_ = file.owned_;
  file.parse();
  return file;
}

void GgufFile::parse() {
  Cursor c(bytes_, path_);
  const uint64_t file_size = bytes_.size();

  // ---- fixed header
  if (file_size >= 4 && std::memcmp(bytes_.data(), kGgufMagic, 4) != 0) {
    c.fail(gguf_cat("bad magic: the file starts with ",
                    gguf_quote(std::string_view(reinterpret_cast<const char*>(bytes_.data()), 4)),
                    ", not 'GGUF'; this is not a GGUF file"));
  }
  if (file_size < kGgufHeaderBytes) {
    c.fail(gguf_cat("the file is ", num(file_size), " bytes long, shorter than the ",
                    num(kGgufHeaderBytes), "-byte GGUF header"));
  }
  c.read<uint32_t>("the magic");
  version_ = c.read<uint32_t>("the version");
  if (version_ != 0 && (version_ & 0xffff) == 0) {
    // A big-endian writer stores version 3 as 00 00 00 03, which reads as
    // 0x03000000 here; no real version is that large.
    c.fail(gguf_cat("the version field reads ", num(version_), " (", num(version_ >> 24),
                    " byte-swapped): this is a big-endian GGUF file, and lowbit reads only "
                    "little-endian ones"));
  }
  if (version_ == 1) {
    c.fail("GGUF version 1 is not supported (it used 32-bit counts and was replaced by version 2 "
           "in 2023); convert the model again with a current llama.cpp");
  }
  if (version_ < kGgufOldestVersion || version_ > kGgufVersion) {
    c.fail(gguf_cat("unsupported GGUF version ", num(version_), "; lowbit reads versions ",
                    num(kGgufOldestVersion), " and ", num(kGgufVersion)));
  }
  const auto tensor_count = c.read<uint64_t>("the tensor count");
  const auto kv_count = c.read<uint64_t>("the metadata count");
  // The smallest metadata entry is 13 bytes (an empty key, a type, a UINT8)
  // and the smallest tensor info 24 (an empty name, no dimensions, a type,
  // an offset): counts beyond what the rest of the file can hold are lies.
  uint64_t min_kv_bytes, min_tensor_bytes, min_bytes;
  if (!checked_mul(kv_count, 8 + 4 + 1, &min_kv_bytes) ||
      !checked_mul(tensor_count, 8 + 4 + 4 + 8, &min_tensor_bytes) ||
      !checked_add(min_kv_bytes, min_tensor_bytes, &min_bytes) || min_bytes > c.remaining()) {
    c.fail(gguf_cat("the header claims ", num(kv_count), " metadata entries and ", num(tensor_count),
                    " tensors, more than the remaining ", num(c.remaining()),
                    " bytes of the file can hold"));
  }

  // ---- metadata
  metadata_.reserve(reserve_for(kv_count));
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = c.read_string(gguf_cat("the key of metadata entry ", num(i)));
    if (key_index_.count(key) != 0) {
      c.fail(gguf_cat("duplicate metadata key ", gguf_quote(key), " (entries ",
                      num(key_index_.find(key)->second), " and ", num(i), ")"));
    }
    const std::string what = gguf_cat("the value of metadata key ", gguf_quote(key));
    const GgufType type = c.read_type(gguf_cat("the type of metadata key ", gguf_quote(key)));
    GgufValue value = c.read_value(type, what, 0);
    key_index_.emplace(key, metadata_.size());
    metadata_.push_back(GgufKv{std::move(key), std::move(value)});
  }
  if (const GgufValue* align = find(kGgufAlignmentKey)) {
    if (align->type() != GgufType::kUint32) {
      c.fail(gguf_cat("general.alignment is ", gguf_type_name(align->type()), ", not UINT32"));
    }
    alignment_ = align->as<uint32_t>();
    if (!is_valid_gguf_alignment(alignment_)) {
      c.fail(gguf_cat("general.alignment is ", num(alignment_), ", not a power of two"));
    }
  }

  // ---- tensor infos
  tensors_.reserve(reserve_for(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info{};
    info.name = c.read_string(gguf_cat("the name of tensor info ", num(i)));
    const std::string q = gguf_quote(info.name);
    if (tensor_index_.count(info.name) != 0) {
      c.fail(gguf_cat("duplicate tensor name ", q, " (tensor infos ",
                      num(tensor_index_.find(info.name)->second), " and ", num(i), ")"));
    }
    const auto n_dims = c.read<uint32_t>(gguf_cat("the dimension count of tensor ", q));
    if (n_dims > kGgmlMaxDims) {
      c.fail(gguf_cat("tensor ", q, " has ", num(n_dims), " dimensions; ggml allows at most ",
                      num(kGgmlMaxDims)));
    }
    info.ne.resize(n_dims);
    for (uint64_t& dim : info.ne) dim = c.read<uint64_t>(gguf_cat("the dimensions of tensor ", q));
    const auto type_id = c.read<uint32_t>(gguf_cat("the ggml type of tensor ", q));
    const std::optional<GgmlTypeInfo> type = ggml_type_info(type_id);
    if (!type) {
      c.fail(gguf_cat("tensor ", q, " has ggml type id ", num(type_id),
                      ", which is not a ggml type lowbit knows (ggml retired it, or it is newer "
                      "than lowbit's table)"));
    }
    info.type = type->type;
    info.offset = c.read<uint64_t>(gguf_cat("the data offset of tensor ", q));
    const GgufTensorSize size = gguf_tensor_size(info.name, *type, info.ne);
    if (!size.problem.empty()) c.fail(size.problem);
    info.numel = size.numel;
    info.nbytes = size.nbytes;
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }
  header_size_ = c.pos();
  // header_size_ <= file_size < 2^63, so this cannot overflow.
  data_start_ = gguf_align_up(header_size_, alignment_).value_or(UINT64_MAX);

  // ---- tensor data: aligned, inside the file, not overlapping
  std::vector<Extent> extents;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& t = tensors_[i];
    const std::string q = gguf_quote(t.name);
    if (t.offset % alignment_ != 0) {
      c.fail(gguf_cat("tensor ", q, " has data offset ", num(t.offset),
                      ", not a multiple of the alignment ", num(alignment_)));
    }
    uint64_t begin, end;
    if (!checked_add(data_start_, t.offset, &begin) || !checked_add(begin, t.nbytes, &end) ||
        end > file_size) {
      c.fail(gguf_cat("tensor ", q, " (", num(t.nbytes), " bytes at offset ", num(t.offset),
                      " of the data section, which starts at byte ", num(data_start_),
                      ") runs past the end of the file (", num(file_size),
                      " bytes); the file may be truncated"));
    }
    t.data = bytes_.data() + begin;
    if (t.nbytes > 0) extents.push_back(Extent{t.offset, t.offset + t.nbytes, i});
  }
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  const Extent* furthest = nullptr;  // of the ranges seen so far, the one that ends last
  for (const Extent& e : extents) {
    if (furthest != nullptr && e.begin < furthest->end) {
      const GgufTensorInfo& a = tensors_[furthest->index];
      const GgufTensorInfo& b = tensors_[e.index];
      c.fail(gguf_cat("the data of tensors ", gguf_quote(a.name), " (bytes [", num(a.offset), ", ",
                      num(a.offset + a.nbytes), ")) and ", gguf_quote(b.name), " (bytes [",
                      num(b.offset), ", ", num(b.offset + b.nbytes), ")) overlap"));
    }
    if (furthest == nullptr || e.end > furthest->end) furthest = &e;
  }
}

std::string GgufFile::describe_key(std::string_view key) const {
  return gguf_cat("metadata key ", gguf_quote(key), " of GGUF file ", gguf_quote(path_));
}

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  if (const GgufValue* value = find(key)) return *value;
  fail_input(gguf_cat("GGUF file ", gguf_quote(path_), " has no metadata key ", gguf_quote(key)));
}

const std::string& GgufFile::get_string(std::string_view key) const {
  return at(key).as_string(describe_key(key));
}

const std::vector<std::string>& GgufFile::get_strings(std::string_view key) const {
  return at(key).strings(describe_key(key));
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  if (const GgufTensorInfo* info = find_tensor(name)) return *info;
  fail_input(gguf_cat("GGUF file ", gguf_quote(path_), " has no tensor named ", gguf_quote(name)));
}

}  // namespace lowbit

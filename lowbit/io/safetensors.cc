#include "lowbit/io/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <utility>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

// Why a shape has no byte size; kOk when it has one.
enum class SizeProblem { kOk, kTooManyElements, kTooManyBytes, kPartialByte };

struct SizeResult {
  SizeProblem problem = SizeProblem::kOk;
  uint64_t numel = 1;
  uint64_t nbytes = 0;
};

// The one place that turns (dtype, shape) into a byte count, so that the
// reader, the writer and tensor_nbytes agree. Sub-byte dtypes follow
// upstream: the bit count must be a multiple of 8 (see safetensors.h).
SizeResult compute_size(DType dtype, std::span<const uint64_t> shape) noexcept {
  SizeResult result;
  for (uint64_t dim : shape) {
    if (!checked_mul(result.numel, dim, &result.numel)) {
      result.problem = SizeProblem::kTooManyElements;
      return result;
    }
  }
  // numel * bits / 8 without forming the bit count, which could overflow
  // for byte sizes that fit: elements come in groups of 8 / g that fill
  // bits / g whole bytes, with g = gcd(bits, 8) (one element of 2 bytes for
  // F16, two elements in one byte for F4, four in three bytes for F6).
  const unsigned bits = dtype_bits(dtype);
  const unsigned g = std::gcd(bits, 8u);
  if (result.numel % (8 / g) != 0) {
    result.problem = SizeProblem::kPartialByte;
    return result;
  }
  if (!checked_mul(result.numel / (8 / g), bits / g, &result.nbytes)) {
    result.problem = SizeProblem::kTooManyBytes;
  }
  return result;
}

// ------------------------------------------------------------ message helpers

// Concatenation without `const char* + std::string`, on which GCC 12 gives
// a bogus -Wrestrict warning.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

std::string num(uint64_t value) { return std::to_string(value); }

std::string quote(std::string_view text) { return quote_untrusted(text); }

// A JSON value as it appears in messages, cut short.
std::string show(const Json& value) {
  constexpr size_t kMaxShown = 100;
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxShown) {
    text.resize(kMaxShown);
    text += "...";
  }
  return text;
}

std::string show_shape(std::span<const uint64_t> shape) {
  constexpr size_t kMaxDims = 16;
  std::string out("[");
  for (size_t i = 0; i < shape.size() && i < kMaxDims; ++i) {
    if (i > 0) out += ", ";
    out += num(shape[i]);
  }
  if (shape.size() > kMaxDims) out += ", ...";
  out += ']';
  return out;
}

std::string show_range(uint64_t begin, uint64_t end) {
  return cat("[", num(begin), ", ", num(end), ")");
}

uint64_t load_le64(const std::byte* p) noexcept {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint64_t>(p[i]);
  return value;
}

// ------------------------------------------------------------ header parsing

// Well-formed headers nest three levels deep (header, tensor entry, shape).
// The cap leaves room for anything plausible while stopping a header of
// a hundred million '[' from building a parser stack of that depth.
constexpr int kMaxJsonDepth = 64;

class HeaderParser {
 public:
  HeaderParser(std::string_view path, std::string_view text) : path_(path), text_(text) {}

  [[noreturn]] void fail(const std::string& problem) const {
    fail_input(cat("invalid safetensors file ", quote(path_), ": ", problem));
  }

  // Parses the JSON and checks for duplicate keys and excessive nesting,
  // which the plain DOM parser would silently accept (it keeps the last of
  // two equal keys).
  Json parse() {
    // nlohmann stops at a NUL byte as if the input ended there, so
    // "{}\0<anything>" would pass. Raw NUL is never valid JSON (not even
    // inside strings, where control characters must be escaped).
    if (const void* nul = std::memchr(text_.data(), '\0', text_.size())) {
      const auto at = static_cast<size_t>(static_cast<const char*>(nul) - text_.data());
      fail(cat("the header is not valid JSON: a NUL byte at offset ", num(at), " of the header"));
    }
    // nlohmann skips a leading byte-order mark; upstream's serde_json does
    // not, so such a file would load here and fail everywhere else.
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") {
      fail("the header starts with a UTF-8 byte-order mark, which JSON does not allow");
    }
    Json root;
    try {
      root = Json::parse(
          text_.data(), text_.data() + text_.size(),
          [this](int depth, Json::parse_event_t event, Json& parsed) {
            on_event(depth, event, parsed);
            return true;  // keep every value: the DOM is what we validate
          },
          /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const Json::exception& e) {
      // nlohmann's messages start with "[json.exception.parse_error.101] ";
      // the id means nothing to users.
      std::string what = e.what();
      const size_t bracket = what.find("] ");
      if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) {
        what.erase(0, bracket + 2);
      }
      // The "last read" part can quote a whole unterminated string.
      constexpr size_t kMaxShown = 300;
      if (what.size() > kMaxShown) {
        what.resize(kMaxShown);
        what += "...";
      }
      fail(cat("the header is not valid JSON: ", what));
    }
    return root;
  }

 private:
  struct Scope {
    int depth;          // of the object's own start event
    std::string owner;  // the top-level key whose value this object is, if depth == 1
    std::unordered_set<std::string> keys;
  };

  void on_event(int depth, Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) {
          fail(cat("the header JSON nests deeper than ", num(kMaxJsonDepth),
                   " levels; a safetensors header needs 3"));
        }
        if (event == Json::parse_event_t::object_start) {
          scopes_.push_back(Scope{depth, depth == 1 ? top_key_ : std::string(), {}});
        }
        break;
      case Json::parse_event_t::object_end:
        if (!scopes_.empty()) scopes_.pop_back();
        break;
      case Json::parse_event_t::key: {
        if (scopes_.empty() || !parsed.is_string()) break;  // cannot happen
        const std::string& key = parsed.get_ref<const std::string&>();
        Scope& scope = scopes_.back();
        if (scope.depth == 0) top_key_ = key;
        if (!scope.keys.insert(key).second) duplicate(scope, key);
        break;
      }
      default:
        break;
    }
  }

  [[noreturn]] void duplicate(const Scope& scope, const std::string& key) const {
    if (scope.depth == 0) {
      if (key == "__metadata__") fail("the header has two \"__metadata__\" entries");
      fail(cat("duplicate tensor name ", quote(key), " in the header"));
    }
    if (scope.depth == 1 && scope.owner == "__metadata__") {
      fail(cat("duplicate metadata key ", quote(key), " in \"__metadata__\""));
    }
    if (scope.depth == 1) {
      fail(cat("duplicate key ", quote(key), " in the entry of tensor ", quote(scope.owner)));
    }
    fail(cat("duplicate key ", quote(key), " in the header JSON"));
  }

  std::string_view path_;
  std::string_view text_;
  std::vector<Scope> scopes_;
  std::string top_key_;
};

// One tensor entry as read, before the byte buffer is checked.
struct Entry {
  TensorInfo info;
  uint64_t end;
};

const Json& member(const HeaderParser& p, const Json& entry, const std::string& name,
                   const char* field) {
  const auto it = entry.find(field);
  if (it == entry.end()) p.fail(cat("tensor ", quote(name), " has no \"", field, "\""));
  return *it;
}

Entry read_entry(const HeaderParser& p, const std::string& name, const Json& entry) {
  if (!entry.is_object()) {
    p.fail(cat("the entry of tensor ", quote(name), " is not a JSON object: ", show(entry)));
  }
  Entry out;
  out.info.name = name;

  const Json& dtype = member(p, entry, name, "dtype");
  if (!dtype.is_string()) {
    p.fail(cat("the \"dtype\" of tensor ", quote(name), " is not a string: ", show(dtype)));
  }
  const std::string& dtype_text = dtype.get_ref<const std::string&>();
  const std::optional<DType> parsed = find_dtype(dtype_text);
  if (!parsed) {
    p.fail(cat("tensor ", quote(name), " has unknown dtype ", quote(dtype_text),
               "; known: ", dtype_names()));
  }
  out.info.dtype = *parsed;

  const Json& shape = member(p, entry, name, "shape");
  if (!shape.is_array()) {
    p.fail(cat("the \"shape\" of tensor ", quote(name), " is not an array: ", show(shape)));
  }
  out.info.shape.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const Json& dim = shape[i];
    if (dim.is_number_unsigned()) {
      out.info.shape.push_back(dim.get<uint64_t>());
      continue;
    }
    const std::string where = cat("dimension ", num(i), " of tensor ", quote(name));
    if (dim.is_number_integer()) p.fail(cat(where, " is negative: ", show(dim)));
    if (dim.is_number_float()) {
      p.fail(cat(where, " is not an integer (or does not fit in 64 bits): ", show(dim)));
    }
    p.fail(cat(where, " is not a number: ", show(dim)));
  }

  const Json& offsets = member(p, entry, name, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    p.fail(cat("the \"data_offsets\" of tensor ", quote(name),
               " must be [begin, end] with non-negative integers, not ", show(offsets)));
  }
  // Other members are ignored, as upstream does.
  out.info.offset = offsets[0].get<uint64_t>();
  out.end = offsets[1].get<uint64_t>();
  return out;
}

void read_metadata(const HeaderParser& p, const Json& value,
                   std::map<std::string, std::string>* metadata) {
  // Upstream reads "__metadata__" as an optional map, so null means none.
  if (value.is_null()) return;
  if (!value.is_object()) {
    p.fail(cat("\"__metadata__\" must be a JSON object of strings, not ", show(value)));
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      p.fail(cat("metadata value of ", quote(key), " is not a string: ", show(item)));
    }
    metadata->emplace(key, item.get<std::string>());
  }
}

}  // namespace

// ------------------------------------------------------------ dtype API

std::optional<uint64_t> tensor_nbytes(DType dtype, std::span<const uint64_t> shape) noexcept {
  if (dtype_bits(dtype) == 0) return std::nullopt;  // not a DType value
  const SizeResult size = compute_size(dtype, shape);
  if (size.problem != SizeProblem::kOk) return std::nullopt;
  return size.nbytes;
}

// ------------------------------------------------------------ reader

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = MappedFile::open(path);
  file.bytes_ = file.mapping_.bytes();
  file.parse();
  return file;
}

SafetensorsFile SafetensorsFile::from_memory(std::vector<std::byte> bytes,
                                             std::string name_for_errors) {
  SafetensorsFile file;
  file.path_ = std::move(name_for_errors);
  file.owned_ = std::move(bytes);
  file.bytes_ = file.owned_;
  file.parse();
  return file;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const noexcept {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(std::string_view name) const {
  if (const TensorInfo* info = find(name)) return *info;
  fail_input(cat("safetensors file ", quote(path_), " has no tensor named ", quote(name)));
}

void SafetensorsFile::parse() {
  const uint64_t file_size = bytes_.size();
  // The parser only needs the path for messages until the header is known.
  HeaderParser early(path_, {});
  if (file_size < 8) {
    early.fail(cat("the file is ", num(file_size),
                   " bytes long, too short for the 8-byte header length"));
  }
  const uint64_t n = load_le64(bytes_.data());
  if (n == 0) early.fail("the header length is 0; even an empty header is \"{}\"");
  if (n > kMaxHeaderSize) {
    early.fail(cat("the header length ", num(n), " exceeds the limit of ", num(kMaxHeaderSize),
                   " bytes"));
  }
  if (n > file_size - 8) {
    early.fail(cat("the header length ", num(n), " runs past the end of the file (",
                   num(file_size), " bytes, so at most ", num(file_size - 8), ")"));
  }
  header_size_ = n;

  // Writers pad the header with spaces to align the data, which JSON
  // allows as trailing whitespace; nlohmann also rejects invalid UTF-8.
  const std::string_view text(reinterpret_cast<const char*>(bytes_.data()) + 8,
                              static_cast<size_t>(n));
  HeaderParser parser(path_, text);
  const Json root = parser.parse();
  if (!root.is_object()) parser.fail(cat("the header is not a JSON object: ", show(root)));

  const uint64_t buffer_size = file_size - 8 - n;
  const std::byte* buffer = bytes_.data() + 8 + n;

  std::vector<Entry> entries;
  entries.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      read_metadata(parser, value, &metadata_);
      continue;
    }
    Entry entry = read_entry(parser, key, value);
    TensorInfo& info = entry.info;
    const std::string& name = info.name;
    const SizeResult size = compute_size(info.dtype, info.shape);
    switch (size.problem) {
      case SizeProblem::kOk:
        break;
      case SizeProblem::kTooManyElements:
        parser.fail(cat("size overflow: the shape ", show_shape(info.shape), " of tensor ",
                        quote(name), " has more than 2^64 - 1 elements"));
      case SizeProblem::kTooManyBytes:
        parser.fail(cat("size overflow: the byte size of tensor ", quote(name), " (",
                        num(size.numel), " elements of ", dtype_name(info.dtype),
                        ") does not fit in 64 bits"));
      case SizeProblem::kPartialByte:
        parser.fail(cat("tensor ", quote(name), " has ", num(size.numel), " elements of ",
                        dtype_name(info.dtype), ", which do not fill a whole number of bytes"));
    }
    if (info.offset > entry.end) {
      parser.fail(cat("tensor ", quote(name), " has data_offsets [", num(info.offset), ", ",
                      num(entry.end), "] with begin after end"));
    }
    if (entry.end > buffer_size) {
      parser.fail(cat("tensor ", quote(name), " ends at byte ", num(entry.end),
                      " of the data buffer, past its end (the buffer has ", num(buffer_size),
                      " bytes); the file may be truncated"));
    }
    info.nbytes = entry.end - info.offset;
    if (info.nbytes != size.nbytes) {
      parser.fail(cat("tensor ", quote(name), " has ", num(info.nbytes), " bytes (data_offsets [",
                      num(info.offset), ", ", num(entry.end), "]) but its shape ",
                      show_shape(info.shape), " of ", dtype_name(info.dtype), " needs ",
                      num(size.nbytes), " bytes"));
    }
    info.numel = size.numel;
    info.data = buffer + info.offset;
    entries.push_back(std::move(entry));
  }

  // File order. The JSON object iterates by name, so a stable sort breaks
  // ties (zero-byte tensors at one offset) by name.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.info.offset != b.info.offset ? a.info.offset < b.info.offset : a.end < b.end;
  });

  // The tensors must tile the buffer exactly, as upstream requires: an
  // overlap would make two tensors alias, and unused bytes (a hole, or
  // bytes after the last tensor) mean that the header and the data
  // disagree, typically because one of them was edited or is damaged.
  uint64_t covered = 0;             // [0, covered) belongs to tensors seen so far
  const Entry* last_nonempty = nullptr;  // the tensor that ends at `covered`
  for (const Entry& entry : entries) {
    if (entry.info.offset < covered) {
      parser.fail(cat("tensors ", quote(last_nonempty->info.name), " (bytes ",
                      show_range(last_nonempty->info.offset, last_nonempty->end), ") and ",
                      quote(entry.info.name), " (bytes ", show_range(entry.info.offset, entry.end),
                      ") overlap"));
    }
    if (entry.info.offset > covered) {
      parser.fail(cat("bytes ", show_range(covered, entry.info.offset),
                      " of the data buffer belong to no tensor (a hole before tensor ",
                      quote(entry.info.name), ")"));
    }
    if (entry.end > covered) {
      covered = entry.end;
      last_nonempty = &entry;
    }
  }
  if (covered != buffer_size) {
    parser.fail(cat("bytes ", show_range(covered, buffer_size),
                    " at the end of the data buffer belong to no tensor (", num(buffer_size - covered),
                    " unused bytes)"));
  }

  tensors_.reserve(entries.size());
  for (Entry& entry : entries) {
    index_.emplace(entry.info.name, tensors_.size());
    tensors_.push_back(std::move(entry.info));
  }
}

// ------------------------------------------------------------ writer

namespace {

// `text` as a JSON string literal, or nullopt if it is not valid UTF-8
// (JSON text must be UTF-8; upstream would refuse the file).
std::optional<std::string> json_string(const std::string& text) {
  try {
    return Json(text).dump();
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(std::string path)
    : path_(std::move(path)), out_(std::make_unique<AtomicFile>(path_)) {}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::fail(const std::string& problem) const {
  fail_usage(cat("cannot write safetensors file ", quote(path_), ": ", problem));
}

void SafetensorsWriter::add_metadata(std::string key, std::string value) {
  if (begun_) fail(cat("metadata ", quote(key), " added after begin()"));
  if (!json_string(key)) fail(cat("metadata key ", quote(key), " is not valid UTF-8"));
  if (!json_string(value)) fail(cat("metadata value of ", quote(key), " is not valid UTF-8"));
  if (metadata_.count(key) != 0) fail(cat("metadata key ", quote(key), " added twice"));
  metadata_.emplace(std::move(key), std::move(value));
}

size_t SafetensorsWriter::declare(std::string name, DType dtype, std::vector<uint64_t> shape) {
  if (begun_) fail(cat("tensor ", quote(name), " declared after begin()"));
  if (name.empty()) fail("a tensor name is empty");
  if (name == "__metadata__") fail("\"__metadata__\" cannot be a tensor name");
  if (!json_string(name)) fail(cat("tensor name ", quote(name), " is not valid UTF-8"));
  if (index_.count(name) != 0) fail(cat("tensor ", quote(name), " declared twice"));
  if (dtype_bits(dtype) == 0) {
    fail(cat("tensor ", quote(name), " has an invalid DType value"));
  }
  const SizeResult size = compute_size(dtype, shape);
  switch (size.problem) {
    case SizeProblem::kOk:
      break;
    case SizeProblem::kTooManyElements:
      fail(cat("size overflow: the shape ", show_shape(shape), " of tensor ", quote(name),
               " has more than 2^64 - 1 elements"));
    case SizeProblem::kTooManyBytes:
      fail(cat("size overflow: the byte size of tensor ", quote(name), " does not fit in 64 bits"));
    case SizeProblem::kPartialByte:
      fail(cat("tensor ", quote(name), " has ", num(size.numel), " elements of ",
               dtype_name(dtype),
               ", which do not fill a whole number of bytes (safetensors requires whole bytes)"));
  }
  uint64_t end;
  if (!checked_add(data_size_, size.nbytes, &end)) {
    fail(cat("size overflow: the data buffer would exceed 2^64 - 1 bytes at tensor ", quote(name)));
  }
  const size_t index = tensors_.size();
  index_.emplace(name, index);
  tensors_.push_back(Declared{std::move(name), dtype, std::move(shape), data_size_, size.nbytes});
  data_size_ = end;
  return index;
}

std::string SafetensorsWriter::header_json() const {
  // Compact JSON with the members in upstream's order, so that a file with
  // upstream's tensor order is byte-identical to what upstream writes.
  std::string json("{");
  if (!metadata_.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata_) {
      if (!first) json += ',';
      first = false;
      json += *json_string(key);  // checked in add_metadata
      json += ':';
      json += *json_string(value);
    }
    json += '}';
  }
  for (const Declared& t : tensors_) {
    if (json.size() > 1) json += ',';
    json += *json_string(t.name);  // checked in declare
    json += ":{\"dtype\":\"";
    json += dtype_name(t.dtype);
    json += "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) json += ',';
      json += num(t.shape[i]);
    }
    json += "],\"data_offsets\":[";
    json += num(t.begin);
    json += ',';
    json += num(t.begin + t.nbytes);
    json += "]}";
  }
  json += '}';
  // Pad with spaces (JSON whitespace) so that the buffer, at 8 + N, starts
  // 8-byte aligned; with the page-aligned mmap base that aligns every
  // tensor whose offset is a multiple of its element size.
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

void SafetensorsWriter::begin() {
  if (committed_) fail("begin() called after commit()");
  if (begun_) fail("begin() called twice");
  const std::string header = header_json();
  if (header.size() > SafetensorsFile::kMaxHeaderSize) {
    fail(cat("the header would be ", num(header.size()), " bytes, over the limit of ",
             num(SafetensorsFile::kMaxHeaderSize), " bytes that readers accept"));
  }
  std::array<unsigned char, 8> length;
  uint64_t n = header.size();
  for (unsigned char& byte : length) {
    byte = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  begun_ = true;
  out_->write(length.data(), length.size());
  out_->write(header.data(), header.size());
}

void SafetensorsWriter::write_tensor_data(size_t index, const void* data, size_t nbytes) {
  if (committed_) fail("tensor data written after commit()");
  if (!begun_) fail("tensor data written before begin()");
  if (index >= tensors_.size()) {
    fail(cat("no tensor with index ", num(index), " (", num(tensors_.size()), " declared)"));
  }
  if (data == nullptr && nbytes > 0) {
    fail(cat("null data pointer for tensor ", quote(tensors_[index].name)));
  }
  // Move past the tensors that are complete; zero-byte ones always are.
  while (current_ < index && current_written_ == tensors_[current_].nbytes) {
    ++current_;
    current_written_ = 0;
  }
  const Declared& t = tensors_[index];
  if (index < current_) {
    fail(cat("tensor ", quote(t.name), " written after tensor ", quote(tensors_[current_].name),
             "; tensors must be written in declaration order"));
  }
  if (index > current_) {
    const Declared& pending = tensors_[current_];
    fail(cat("tensor ", quote(t.name), " written before tensor ", quote(pending.name),
             " was complete (", num(current_written_), " of ", num(pending.nbytes),
             " bytes written); tensors must be written in declaration order"));
  }
  if (nbytes > t.nbytes - current_written_) {
    fail(cat("too much data for tensor ", quote(t.name), ": it has ", num(t.nbytes), " bytes, ",
             num(current_written_), " already written, ", num(nbytes), " more given"));
  }
  out_->write(data, nbytes);
  current_written_ += nbytes;
}

void SafetensorsWriter::write_tensor_data(std::string_view name, const void* data, size_t nbytes) {
  const auto it = index_.find(name);
  if (it == index_.end()) fail(cat("tensor ", quote(name), " was not declared"));
  write_tensor_data(it->second, data, nbytes);
}

void SafetensorsWriter::commit() {
  if (committed_) fail("commit() called twice");
  if (!begun_) begin();
  while (current_ < tensors_.size() && current_written_ == tensors_[current_].nbytes) {
    ++current_;
    current_written_ = 0;
  }
  if (current_ < tensors_.size()) {
    const Declared& t = tensors_[current_];
    fail(cat("tensor ", quote(t.name), " is incomplete: ", num(current_written_), " of ",
             num(t.nbytes), " bytes written"));
  }
  out_->commit();
  committed_ = true;
}

uint64_t SafetensorsWriter::tensor_nbytes(size_t index) const {
  if (index >= tensors_.size()) {
    fail(cat("no tensor with index ", num(index), " (", num(tensors_.size()), " declared)"));
  }
  return tensors_[index].nbytes;
}

void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<TensorToWrite>& tensors) {
  SafetensorsWriter writer(path);
  for (const auto& [key, value] : metadata) writer.add_metadata(key, value);
  for (const TensorToWrite& t : tensors) writer.declare(t.name, t.dtype, t.shape);
  writer.begin();
  for (size_t i = 0; i < tensors.size(); ++i) {
    writer.write_tensor_data(i, tensors[i].data, static_cast<size_t>(writer.tensor_nbytes(i)));
  }
  writer.commit();
}

}  // namespace lowbit

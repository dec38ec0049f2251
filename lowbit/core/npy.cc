#include "lowbit/core/npy.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>
#include <utility>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {

// Data bytes are passed through unchanged, which is only right on a
// little-endian host.
static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// np.save aligns the data to 64 bytes so that any dtype can be memory-mapped.
constexpr size_t kArrayAlign = 64;
// np.save (numpy >= 1.24) leaves room for this many digits in the first
// dimension so that appending rows can rewrite the header in place; we copy
// it to be byte-identical with numpy.
constexpr size_t kGrowthAxisMaxDigits = 21;

struct DescrInfo {
  const char* descr;
  size_t itemsize;
};

// The canonical spellings, as numpy's dtype.str gives them: one-byte types
// use '|' (byte order not applicable), the others '<'.
constexpr std::array<DescrInfo, 12> kDescrs = {{
    {"<f2", 2}, {"<f4", 4}, {"<f8", 8},
    {"|i1", 1}, {"<i2", 2}, {"<i4", 4}, {"<i8", 8},
    {"|u1", 1}, {"<u2", 2}, {"<u4", 4}, {"<u8", 8},
    {"|b1", 1},
}};

std::string supported_list() {
  std::string out;
  for (const DescrInfo& d : kDescrs) {
    if (!out.empty()) out += ' ';
    out += d.descr;
  }
  return out;
}

std::string shape_repr(std::span<const uint64_t> shape) {
  // Python's tuple repr: (), (3,), (2, 5).
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ',';
  out += ')';
  return out;
}

// The number of elements of `shape`, or nothing if it does not fit in 64
// bits. Any zero dimension makes the count zero, however large the others
// are, as numpy computes it with unbounded integers.
std::optional<uint64_t> element_count(std::span<const uint64_t> shape) {
  uint64_t count = 1;
  bool overflow = false;
  for (uint64_t dim : shape) {
    if (dim == 0) return 0;
    if (!overflow && !checked_mul(count, dim, &count)) overflow = true;
  }
  if (overflow) return std::nullopt;
  return count;
}

uint32_t read_le(const std::byte* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

// What the header dictionary says, before it is checked against the data.
struct Header {
  std::string descr;
  std::vector<uint64_t> shape;
  size_t data_offset = 0;
};

// A parser for the one Python literal that .npy headers contain: a dict with
// string keys whose values are strings, True/False, or tuples of integers.
// numpy itself evaluates the header with ast.literal_eval; this accepts the
// same spellings that matter (either quote style, any spacing, trailing
// commas, Python 2's "3L") and rejects everything else with a message.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  Header parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<uint64_t>> shape;

    skip_space();
    expect('{', "the header must start with '{'");
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string("a quoted key");
      skip_space();
      expect(':', "expected ':' after key '" + key + "'");
      skip_space();
      if (key == "descr") {
        if (descr) fail("key 'descr' appears twice");
        if (peek() == '[') {
          fail("structured dtypes (a list as 'descr') are not supported; supported dtypes: " +
               supported_list());
        }
        descr = parse_string("a quoted dtype string as 'descr'");
      } else if (key == "fortran_order") {
        if (fortran_order) fail("key 'fortran_order' appears twice");
        fortran_order = parse_bool();
      } else if (key == "shape") {
        if (shape) fail("key 'shape' appears twice");
        shape = parse_shape();
      } else {
        fail("unexpected key '" + key + "' (a .npy header has only 'descr', 'fortran_order' and "
             "'shape')");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail_here("expected ',' or '}'");
    }
    ++pos_;  // '}'
    // numpy pads the header with spaces and ends it with '\n'.
    skip_space();
    if (pos_ != text_.size()) fail_here("unexpected text after the closing '}'");

    if (!descr) fail("the header has no 'descr'");
    if (!fortran_order) fail("the header has no 'fortran_order'");
    if (!shape) fail("the header has no 'shape'");
    if (*fortran_order && shape->size() > 1) {
      fail("Fortran-order (column-major) arrays with more than one dimension are not supported; "
           "save np.ascontiguousarray(arr) instead");
    }
    Header header;
    header.descr = std::move(*descr);
    header.shape = std::move(*shape);
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    fail_input("invalid .npy file '" + std::string(name_) + "': " + problem);
  }
  [[noreturn]] void fail_here(const std::string& problem) const {
    fail(problem + " at offset " + std::to_string(pos_) + " of the header");
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void expect(char c, const std::string& problem) {
    if (peek() != c) fail_here(problem);
    ++pos_;
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
  }

  std::string parse_string(const std::string& what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail_here("expected " + what);
    const size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      // Keys and dtype strings never need escapes; refusing them keeps
      // this parser small and exact.
      if (text_[pos_] == '\\' || text_[pos_] == '\n') fail_here("unsupported character in a string");
      ++pos_;
    }
    if (pos_ >= text_.size()) fail("unterminated string in the header");
    std::string out(text_.substr(start, pos_ - start));
    ++pos_;
    return out;
  }

  bool parse_bool() {
    const size_t start = pos_;
    while (pos_ < text_.size() && is_ident(text_[pos_])) ++pos_;
    const std::string_view word = text_.substr(start, pos_ - start);
    if (word == "True") return true;
    if (word == "False") return false;
    pos_ = start;
    fail_here("'fortran_order' must be True or False");
  }

  uint64_t parse_dim() {
    if (peek() == '-') fail_here("negative dimension in 'shape'");
    if (!is_digit(peek())) fail_here("expected a dimension (a non-negative integer) in 'shape'");
    uint64_t value = 0;
    while (is_digit(peek())) {
      const uint64_t digit = static_cast<uint64_t>(peek() - '0');
      if (!checked_mul(value, 10, &value) || !checked_add(value, digit, &value)) {
        fail_here("dimension in 'shape' does not fit in 64 bits");
      }
      ++pos_;
    }
    // Python 2 numpy wrote long integers as "3L".
    if (peek() == 'L') ++pos_;
    return value;
  }

  std::vector<uint64_t> parse_shape() {
    expect('(', "'shape' must be a tuple such as (3,) or (2, 5)");
    std::vector<uint64_t> dims;
    bool trailing_comma = false;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      dims.push_back(parse_dim());
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        continue;
      }
      if (peek() != ')') fail_here("expected ',' or ')' in 'shape'");
    }
    ++pos_;  // ')'
    // In Python "(3)" is the integer 3, not a tuple; numpy rejects it too.
    if (dims.size() == 1 && !trailing_comma) {
      fail("'shape' is (" + std::to_string(dims[0]) + "), an integer, not a tuple; a "
           "one-dimensional shape is written (" + std::to_string(dims[0]) + ",)");
    }
    return dims;
  }

  std::string_view text_;
  std::string_view name_;
  size_t pos_ = 0;
};

// The canonical descr for what a file declares, or a kInput error.
std::string canonical_descr(const std::string& descr, std::string_view name) {
  const auto fail = [&](const std::string& problem) {
    fail_input("invalid .npy file '" + std::string(name) + "': " + problem);
  };
  if (descr.size() >= 2) {
    const char order = descr[0];
    const std::string body = descr.substr(1);
    for (const DescrInfo& d : kDescrs) {
      if (body != d.descr + 1) continue;
      // Byte order is meaningless for one-byte types; numpy writes '|' but
      // accepts any marker, and so do we.
      if (d.itemsize == 1 && (order == '|' || order == '<' || order == '>' || order == '=')) {
        return d.descr;
      }
      if (order == '<') return d.descr;
      if (order == '>') {
        fail("big-endian dtype '" + descr + "' is not supported; save it little-endian, e.g. "
             "arr.astype('" + std::string(d.descr) + "')");
      }
    }
    if (body[0] == 'V') {
      fail("unsupported dtype '" + descr + "': raw void types (how ml_dtypes saves bfloat16 and "
           "float8 arrays) are not supported; save an unsigned-integer view of the same width "
           "instead, e.g. arr.view(np.uint16) for bfloat16");
    }
  }
  fail("unsupported dtype '" + descr + "'; supported dtypes: " + supported_list());
  return {};  // not reached
}

Header parse_header(std::span<const std::byte> bytes, std::string_view name) {
  const auto fail = [&](const std::string& problem) {
    fail_input("invalid .npy file '" + std::string(name) + "': " + problem);
  };
  if (bytes.empty()) fail("the file is empty");
  const size_t magic_seen = std::min(bytes.size(), kMagicLen);
  if (std::memcmp(bytes.data(), kMagic, magic_seen) != 0) {
    fail("not a .npy file (it does not start with \"\\x93NUMPY\")");
  }
  if (bytes.size() < kMagicLen + 2) {
    fail("the file is truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  const int major = static_cast<int>(bytes[6]);
  const int minor = static_cast<int>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3) {
    fail("unsupported .npy format version " + std::to_string(major) + "." +
         std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  // Version 1.0 stores the header length in 2 bytes; 2.0 and 3.0 use 4.
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t preamble = kMagicLen + 2 + len_bytes;
  if (bytes.size() < preamble) {
    fail("the file is truncated (" + std::to_string(bytes.size()) + " bytes, shorter than the " +
         std::to_string(preamble) + "-byte preamble)");
  }
  const uint64_t header_len = read_le(bytes.data() + kMagicLen + 2, len_bytes);
  const uint64_t data_offset = preamble + header_len;  // cannot overflow: < 2^33
  if (data_offset > bytes.size()) {
    fail("the header length " + std::to_string(header_len) + " extends past the end of the file (" +
         std::to_string(bytes.size()) + " bytes)");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + preamble), header_len);
  Header header = HeaderParser(text, name).parse();
  header.descr = canonical_descr(header.descr, name);
  header.data_offset = static_cast<size_t>(data_offset);

  const std::optional<uint64_t> count = element_count(header.shape);
  if (!count) {
    fail("size overflow: shape " + shape_repr(header.shape) + " has more than 2**64 - 1 elements");
  }
  uint64_t need;
  if (!checked_mul(*count, npy_descr_itemsize(header.descr), &need)) {
    fail("size overflow: shape " + shape_repr(header.shape) + " of '" + header.descr +
         "' needs more than 2**64 - 1 bytes");
  }
  const uint64_t have = bytes.size() - header.data_offset;
  if (need != have) {
    fail("shape " + shape_repr(header.shape) + " of '" + header.descr + "' needs " +
         std::to_string(need) + " data bytes but the file has " + std::to_string(have) +
         (have < need ? " (truncated)" : " (trailing bytes)"));
  }
  return header;
}

}  // namespace

size_t npy_descr_itemsize(std::string_view descr) noexcept {
  for (const DescrInfo& d : kDescrs) {
    if (descr == d.descr) return d.itemsize;
  }
  return 0;
}

uint64_t NpyArray::num_elements() const {
  const std::optional<uint64_t> count = element_count(shape);
  if (!count) fail_input("size overflow: npy shape " + shape_repr(shape) + " has more than 2**64 - 1 elements");
  return *count;
}

size_t NpyArray::itemsize() const {
  const size_t size = npy_descr_itemsize(descr);
  if (size == 0) fail_input("unsupported .npy dtype '" + descr + "'; supported: " + supported_list());
  return size;
}

NpyArray npy_parse(std::span<const std::byte> bytes, std::string_view name_for_errors) {
  Header header = parse_header(bytes, name_for_errors);
  NpyArray array;
  array.descr = std::move(header.descr);
  array.shape = std::move(header.shape);
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header.data_offset), bytes.end());
  return array;
}

NpyArray npy_read(const std::string& path) {
  std::vector<std::byte> bytes = read_file(path);
  Header header = parse_header(bytes, path);
  NpyArray array;
  array.descr = std::move(header.descr);
  array.shape = std::move(header.shape);
  // Shift the data down in place rather than copying it, so that reading a
  // large array needs memory for one copy of it, not two.
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.data_offset));
  array.data = std::move(bytes);
  return array;
}

std::string npy_header(std::string_view descr, std::span<const uint64_t> shape) {
  if (npy_descr_itemsize(descr) == 0) {
    fail_usage("cannot write .npy dtype '" + std::string(descr) + "'; supported: " +
               supported_list());
  }
  // Exactly numpy's _write_array_header: keys sorted, repr values, a ", "
  // after each entry, then the growth-axis spaces.
  std::string dict = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " +
                     shape_repr(shape) + ", }";
  if (!shape.empty()) dict.append(kGrowthAxisMaxDigits - std::to_string(shape[0]).size(), ' ');

  // Version 1.0 if the padded header length fits its 16-bit field, else 2.0.
  for (const int major : {1, 2}) {
    const size_t len_bytes = major == 1 ? 2 : 4;
    const size_t preamble = kMagicLen + 2 + len_bytes;
    const size_t unpadded = dict.size() + 1;  // + '\n'
    const size_t pad = kArrayAlign - (preamble + unpadded) % kArrayAlign;
    const size_t header_len = unpadded + pad;
    if (major == 1 && header_len > 0xFFFF) continue;
    if (header_len > 0xFFFFFFFFu) fail_usage("npy header too long: " + std::to_string(header_len));

    std::string out(kMagic, kMagicLen);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header_len >> (8 * i)) & 0xFF);
    out += dict;
    out.append(pad, ' ');
    out += '\n';
    return out;
  }
  fail_internal("npy_header: no format version fits");  // not reached
}

namespace {

// Checks that data_bytes matches the shape; returns the header.
std::string checked_header(std::string_view descr, std::span<const uint64_t> shape,
                           size_t data_bytes) {
  std::string header = npy_header(descr, shape);
  const std::optional<uint64_t> count = element_count(shape);
  uint64_t need;
  if (!count || !checked_mul(*count, npy_descr_itemsize(descr), &need)) {
    fail_internal("npy write: the byte size of shape " + shape_repr(shape) + " overflows 64 bits");
  }
  if (need != data_bytes) {
    fail_internal("npy write: shape " + shape_repr(shape) + " of '" + std::string(descr) +
                  "' needs " + std::to_string(need) + " bytes, got " + std::to_string(data_bytes));
  }
  return header;
}

}  // namespace

std::vector<std::byte> npy_serialize(std::string_view descr, std::span<const uint64_t> shape,
                                     const void* data, size_t data_bytes) {
  const std::string header = checked_header(descr, shape, data_bytes);
  std::vector<std::byte> out(header.size() + data_bytes);
  std::memcpy(out.data(), header.data(), header.size());
  if (data_bytes > 0) std::memcpy(out.data() + header.size(), data, data_bytes);
  return out;
}

void npy_write_atomic(const std::string& path, std::string_view descr,
                      std::span<const uint64_t> shape, const void* data, size_t bytes) {
  // Header and data are written separately so that a large array is not
  // copied into one buffer first.
  const std::string header = checked_header(descr, shape, bytes);
  AtomicFile file(path);
  file.write(header.data(), header.size());
  file.write(data, bytes);
  file.commit();
}

}  // namespace lowbit

#include "lowbit/io/gguf_value.h"

#include <array>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_format.h"

namespace lowbit {
namespace {

struct TypeRow {
  const char* name;
  size_t fixed_size;  // 0: variable (STRING, ARRAY)
};

// Indexed by the id.
constexpr std::array<TypeRow, 13> kTypes = {{
    {"UINT8", 1},
    {"INT8", 1},
    {"UINT16", 2},
    {"INT16", 2},
    {"UINT32", 4},
    {"INT32", 4},
    {"FLOAT32", 4},
    {"BOOL", 1},
    {"STRING", 0},
    {"ARRAY", 0},
    {"UINT64", 8},
    {"INT64", 8},
    {"FLOAT64", 8},
}};

std::string subject(std::string_view what) {
  return what.empty() ? std::string("GGUF value") : std::string(what);
}

std::string type_text(GgufType type, GgufType element_type) {
  if (type != GgufType::kArray) return gguf_type_name(type);
  return std::string("ARRAY of ").append(gguf_type_name(element_type));
}

[[noreturn]] void bad_build(const std::string& problem) {
  fail_usage(std::string("cannot build GGUF value: ").append(problem));
}

}  // namespace

const char* gguf_type_name(GgufType type) noexcept {
  const auto id = static_cast<size_t>(type);
  return id < kTypes.size() ? kTypes[id].name : "?";
}

std::optional<GgufType> gguf_type_from_id(uint32_t id) noexcept {
  if (id >= kTypes.size()) return std::nullopt;
  return static_cast<GgufType>(id);
}

size_t gguf_fixed_size(GgufType type) noexcept {
  const auto id = static_cast<size_t>(type);
  return id < kTypes.size() ? kTypes[id].fixed_size : 0;
}

GgufValue GgufValue::of(std::string value) {
  GgufValue v;
  v.type_ = GgufType::kString;
  v.string_ = std::move(value);
  return v;
}

GgufValue GgufValue::from_bits(GgufType type, uint64_t bits) {
  const size_t size = gguf_fixed_size(type);
  if (size == 0) bad_build(std::string(gguf_type_name(type)).append(" is not a fixed-size type"));
  if (size < 8 && (bits >> (8 * size)) != 0) {
    bad_build(gguf_cat("bits ", std::to_string(bits), " do not fit in ", gguf_type_name(type)));
  }
  if (type == GgufType::kBool && bits > 1) {
    bad_build(gguf_cat("a BOOL must be 0 or 1, not ", std::to_string(bits)));
  }
  GgufValue v;
  v.type_ = type;
  v.bits_ = bits;
  return v;
}

GgufValue GgufValue::array(std::vector<std::string> strings) {
  GgufValue v;
  v.type_ = GgufType::kArray;
  v.element_type_ = GgufType::kString;
  v.strings_ = std::move(strings);
  return v;
}

GgufValue GgufValue::array(std::vector<GgufValue> arrays) {
  for (size_t i = 0; i < arrays.size(); ++i) {
    if (!arrays[i].is_array()) {
      bad_build(gguf_cat("element ", std::to_string(i), " of an array of arrays is a ",
                         gguf_type_name(arrays[i].type()), ", not an array"));
    }
  }
  GgufValue v;
  v.type_ = GgufType::kArray;
  v.element_type_ = GgufType::kArray;
  v.arrays_ = std::move(arrays);
  return v;
}

GgufValue GgufValue::empty_array(GgufType element_type) {
  if (gguf_type_name(element_type)[0] == '?') {
    bad_build(gguf_cat("element type id ", std::to_string(static_cast<uint32_t>(element_type)),
                       " is not a GGUF type"));
  }
  GgufValue v;
  v.type_ = GgufType::kArray;
  v.element_type_ = element_type;
  return v;
}

GgufValue GgufValue::array_from_raw(GgufType element_type, std::vector<std::byte> raw) {
  const size_t size = gguf_fixed_size(element_type);
  if (size == 0) bad_build(std::string(gguf_type_name(element_type)).append(" is not a fixed-size type"));
  if (raw.size() % size != 0) {
    bad_build(gguf_cat(std::to_string(raw.size()), " bytes are not a whole number of ",
                       gguf_type_name(element_type), " elements"));
  }
  if (element_type == GgufType::kBool) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] > std::byte{1}) {
        bad_build(gguf_cat("BOOL element ", std::to_string(i), " is ",
                           std::to_string(static_cast<unsigned>(raw[i])), ", not 0 or 1"));
      }
    }
  }
  GgufValue v;
  v.type_ = GgufType::kArray;
  v.element_type_ = element_type;
  v.raw_ = std::move(raw);
  return v;
}

void GgufValue::expect(GgufType type, std::string_view what) const {
  if (type_ == type) return;
  fail_input(subject(what) + " is " + type_text(type_, element_type_) + ", not " +
             gguf_type_name(type));
}

void GgufValue::expect_array_of(GgufType element_type, std::string_view what) const {
  if (type_ == GgufType::kArray && element_type_ == element_type) return;
  fail_input(subject(what) + " is " + type_text(type_, element_type_) + ", not " +
             type_text(GgufType::kArray, element_type));
}

const std::string& GgufValue::as_string(std::string_view what) const {
  expect(GgufType::kString, what);
  return string_;
}

uint64_t GgufValue::bits(std::string_view what) const {
  if (gguf_fixed_size(type_) == 0) {
    fail_input(subject(what) + " is " + type_text(type_, element_type_) +
               ", not a fixed-size scalar");
  }
  return bits_;
}

GgufType GgufValue::element_type(std::string_view what) const {
  if (!is_array()) fail_input(subject(what) + " is " + gguf_type_name(type_) + ", not an ARRAY");
  return element_type_;
}

size_t GgufValue::size(std::string_view what) const {
  const size_t fixed = gguf_fixed_size(element_type(what));
  if (fixed != 0) return raw_.size() / fixed;
  return element_type_ == GgufType::kString ? strings_.size() : arrays_.size();
}

const std::vector<std::string>& GgufValue::strings(std::string_view what) const {
  expect_array_of(GgufType::kString, what);
  return strings_;
}

const std::vector<GgufValue>& GgufValue::arrays(std::string_view what) const {
  expect_array_of(GgufType::kArray, what);
  return arrays_;
}

std::span<const std::byte> GgufValue::raw_elements(std::string_view what) const {
  if (gguf_fixed_size(element_type(what)) == 0) {
    fail_input(subject(what) + " is " + type_text(type_, element_type_) +
               ", not an array of fixed-size elements");
  }
  return raw_;
}

uint64_t GgufValue::element_bits(size_t i, std::string_view what) const {
  const std::span<const std::byte> raw = raw_elements(what);
  const size_t fixed = gguf_fixed_size(element_type_);
  if (i >= raw.size() / fixed) {
    fail_usage(subject(what) + ": element " + std::to_string(i) + " of " +
               std::to_string(raw.size() / fixed) + " requested");
  }
  uint64_t bits = 0;
  std::memcpy(&bits, raw.data() + i * fixed, fixed);  // little-endian host
  return bits;
}

}  // namespace lowbit

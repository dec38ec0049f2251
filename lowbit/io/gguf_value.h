// One GGUF metadata value: a scalar, a string, or an array of values of one
// type (arrays of arrays included, each inner array with its own element
// type, as the GGUF spec allows).
//
// A value owns its contents, so one read from a file can be handed to a
// writer unchanged (a quantized model keeps the input's tokenizer and other
// metadata). Numbers are kept as their exact bits: a FLOAT32 NaN keeps its
// payload, and writing a value back produces the same bytes that were read.
//
//   GgufValue a = GgufValue::of(uint32_t{32});
//   GgufValue s = GgufValue::of("llama");
//   GgufValue v = GgufValue::array(std::vector<float>{0.5f, 1.0f});
//   uint32_t x = a.as<uint32_t>();          // exact type match required
//   std::vector<float> f = v.to_vector<float>();
//
// The accessors check the type exactly: asking a UINT32 for an int32_t, or
// a FLOAT32 array for doubles, throws ErrorKind::kInput naming both types
// (a mismatch normally means a file holds something other than expected).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lowbit {

static_assert(std::endian::native == std::endian::little,
              "GGUF values are stored little-endian and copied as is");

// The value types, with the ids GGUF stores.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// The spec's name: "UINT8", "FLOAT32", "STRING", "ARRAY"...; "?" for a
// value outside the enum.
const char* gguf_type_name(GgufType type) noexcept;

// The type with that id, or nullopt for an id GGUF does not define.
std::optional<GgufType> gguf_type_from_id(uint32_t id) noexcept;

// Bytes one value of a fixed-size type takes in a file (BOOL: 1); 0 for
// STRING and ARRAY, whose size varies.
size_t gguf_fixed_size(GgufType type) noexcept;

// The C++ type of each fixed-size GGUF type, in id order (void for STRING
// and ARRAY), for the templated accessors: GgufTypeOf<float>::value is
// GgufType::kFloat32.
template <typename... Ts>
struct GgufTypeList {};
using GgufCppTypes = GgufTypeList<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, void, void,
                                  uint64_t, int64_t, double>;

// The position of T in the list, or -1.
template <typename T, typename... Ts>
constexpr int gguf_index_of(GgufTypeList<Ts...>) {
  int index = 0, found = -1;
  ((found = (found < 0 && std::is_same_v<T, Ts>) ? index : found, ++index), ...);
  return found;
}

template <typename T>
  requires(!std::is_void_v<T> && gguf_index_of<T>(GgufCppTypes{}) >= 0)
struct GgufTypeOf {
  static constexpr GgufType value = static_cast<GgufType>(gguf_index_of<T>(GgufCppTypes{}));
};

// The C++ types that stand for a fixed-size GGUF type.
template <typename T>
concept GgufScalar = requires { GgufTypeOf<T>::value; };

class GgufValue {
 public:
  // UINT8 0, so that values can live in containers.
  GgufValue() = default;

  // A scalar. The type is the argument's own: of(uint32_t{32}) is UINT32;
  // a plain int literal does not compile, on purpose.
  template <GgufScalar T>
  static GgufValue of(T value) {
    if constexpr (std::is_same_v<T, bool>) {
      return from_bits(GgufType::kBool, value ? 1 : 0);
    } else {
      return from_bits(GgufTypeOf<T>::value, std::bit_cast<Unsigned<sizeof(T)>>(value));
    }
  }
  static GgufValue of(std::string value);
  static GgufValue of(const char* value) { return of(std::string(value)); }

  // A fixed-size scalar from its bits (the low gguf_fixed_size(type) bytes;
  // BOOL: 0 or 1). ErrorKind::kUsage for a STRING or ARRAY type, bits
  // that do not fit, or a BOOL other than 0 and 1.
  static GgufValue from_bits(GgufType type, uint64_t bits);

  // Arrays.
  template <GgufScalar T>
  static GgufValue array(std::span<const T> values) {
    std::vector<std::byte> raw(values.size() * sizeof(T));
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < values.size(); ++i) raw[i] = std::byte{values[i] ? uint8_t{1} : uint8_t{0}};
    } else if (!values.empty()) {
      std::memcpy(raw.data(), values.data(), raw.size());
    }
    return array_from_raw(GgufTypeOf<T>::value, std::move(raw));
  }
  template <GgufScalar T>
  static GgufValue array(const std::vector<T>& values) {
    if constexpr (std::is_same_v<T, bool>) {  // vector<bool> has no contiguous storage
      std::vector<std::byte> raw(values.size());
      for (size_t i = 0; i < values.size(); ++i) raw[i] = std::byte{values[i] ? uint8_t{1} : uint8_t{0}};
      return array_from_raw(GgufType::kBool, std::move(raw));
    } else {
      return array(std::span<const T>(values));
    }
  }
  static GgufValue array(std::vector<std::string> strings);
  // An array of arrays; every element must itself be an array.
  static GgufValue array(std::vector<GgufValue> arrays);
  // An empty array of the given element type.
  static GgufValue empty_array(GgufType element_type);
  // An array of a fixed-size type from its little-endian bytes, as stored
  // in a file: raw.size() must be a multiple of the element size, and BOOL
  // bytes 0 or 1 (ErrorKind::kUsage otherwise).
  static GgufValue array_from_raw(GgufType element_type, std::vector<std::byte> raw);

  GgufType type() const noexcept { return type_; }
  bool is_array() const noexcept { return type_ == GgufType::kArray; }

  // ---- scalars. `what` names the value in the message of a type mismatch,
  // e.g. "metadata key 'general.alignment' of GGUF file 'm.gguf'".

  template <GgufScalar T>
  T as(std::string_view what = {}) const {
    expect(GgufTypeOf<T>::value, what);
    if constexpr (std::is_same_v<T, bool>) {
      return bits_ != 0;
    } else {
      return std::bit_cast<T>(static_cast<Unsigned<sizeof(T)>>(bits_));
    }
  }
  const std::string& as_string(std::string_view what = {}) const;
  // The bits of a fixed-size scalar (zero-extended).
  uint64_t bits(std::string_view what = {}) const;

  // ---- arrays

  // The element type; ErrorKind::kInput if this is not an array.
  GgufType element_type(std::string_view what = {}) const;
  // The number of elements; ErrorKind::kInput if this is not an array.
  size_t size(std::string_view what = {}) const;

  // The elements of an array of exactly T.
  template <GgufScalar T>
  std::vector<T> to_vector(std::string_view what = {}) const {
    expect_array_of(GgufTypeOf<T>::value, what);
    std::vector<T> out(raw_.size() / sizeof(T));
    for (size_t i = 0; i < out.size(); ++i) {
      Unsigned<sizeof(T)> u;
      std::memcpy(&u, raw_.data() + i * sizeof(T), sizeof u);
      if constexpr (std::is_same_v<T, bool>) {
        out[i] = u != 0;
      } else {
        out[i] = std::bit_cast<T>(u);
      }
    }
    return out;
  }
  // The elements of an array of STRING.
  const std::vector<std::string>& strings(std::string_view what = {}) const;
  // The elements of an array of ARRAY.
  const std::vector<GgufValue>& arrays(std::string_view what = {}) const;
  // The elements of an array of a fixed-size type, as stored (little-endian).
  std::span<const std::byte> raw_elements(std::string_view what = {}) const;
  // The bits of element i of an array of a fixed-size type (zero-extended).
  uint64_t element_bits(size_t i, std::string_view what = {}) const;

  // Equal type and equal bits: a NaN equals the same NaN, and -0.0 differs
  // from 0.0, since a faithful copy is what comparisons here are for.
  bool operator==(const GgufValue& other) const = default;

 private:
  template <size_t N>
  using Unsigned = std::conditional_t<
      N == 1, uint8_t, std::conditional_t<N == 2, uint16_t, std::conditional_t<N == 4, uint32_t, uint64_t>>>;

  void expect(GgufType type, std::string_view what) const;
  void expect_array_of(GgufType element_type, std::string_view what) const;

  GgufType type_ = GgufType::kUint8;
  GgufType element_type_ = GgufType::kUint8;  // arrays only
  uint64_t bits_ = 0;                         // fixed-size scalars
  std::string string_;                        // STRING
  std::vector<std::byte> raw_;                // arrays of fixed-size elements
  std::vector<std::string> strings_;          // arrays of STRING
  std::vector<GgufValue> arrays_;             // arrays of ARRAY
};

// One metadata entry.
struct GgufKv {
  std::string key;
  GgufValue value;
  bool operator==(const GgufKv& other) const = default;
};

}  // namespace lowbit

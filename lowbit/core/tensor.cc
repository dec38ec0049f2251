#include "lowbit/core/tensor.h"

#include <array>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/text.h"

namespace lowbit {
namespace {

struct DTypeRow {
  DType dtype;
  const char* name;
  unsigned bits;
};

// Indexed by the enum value; the static_assert below keeps the two in step.
constexpr std::array<DTypeRow, 20> kDTypes = {{
    {DType::kBool, "BOOL", 8},
    {DType::kF4, "F4", 4},
    {DType::kF6_E2M3, "F6_E2M3", 6},
    {DType::kF6_E3M2, "F6_E3M2", 6},
    {DType::kU8, "U8", 8},
    {DType::kI8, "I8", 8},
    {DType::kF8_E5M2, "F8_E5M2", 8},
    {DType::kF8_E4M3, "F8_E4M3", 8},
    {DType::kF8_E8M0, "F8_E8M0", 8},
    {DType::kI16, "I16", 16},
    {DType::kU16, "U16", 16},
    {DType::kF16, "F16", 16},
    {DType::kBF16, "BF16", 16},
    {DType::kI32, "I32", 32},
    {DType::kU32, "U32", 32},
    {DType::kF32, "F32", 32},
    {DType::kC64, "C64", 64},
    {DType::kF64, "F64", 64},
    {DType::kI64, "I64", 64},
    {DType::kU64, "U64", 64},
}};

constexpr bool table_matches_enum() {
  for (size_t i = 0; i < kDTypes.size(); ++i) {
    if (static_cast<size_t>(kDTypes[i].dtype) != i) return false;
  }
  return static_cast<size_t>(DType::kU64) + 1 == kDTypes.size();
}
static_assert(table_matches_enum(), "kDTypes must list every DType in enum order");

constexpr std::array<DType, kDTypes.size()> make_all_dtypes() {
  std::array<DType, kDTypes.size()> all{};
  for (size_t i = 0; i < kDTypes.size(); ++i) all[i] = kDTypes[i].dtype;
  return all;
}
constexpr std::array<DType, kDTypes.size()> kAllDTypes = make_all_dtypes();

}  // namespace

std::string dtype_names() {
  std::string list;
  for (const DTypeRow& r : kDTypes) {
    if (!list.empty()) list += ", ";
    list += r.name;
  }
  return list;
}

std::span<const DType> all_dtypes() noexcept { return kAllDTypes; }

const char* dtype_name(DType dtype) noexcept {
  const auto i = static_cast<size_t>(dtype);
  return i < kDTypes.size() ? kDTypes[i].name : "?";
}

std::optional<DType> find_dtype(std::string_view name) noexcept {
  for (const DTypeRow& r : kDTypes) {
    if (name == r.name) return r.dtype;
  }
  return std::nullopt;
}

DType parse_dtype(std::string_view name) {
  if (const auto dtype = find_dtype(name)) return *dtype;
  // The names are safetensors' (and the message says so, as files use them).
  fail_input("unknown safetensors dtype " + quote_untrusted(name) + "; known: " + dtype_names());
}

unsigned dtype_bits(DType dtype) noexcept {
  const auto i = static_cast<size_t>(dtype);
  return i < kDTypes.size() ? kDTypes[i].bits : 0;
}

uint64_t TensorView::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  return n;
}

uint64_t TensorView::rows() const {
  const uint64_t c = cols();
  return c == 0 ? 0 : numel() / c;
}

}  // namespace lowbit

// The element types tensors are stored in (DType) and a read-only view of a
// float32 tensor (TensorView): the two things every layer above passes
// around.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// The element types that the safetensors format names, in upstream's order
// (increasing alignment). The names in files are the part after the k:
// kF8_E4M3 is "F8_E4M3". C64 is a complex number of two F32 parts.
enum class DType : uint8_t {
  kBool,
  kF4,       // E2M1, OCP MX FP4
  kF6_E2M3,  // OCP MX FP6
  kF6_E3M2,  // OCP MX FP6
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kF8_E8M0,  // OCP MX scale: exponent only
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};

// Every DType, in enum order.
std::span<const DType> all_dtypes() noexcept;

// The name used in files: "F32", "BF16", "F8_E4M3", "BOOL"...
const char* dtype_name(DType dtype) noexcept;

// The DType with that exact (case-sensitive) name, or nullopt.
std::optional<DType> find_dtype(std::string_view name) noexcept;

// The DType with that name; throws ErrorKind::kInput
// "unknown safetensors dtype 'X'; known: BOOL, F4, ..." otherwise.
DType parse_dtype(std::string_view name);

// Every name, comma-separated, for messages.
std::string dtype_names();

// Bits per element: 4, 6, 8, 16, 32 or 64 (0 for a value outside the enum).
unsigned dtype_bits(DType dtype) noexcept;

// A read-only float32 tensor, row-major with the last axis fastest (a
// scalar has shape {}). The shape is owned, so a view made of a temporary
// shape ({x.data(), {64}}) cannot dangle; copying it costs nothing next to
// any work done on the data.
struct TensorView {
  const float* data = nullptr;
  std::vector<uint64_t> shape;

  TensorView() = default;
  TensorView(const float* d, std::vector<uint64_t> s) : data(d), shape(std::move(s)) {}

  // The element count; kInput when it overflows 64 bits.
  uint64_t numel() const;
  // The last axis (1 for a scalar) and the product of the others.
  uint64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  uint64_t rows() const;
};

}  // namespace lowbit

#include "lowbit/ggml/type.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"

namespace lowbit {
namespace {

// Block geometry from ggml's type traits (ggml.c); gguf-py's
// GGML_QUANT_SIZES lists the same numbers, and a test compares the two.
const std::vector<GgmlTypeInfo> kTypes = {
    {GgmlType::kF32, "F32", 1, 4},          {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", 32, 18},      {GgmlType::kQ4_1, "Q4_1", 32, 20},
    {GgmlType::kQ5_0, "Q5_0", 32, 22},      {GgmlType::kQ5_1, "Q5_1", 32, 24},
    {GgmlType::kQ8_0, "Q8_0", 32, 34},      {GgmlType::kQ8_1, "Q8_1", 32, 40},
    {GgmlType::kQ2_K, "Q2_K", 256, 84},     {GgmlType::kQ3_K, "Q3_K", 256, 110},
    {GgmlType::kQ4_K, "Q4_K", 256, 144},    {GgmlType::kQ5_K, "Q5_K", 256, 176},
    {GgmlType::kQ6_K, "Q6_K", 256, 210},    {GgmlType::kQ8_K, "Q8_K", 256, 292},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", 256, 66}, {GgmlType::kIQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", 256, 98}, {GgmlType::kIQ1_S, "IQ1_S", 256, 50},
    {GgmlType::kIQ4_NL, "IQ4_NL", 32, 18},  {GgmlType::kIQ3_S, "IQ3_S", 256, 110},
    {GgmlType::kIQ2_S, "IQ2_S", 256, 82},   {GgmlType::kIQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::kI8, "I8", 1, 1},            {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},          {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},          {GgmlType::kIQ1_M, "IQ1_M", 256, 56},
    {GgmlType::kBF16, "BF16", 1, 2},        {GgmlType::kTQ1_0, "TQ1_0", 256, 54},
    {GgmlType::kTQ2_0, "TQ2_0", 256, 66},   {GgmlType::kMXFP4, "MXFP4", 32, 17},
    {GgmlType::kNVFP4, "NVFP4", 64, 36},    {GgmlType::kQ1_0, "Q1_0", 128, 18},
};

}  // namespace

const std::vector<GgmlTypeInfo>& ggml_types() { return kTypes; }

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

GgmlTypeInfo ggml_type_info(GgmlType type) {
  const auto t = ggml_type_info(static_cast<uint32_t>(type));
  if (!t) fail_internal("ggml type " + std::to_string(static_cast<uint32_t>(type)) + " is not in the table");
  return *t;
}

std::optional<GgmlTypeInfo> ggml_type_by_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() == name.size() &&
        std::equal(name.begin(), name.end(), t.name.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        })) {
      return t;
    }
  }
  return std::nullopt;
}

uint64_t ggml_row_bytes(GgmlType type, uint64_t elems, std::string_view what) {
  const GgmlTypeInfo t = ggml_type_info(type);
  if (elems % t.block_elems != 0) {
    fail_input(std::string(what).append(": ")
                   .append(std::to_string(elems))
                   .append(" elements is not a whole number of ")
                   .append(t.name)
                   .append(" blocks of ")
                   .append(std::to_string(t.block_elems)));
  }
  return mul_or_fail(elems / t.block_elems, t.block_bytes, std::string(what).append(" byte count"));
}

}  // namespace lowbit

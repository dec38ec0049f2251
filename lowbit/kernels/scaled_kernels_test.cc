// dequant_row on every SIMD target against its documented arithmetic,
// element by element: x_hat = v * scale, or (v - (z_in + z_post)) * scale
// for asym blocks, NaN where the scale is not finite; with and without
// non-temporal stores, at every output alignment, for groups smaller and
// larger than a vector. (scaled_row is checked against its scalar reference
// by quantizer_test, scheme by scheme.)
#include "lowbit/kernels/scaled_kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

using kernels::CodeLayout;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t code_at(CodeLayout layout, const std::vector<uint8_t>& codes, size_t j) {
  switch (layout) {
    case CodeLayout::kNibbles:
      return j % 2 == 0 ? codes[j / 2] & 0xFu : codes[j / 2] >> 4;
    case CodeLayout::kHalf:
      return codes[2 * j] | static_cast<uint32_t>(codes[2 * j + 1]) << 8;
    default:
      return codes[j];
  }
}

TEST(DequantRow, EqualsThePerElementFormula) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  const size_t n = 1000;
  for (CodeLayout layout : {CodeLayout::kNibbles, CodeLayout::kByte, CodeLayout::kHalf}) {
    const size_t ncodes = layout == CodeLayout::kNibbles ? 16 : layout == CodeLayout::kByte ? 256 : 65536;
    std::vector<float> lut(ncodes);
    for (auto& v : lut) v = std::round(d(rng) * 8.0f);
    std::vector<uint64_t> pair(256);
    for (size_t b = 0; b < 256 && layout == CodeLayout::kNibbles; ++b) {
      pair[b] = std::bit_cast<uint32_t>(lut[b & 15]) | static_cast<uint64_t>(std::bit_cast<uint32_t>(lut[b >> 4])) << 32;
    }
    std::vector<uint8_t> codes(layout == CodeLayout::kNibbles ? n / 2 : layout == CodeLayout::kByte ? n : 2 * n);
    for (auto& c : codes) c = static_cast<uint8_t>(rng());
    for (size_t group : {5, 16, 32, 100}) {
      for (bool asym : {false, true}) {
        const size_t nb = (n + group - 1) / group;
        std::vector<kernels::BlockScale> blocks(nb);
        for (auto& b : blocks) {
          b.scale = std::fabs(d(rng)) * 0.01f;
          if (asym) {
            b.z_in = d(rng);
            b.z_post = std::round(std::fabs(d(rng)) * 4.0f);
          }
        }
        blocks[2].scale = kNaN;  // a block that held inf or NaN
        blocks[nb - 2].scale = std::numeric_limits<float>::infinity();
        // Rows start even for nibbles; j0 leaves a head of a block out.
        const size_t j0 = layout == CodeLayout::kNibbles ? 6 : 7, j1 = n - 3;
        std::vector<float> want(n, 0.0f);
        for (size_t j = j0; j < j1; ++j) {
          const kernels::BlockScale& p = blocks[j / group];
          const float v = lut[code_at(layout, codes, j)];
          want[j] = !std::isfinite(p.scale) ? kNaN : asym ? (v - (p.z_in + p.z_post)) * p.scale : v * p.scale;
        }
        std::vector<float> buf(n + 64);
        float* const base = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / 4 % 16) % 16;
        for (KernelTarget t : available_targets()) {
          for (bool stream : {false, true}) {
            for (size_t off : {0, 1, 2, 4, 10}) {
              set_kernel_target(t);
              float* out = base + off;
              std::fill(out, out + n, 0.0f);
              kernels::dequant_row(lut.data(), pair.data(), layout, codes.data(), asym, j0, j1, group, blocks.data(),
                                   out, stream);
              reset_kernel_target();
              for (size_t j = 0; j < n; ++j) {
                ASSERT_EQ(std::bit_cast<uint32_t>(out[j]), std::bit_cast<uint32_t>(want[j]))
                    << "layout " << static_cast<int>(layout) << " g" << group << " asym " << asym << " "
                    << kernel_target_name(t) << " stream " << stream << " offset " << off << " element " << j;
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace lowbit

// dequantize(): codes and block parameters back to float32 values, for
// every scheme (a fixed layout through its own codec).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/format/packing.h"
#include "lowbit/quant/tensor_codec.h"
#include "lowbit/quant/outliers.h"
#include "lowbit/quant/quantize_internal.h"

namespace lowbit {

using namespace quant_detail;


void dequantize(const QuantizedTensor& q, float* out, int threads) {
  const Scheme& s = q.scheme;
  // A tensor without elements has nothing to write (and its block grid a
  // phantom 1 x 1 block whose row loop would run past the end).
  if (std::find(q.shape.begin(), q.shape.end(), uint64_t{0}) != q.shape.end()) return;
  // A fixed layout decodes itself.
  if (q.fixed_codec) return q.fixed_codec->decode(q, out, thread_count(threads));
  const BlockGrid g = BlockGrid::make(q.shape, s.gran);
  const uint64_t n = g.numel();
  const Format cf = s.code_format();
  if (q.codes.size() != component_bytes(cf, n)) {
    fail_input("quantized tensor: codes hold " + std::to_string(q.codes.size()) + " bytes, expected " +
               std::to_string(component_bytes(cf, n)));
  }
  ScaleCoder sc(s.scale_format);
  if (q.scales.size() != component_bytes(s.scale_format, g.num_blocks)) {
    fail_input("quantized tensor: scales hold " + std::to_string(q.scales.size()) + " bytes, expected " +
               std::to_string(component_bytes(s.scale_format, g.num_blocks)));
  }
  // Packed (sub-byte) scale and zero formats are unpacked up front; whole-
  // byte codes are read in place, block by block, inside the parallel loop.
  const Format zf = s.zero == ZeroPoint::kInteger ? cf : s.scale_format;
  const bool packed_scales = has_packed_layout(s.scale_format);
  const bool packed_zeros = s.zero != ZeroPoint::kNone && has_packed_layout(zf);
  std::vector<uint32_t> scodes, zcodes;
  if (packed_scales) scodes = load_codes(s.scale_format, q.scales, g.num_blocks);
  if (s.zero != ZeroPoint::kNone) {
    if (q.zeros.size() != component_bytes(zf, g.num_blocks)) fail_input("quantized tensor: zero points have the wrong size");
    if (packed_zeros) zcodes = load_codes(zf, q.zeros, g.num_blocks);
  }
  const int scb = s.scale_format.code_bytes(), zcb = zf.code_bytes();
  const auto read_code = [](const std::vector<uint8_t>& bytes, int cb, uint64_t i) {
    uint32_t c = 0;
    for (int k = 0; k < cb; ++k) c |= static_cast<uint32_t>(bytes[i * cb + k]) << (8 * k);
    return c;
  };
  float s_t = 1;
  if (s.two_level()) s_t = ScaleCoder(*s.tensor_scale_format).decode(q.tensor_scale);
  // The same per-block parameters as the quantizer used.
  const uint32_t* svals = sc.value_bits();
  const uint32_t smask = sc.code_mask();
  const auto param = [&](uint64_t b) {
    BlockScale p;
    const uint32_t code = packed_scales ? scodes[b] : read_code(q.scales, scb, b);
    const float v = svals ? std::bit_cast<float>(svals[code & smask]) : sc.decode(code);
    const float eff = s.two_level() ? v * s_t : v;
    p.scale = std::isfinite(eff) ? eff : kNaN;
    if (s.zero != ZeroPoint::kNone) {
      const uint32_t z = packed_zeros ? zcodes[b] : read_code(q.zeros, zcb, b);
      if (s.zero == ZeroPoint::kInteger) p.z_post = static_cast<float>(z);
      if (s.zero == ZeroPoint::kFloat) p.z_in = sc.decode(z);
    }
    return p;
  };
  // Grids whose blocks span units share one parameter table; local grids
  // build each row's few parameters where they are used.
  std::vector<BlockScale> params;
  if (!g.local) {
    params.resize(g.num_blocks);
    for (uint64_t b = 0; b < g.num_blocks; ++b) params[b] = param(b);
  }
  // Element values by code: the element format's values, or q itself.
  const KernelPlan vplan = make_kernel_plan(cf, RoundOptions{});
  std::vector<float> lut;
  if (cf.bits <= 16) {
    lut.resize(size_t{1} << cf.bits);
    for (size_t c = 0; c < lut.size(); ++c) lut[c] = static_cast<float>(vplan.codec->decode(static_cast<uint32_t>(c)));
  }
  const bool asym = s.zero != ZeroPoint::kNone;
  const bool nibbles = cf.bits == 4 && !cf.ternary && g.cols % 2 == 0;
  std::vector<uint64_t> pair_lut;
  if (nibbles) {
    pair_lut.resize(256);
    for (size_t b = 0; b < 256; ++b) {
      pair_lut[b] = std::bit_cast<uint32_t>(lut[b & 15]) | static_cast<uint64_t>(std::bit_cast<uint32_t>(lut[b >> 4])) << 32;
    }
  }
  // Other sub-byte widths are unpacked to one byte per code first.
  std::vector<uint8_t> unpacked;
  const bool packed = has_packed_layout(cf);
  if (packed && !nibbles) {
    unpacked.resize(n);
    unpack_codes(cf, q.codes.data(), n, unpacked.data());
  }
  const int cb = cf.code_bytes();
  kernels::CodeLayout layout = nibbles ? kernels::CodeLayout::kNibbles
                               : (packed || cb == 1) ? kernels::CodeLayout::kByte
                               : cb == 2 ? kernels::CodeLayout::kHalf
                                         : kernels::CodeLayout::kWord;
  // Outputs far beyond the caches are written with non-temporal stores.
  const bool stream = n * sizeof(float) >= (uint64_t{32} << 20);
  // Symmetric 1-D groups with one-byte scale codes (MX, NVFP4): each batch
  // of 16 blocks' scales in SIMD, no per-block parameters
  // (small_block_kernels.h). The reference target keeps the general route.
  kernels::SmallBlockDequant small;
  const bool use_small = g.local && s.gran.kind == Granularity::Kind::kGroup && !asym && !packed_scales &&
                         scb == 1 && svals && (layout == kernels::CodeLayout::kByte || (nibbles && g.group % 2 == 0)) &&
                         vplan.family != SimdFamily::kScalarOnly && kernels::small_block_simd();
  if (use_small) {
    small.lut = lut.data();
    small.pair_lut = pair_lut.data();
    small.layout = layout;
    small.group = g.group;
    small.scale_values = svals;
    small.scale_mask = smask;
    small.two_level = s.two_level();
    small.tensor_scale = s_t;
    small.stream = stream;
  }
  ThreadPool::global().parallel_for(g.num_units(), thread_count(threads), [&](size_t ui) {
    const BlockGrid::Unit u = g.unit(ui);
    thread_local std::vector<BlockScale> row_params;
    for (uint64_t r = u.r0; r < u.r1; ++r) {
      if (use_small) {
        const uint64_t e = r * g.cols + u.c0;
        const uint8_t* codes = nibbles ? q.codes.data() + e / 2 : packed ? unpacked.data() + e : q.codes.data() + e;
        kernels::small_block_dequant_row(small, codes, q.scales.data() + g.block_of(r, u.c0), u.c1 - u.c0, out + e);
        continue;
      }
      const BlockScale* bp;
      if (g.local) {
        // Entries [c0 / group, c1 / group] of this row's blocks.
        const uint64_t b0 = g.block_row(r) * g.blocks_per_row, first = u.c0 / g.group, last = (u.c1 - 1) / g.group;
        row_params.resize(last + 1);
        for (uint64_t c = first; c <= last; ++c) row_params[c] = param(b0 + c);
        bp = row_params.data();
      } else {
        bp = params.data() + g.block_row(r) * g.blocks_per_row;
      }
      const uint64_t base = r * g.cols;
      float* o = out + base;
      if (layout == kernels::CodeLayout::kWord) {
        for (uint64_t j = u.c0; j < u.c1; ++j) {
          uint32_t c;
          std::memcpy(&c, &q.codes[4 * (base + j)], 4);
          const float v = static_cast<float>(vplan.codec->decode(c));
          const BlockScale& p = bp[j / g.group];
          float d = asym ? (v - (p.z_in + p.z_post)) * p.scale : v * p.scale;
          if (std::isnan(p.scale)) d = kNaN;
          o[j] = d;
        }
        continue;
      }
      const uint8_t* rc = packed && !nibbles ? unpacked.data() + base
                          : nibbles         ? q.codes.data() + base / 2
                                            : q.codes.data() + base * cb;
      kernels::dequant_row(lut.data(), pair_lut.data(), layout, rc, asym, u.c0, u.c1, g.group, bp, o, stream);
    }
  });
  if (q.outliers.count > 0) restore_outliers(q.outliers, out, n);
}

}  // namespace lowbit

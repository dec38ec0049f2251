// Block-scaled quantization of rows (scaled_kernels.h): the scale, the
// element rounding of lattice-inl.h and the zero point in one pass, compiled
// once per Highway target.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/scaled_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first: the -inl.h files are compiled once per target.
#include "lowbit/kernels/lattice-inl.h"
#include "lowbit/kernels/scaled_kernels.h"
#include "lowbit/kernels/scaled_vec-inl.h"

#include <cmath>
#include <cstring>
#include <limits>

#ifndef LOWBIT_KERNELS_SCALED_CANON_ONCE
#define LOWBIT_KERNELS_SCALED_CANON_ONCE
namespace lowbit::kernels {

// The canonical order of error sums (scaled_kernels.h), element by element:
// the scalar reference and the per-lane SIMD path use it as is; the
// vectorized path keeps the 16 partial sums in registers.
struct CanonicalErr {
  static constexpr size_t kLanes = 16, kFlush = 1024;
  double* out = nullptr;
  size_t block = SIZE_MAX, pos = 0;
  float lane[kLanes] = {};
  double sum = 0;

  void add(size_t b, float e) {
    if (b != block) {
      finish();
      block = b;
    }
    lane[pos % kLanes] += e;
    if (++pos % kFlush == 0) flush();
  }
  void flush() {
    sum += tree_sum(lane);
    for (float& l : lane) l = 0;
  }
  // The 16 partial sums added pairwise in double: lane k with k + 8, then
  // k with k + 4, k + 2, k + 1. A tree, not a chain, so that the vector
  // paths' per-block reductions overlap instead of waiting on each other.
  static double tree_sum(const float* l) {
    double d[8], e[4];
    for (int k = 0; k < 8; ++k) d[k] = static_cast<double>(l[k]) + static_cast<double>(l[k + 8]);
    for (int k = 0; k < 4; ++k) e[k] = d[k] + d[k + 4];
    const double f0 = e[0] + e[2], f1 = e[1] + e[3];
    return f0 + f1;
  }
  void finish() {
    if (block != SIZE_MAX) {
      flush();
      out[block] += sum;
    }
    block = SIZE_MAX;
    pos = 0;
    sum = 0;
  }
};

}  // namespace lowbit::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

// Gathers the parameters of the blocks `bidx` (one per lane) from the
// array-of-structs `blocks`.
HWY_INLINE LaneScale Gather(const kernels::BlockScale* blocks, VI bidx) {
  const DF df;
  const float* base = reinterpret_cast<const float*>(blocks);
  const VI i4 = hn::ShiftLeft<2>(bidx);
  const DI di;
  return {hn::GatherIndex(df, base, i4), hn::GatherIndex(df, base, hn::Add(i4, hn::Set(di, 1))),
          hn::GatherIndex(df, base, hn::Add(i4, hn::Set(di, 2))),
          hn::GatherIndex(df, base, hn::Add(i4, hn::Set(di, 3)))};
}

// One loop, one call site of the rounding (it is large, and this file is
// compiled for every mode, family and target): each step takes a whole
// vector of one block with broadcast parameters when blocks are a multiple
// of the vector length, else up to a vector of any blocks with gathered
// parameters.
template <int kMode, int kFam>
HWY_NOINLINE void ScaledRowT(const KernelPlan& p, const kernels::ScaledSpec& spec, const float* HWY_RESTRICT in,
                             size_t j0, size_t j1, size_t group, const kernels::BlockScale* blocks,
                             uint64_t index0, const kernels::ScaledOut& out) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  // The canonical error order has 16 partial sums: kK vectors of this target.
  constexpr size_t kMaxN = hn::MaxLanes(DF());
  constexpr size_t kK = kMaxN <= 16 && 16 % kMaxN == 0 ? 16 / kMaxN : 1;
  const RowCtx r(p, stochastic_key(p.opt.seed, static_cast<uint32_t>((index0 + j0) >> 32)), spec, out, index0);
  const bool want_err = out.block_err != nullptr;
  const bool broadcast = group % N == 0 && N == kMaxN && kMaxN <= 16 && 16 % kMaxN == 0;
  float* deq = out.deq;
  HWY_ALIGN float lanes[16];
  HWY_ALIGN int32_t bidx[HWY_MAX_BYTES / 4];
  HWY_ALIGN float ebuf[HWY_MAX_BYTES / 4];
  kernels::CanonicalErr canon;
  canon.out = out.block_err;
  // Broadcast state: the current block, its end, its parameters and its
  // error partial sums.
  size_t cur = SIZE_MAX, cur_end = 0, pos = 0;
  LaneScale bs = Broadcast(kernels::BlockScale{});
  VF acc[kK];
  double sum = 0;
  const auto flush = [&] {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
    if constexpr (kK == 1) {
      // The canonical tree in registers: lanes k and k+8 widened and added,
      // then halves (k + 4), then k + 2, then the last pair.
      const __m512 a = acc[0].raw;
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
      const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
      const __m512d d = _mm512_add_pd(lo, hi);
      const __m256d e = _mm256_add_pd(_mm512_castpd512_pd256(d), _mm512_extractf64x4_pd(d, 1));
      const __m128d f = _mm_add_pd(_mm256_castpd256_pd128(e), _mm256_extractf128_pd(e, 1));
      sum += _mm_cvtsd_f64(f) + _mm_cvtsd_f64(_mm_unpackhi_pd(f, f));
      acc[0] = hn::Zero(df);
      (void)lanes;
      return;
    }
#endif
    for (size_t k = 0; k < kK; ++k) {
      hn::Store(acc[k], df, lanes + k * N);
      acc[k] = hn::Zero(df);
    }
    sum += kernels::CanonicalErr::tree_sum(lanes);
  };
  const auto finish_block = [&] {
    if (want_err && cur != SIZE_MAX) {
      flush();
      out.block_err[cur] += sum;
    }
  };
  size_t j = j0;
  while (j < j1) {
    size_t count;
    LaneScale s;
    if (broadcast) {
      if (j >= cur_end) {
        finish_block();
        cur = cur == SIZE_MAX ? j / group : cur + 1;  // no division per block
        cur_end = std::min(j1, (cur + 1) * group);
        bs = Broadcast(blocks[cur]);
        for (auto& a : acc) a = hn::Zero(df);
        sum = 0;
        pos = 0;
      }
      count = std::min(N, cur_end - j);
      s = bs;
    } else {
      count = std::min(N, j1 - j);
      size_t b = j / group, off = j % group;
      for (size_t k = 0; k < N; ++k) {
        bidx[k] = static_cast<int32_t>(k < count ? b : j / group);
        if (++off == group) {
          off = 0;
          ++b;
        }
      }
      s = Gather(blocks, hn::Load(di, bidx));
    }
    const bool full = count == N;
    const VF x = full ? hn::LoadU(df, in + j) : LoadPart(in + j, count);
    VF e = hn::Zero(df);
    const VF d = ScaledVec<kMode, kFam>(r, x, s, j, count, full, want_err ? &e : nullptr, out.weights);
    if (deq) {
      if (full) {
        hn::StoreU(d, df, deq + j);
      } else {
        StorePart(d, deq + j, count);
      }
    }
    if (want_err) {
      if (broadcast) {
        VF& a = acc[(pos / N) % kK];
        a = hn::Add(a, e);
        pos += count;
        if (full && pos % kernels::CanonicalErr::kFlush == 0) flush();
      } else {
        hn::Store(e, df, ebuf);
        for (size_t k = 0; k < count; ++k) canon.add(static_cast<size_t>(bidx[k]), ebuf[k]);
      }
    }
    j += count;
  }
  if (broadcast) {
    finish_block();
  } else {
    canon.finish();
  }
}

template <int kFam>
void ScaledByMode(const KernelPlan& p, const kernels::ScaledSpec& spec, const float* in, size_t j0, size_t j1,
                  size_t group, const kernels::BlockScale* blocks, uint64_t index0, const kernels::ScaledOut& out) {
  switch (static_cast<int>(p.opt.mode)) {
    case kRne:
      return ScaledRowT<kRne, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    case kRna:
      return ScaledRowT<kRna, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    case kRtz:
      return ScaledRowT<kRtz, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    case kUp:
      return ScaledRowT<kUp, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    case kDown:
      return ScaledRowT<kDown, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    case kOdd:
      return ScaledRowT<kOdd, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
    default:
      if constexpr (kFam != kCodebookSel) return ScaledRowT<kSr, kFam>(p, spec, in, j0, j1, group, blocks, index0, out);
  }
}

void ScaledRow(const KernelPlan& p, const kernels::ScaledSpec& spec, const float* in, size_t j0, size_t j1,
               size_t group, const kernels::BlockScale* blocks, uint64_t index0, const kernels::ScaledOut& out) {
  switch (p.family) {
    case SimdFamily::kClosedForm:
      if (p.integer) {
        switch (p.opt.mode) {
          case Rounding::kNearestEven:
            return ScaledRowT<kRne, kIntSel>(p, spec, in, j0, j1, group, blocks, index0, out);
          case Rounding::kTowardZero:
            return ScaledRowT<kRtz, kIntSel>(p, spec, in, j0, j1, group, blocks, index0, out);
          case Rounding::kUp:
            return ScaledRowT<kUp, kIntSel>(p, spec, in, j0, j1, group, blocks, index0, out);
          case Rounding::kDown:
            return ScaledRowT<kDown, kIntSel>(p, spec, in, j0, j1, group, blocks, index0, out);
          default:
            break;
        }
      }
      if (p.man_bits != 0) return ScaledByMode<kClosedK>(p, spec, in, j0, j1, group, blocks, index0, out);
      return ScaledByMode<kClosedM0>(p, spec, in, j0, j1, group, blocks, index0, out);
    case SimdFamily::kBinadeTable:
      return ScaledByMode<kTableSel>(p, spec, in, j0, j1, group, blocks, index0, out);
    case SimdFamily::kCodebook:
      return ScaledByMode<kCodebookSel>(p, spec, in, j0, j1, group, blocks, index0, out);
    case SimdFamily::kScalarOnly:
      break;
  }
  fail_internal("no SIMD kernel for this family");
}

void DequantRow(const float* HWY_RESTRICT lut, const uint64_t* HWY_RESTRICT pair_lut, kernels::CodeLayout layout,
                const void* codes, bool asym, size_t j0, size_t j1, size_t group, const kernels::BlockScale* blocks,
                float* HWY_RESTRICT out, bool stream) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const auto scalar = [&](size_t j) {
    uint32_t c;
    if (layout == kernels::CodeLayout::kByte) {
      c = static_cast<const uint8_t*>(codes)[j];
    } else if (layout == kernels::CodeLayout::kHalf) {
      c = static_cast<const uint16_t*>(codes)[j];
    } else {
      const uint8_t b = static_cast<const uint8_t*>(codes)[j / 2];
      c = j % 2 == 0 ? (b & 0xFu) : (b >> 4);
    }
    const kernels::BlockScale& p = blocks[j / group];
    const float v = lut[c];
    float d = asym ? (v - (p.z_in + p.z_post)) * p.scale : v * p.scale;
    if (!std::isfinite(p.scale)) d = std::numeric_limits<float>::quiet_NaN();
    out[j] = d;
  };
  const auto params = [&](size_t b) {
    return std::pair<float, float>{blocks[b].scale, blocks[b].z_in + blocks[b].z_post};
  };
  // Streaming whatever the alignment pays where the values are cheap (4-bit
  // codes); gathered byte and half codes measured slower with it.
  if (stream && layout == kernels::CodeLayout::kNibbles &&
      StreamDequant(lut, pair_lut, layout, codes, asym, j0, j1, group, params, scalar, out)) {
    return;
  }
  size_t j = j0;
  size_t b = j0 / group;
  while (j < j1) {
    const size_t end = std::min(j1, (b + 1) * group);
    const kernels::BlockScale& p = blocks[b];
    if (!std::isfinite(p.scale)) {
      for (; j < end; ++j) out[j] = std::numeric_limits<float>::quiet_NaN();
    } else {
      // Whole vectors that start on an even element (nibble bytes) share the
      // block's parameters; the rest goes element by element.
      if (end - j >= N && (layout != kernels::CodeLayout::kNibbles || j % 2 == 0)) {
        const VF vs = hn::Set(df, p.scale), vz = hn::Set(df, p.z_in + p.z_post);
        for (; j + N <= end; j += N) {
          const VF c = CodeValues(lut, pair_lut, layout, codes, j);
          const VF v = asym ? hn::Mul(hn::Sub(c, vz), vs) : hn::Mul(c, vs);
          if (stream && reinterpret_cast<uintptr_t>(out + j) % (N * sizeof(float)) == 0) {
            hn::Stream(v, df, out + j);
          } else {
            hn::StoreU(v, df, out + j);
          }
        }
      }
      for (; j < end; ++j) scalar(j);
    }
    ++b;
  }
#if HWY_ARCH_X86
  if (stream) _mm_sfence();
#endif
}

// Per-block |x| maximum as float32 bits (integer max: NaN above inf above
// every finite value) and, optionally, min and max of x.
void RowBlockStats(const float* HWY_RESTRICT in, size_t n, size_t group, uint32_t* amax_bits, float* vmin,
                   float* vmax) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  const VI absmask = hn::Set(di, 0x7fffffff);
  size_t b = 0, start = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
  // Blocks of 16 or 32 (MX, NVFP4), 16 at a time.
  if (!vmin && (group == 16 || group == 32)) {
    for (; start + 16 * group <= n; start += 16 * group, b += 16) {
      const __m512i z = BlockAmax16(in + start, group);
      __m512i* dst = reinterpret_cast<__m512i*>(amax_bits + b);
      _mm512_storeu_si512(dst, _mm512_max_epu32(_mm512_loadu_si512(dst), z));
    }
  }
#endif
  for (; start < n; start += group, ++b) {
    const size_t end = std::min(n, start + group);
    size_t j = start;
    VI m = hn::Zero(di);
    VF lo = hn::Set(df, std::numeric_limits<float>::infinity());
    VF hi = hn::Neg(lo);
    for (; j + N <= end; j += N) {
      const VF x = hn::LoadU(df, in + j);
      m = hn::Max(m, hn::And(hn::BitCast(di, x), absmask));
      if (vmin) {
        lo = hn::Min(lo, x);
        hi = hn::Max(hi, x);
      }
    }
    uint32_t mb = static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, m)));
    float l = 0.0f, h = 0.0f;
    if (vmin) {
      l = hn::GetLane(hn::MinOfLanes(df, lo));
      h = hn::GetLane(hn::MaxOfLanes(df, hi));
    }
    for (; j < end; ++j) {
      const float x = in[j];
      mb = std::max(mb, std::bit_cast<uint32_t>(x) & 0x7fffffffu);
      l = std::min(l, x);
      h = std::max(h, x);
    }
    amax_bits[b] = std::max(amax_bits[b], mb);
    if (vmin) {
      vmin[b] = std::min(vmin[b], l);
      vmax[b] = std::max(vmax[b], h);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(ScaledRow);
HWY_EXPORT(RowBlockStats);
HWY_EXPORT(DequantRow);


void dequant_row(const float* lut, const uint64_t* pair_lut, CodeLayout layout, const void* codes, bool asym,
                 size_t j0, size_t j1, size_t group, const BlockScale* blocks, float* out, bool stream) {
  HWY_DYNAMIC_DISPATCH(DequantRow)(lut, pair_lut, layout, codes, asym, j0, j1, group, blocks, out, stream);
}

void scaled_row_reference(const KernelPlan& elem, const ScaledSpec& spec, const float* in, size_t j0, size_t j1,
                          size_t group, const BlockScale* blocks, uint64_t index0, const ScaledOut& out) {
  const Codec& codec = *elem.codec;
  CanonicalErr canon;
  canon.out = out.block_err;
  for (size_t j = j0; j < j1; ++j) {
    const BlockScale& b = blocks[j / group];
    const float x = in[j];
    float u = x * b.inv;
    if (spec.asym) u = u + b.z_in;
    const uint32_t c0 = codec.encode(u, elem.opt, index0 + j);
    const float v = static_cast<float>(codec.decode(c0));
    uint32_t code = c0;
    float deq;
    if (spec.asym) {
      // The same operation order as the SIMD path: max with 0 first, so a
      // NaN v gives 0 there, then min with qmax.
      float q = v + b.z_post;
      q = q > 0.0f ? q : 0.0f;
      q = q < spec.qmax ? q : spec.qmax;
      deq = (q - (b.z_in + b.z_post)) * b.scale;
      code = static_cast<uint32_t>(static_cast<int32_t>(q));
    } else {
      deq = v * b.scale;
    }
    if (!std::isfinite(b.scale)) {
      deq = std::numeric_limits<float>::quiet_NaN();
      code = 0;
    }
    switch (out.layout) {
      case CodeLayout::kByte:
        static_cast<uint8_t*>(out.codes)[j] = static_cast<uint8_t>(code);
        break;
      case CodeLayout::kHalf:
        static_cast<uint16_t*>(out.codes)[j] = static_cast<uint16_t>(code);
        break;
      case CodeLayout::kWord:
        static_cast<uint32_t*>(out.codes)[j] = code;
        break;
      case CodeLayout::kNibbles: {
        uint8_t* p = static_cast<uint8_t*>(out.codes) + j / 2;
        *p = j % 2 == 0 ? static_cast<uint8_t>((*p & 0xF0u) | (code & 0xFu))
                        : static_cast<uint8_t>((*p & 0x0Fu) | ((code & 0xFu) << 4));
        break;
      }
      case CodeLayout::kNone:
        break;
    }
    if (out.deq) out.deq[j] = deq;
    if (out.block_err) {
      const float d = deq - x;
      float e = d * d;
      if (out.weights) e *= out.weights[j];
      canon.add(j / group, e);
    }
  }
  canon.finish();
}

void scaled_row(const KernelPlan& elem, const ScaledSpec& spec, const float* in, size_t j0, size_t j1, size_t group,
                const BlockScale* blocks, uint64_t index0, const ScaledOut& out) {
  if (j1 <= j0) return;
  if (elem.family == SimdFamily::kScalarOnly) {
    return scaled_row_reference(elem, spec, in, j0, j1, group, blocks, index0, out);
  }
  HWY_DYNAMIC_DISPATCH(ScaledRow)(elem, spec, in, j0, j1, group, blocks, index0, out);
}

void row_block_stats(const float* in, size_t n, size_t group, uint32_t* amax_bits, float* vmin, float* vmax) {
  HWY_DYNAMIC_DISPATCH(RowBlockStats)(in, n, group, amax_bits, vmin, vmax);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE

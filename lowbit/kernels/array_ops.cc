#include "lowbit/kernels/array_ops.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>

#include "hwy/highway.h"
#include "hwy/targets.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/registry.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/kernel_plan.h"

namespace lowbit {

namespace {

std::atomic<bool> g_force_scalar{false};
std::atomic<int> g_forced_target{-1};

}  // namespace

KernelPlan make_kernel_plan(const Format& f, const RoundOptions& round) {
  if (round.sr_bits < 1 || round.sr_bits > 32) {
    fail_usage("stochastic rounding needs 1..32 random bits, got " + std::to_string(round.sr_bits));
  }
  KernelPlan p(f, round);
  if (g_force_scalar.load()) p.family = SimdFamily::kScalarOnly;
  return p;
}

namespace {

KernelPlan make_plan(const Format& f, const RoundOptions& round) { return make_kernel_plan(f, round); }

int thread_count(const ArrayOptions& opt) {
  return opt.threads > 0 ? opt.threads : default_thread_count();
}

constexpr size_t kStreamingBytes = size_t{32} << 20;

// Runs fn(begin, end) over fixed chunks in parallel. The chunking never
// depends on the thread count, so neither do the results.
template <class Fn>
void for_chunks(size_t n, const ArrayOptions& opt, Fn&& fn) {
  const size_t chunks = (n + kChunkElements - 1) / kChunkElements;
  ThreadPool::global().parallel_for(chunks, thread_count(opt), [&](size_t c) {
    const size_t begin = c * kChunkElements;
    fn(begin, std::min(n, begin + kChunkElements));
  });
}

bool crosses_index_block(uint64_t first, size_t len) {
  return len > 0 && (first >> 32) != ((first + len - 1) >> 32);
}

// Whether packed 4-bit output can be written straight from the SIMD kernel.
bool nibbles_direct(const Format& f, const KernelPlan& plan) {
  return f.bits == 4 && !f.ternary && (plan.family == SimdFamily::kClosedForm || plan.family == SimdFamily::kCodebook);
}

const Format& float16_format() {
  static const Format f = parse_format("float16");
  return f;
}
const Format& bfloat16_format() {
  static const Format f = parse_format("bfloat16");
  return f;
}

}  // namespace

uint64_t encoded_bytes(const Format& f, uint64_t n, bool packed) {
  return packed ? packed_bytes(f, n) : n * static_cast<uint64_t>(f.code_bytes());
}

void encode_array(const Format& f, InputType type, const void* in, uint8_t* out, size_t n,
                  bool packed, const ArrayOptions& opt) {
  const KernelPlan plan = make_plan(f, opt.round);
  const bool pack = packed && has_packed_layout(f);
  const int cb = f.code_bytes();
  // Float16/bfloat16 inputs are widened (exactly) through their decode table.
  std::optional<KernelPlan> widen;
  if (type == InputType::kFloat16) widen.emplace(float16_format(), RoundOptions{});
  if (type == InputType::kBFloat16) widen.emplace(bfloat16_format(), RoundOptions{});
  for_chunks(n, opt, [&](size_t begin, size_t end) {
    const size_t len = end - begin;
    thread_local std::vector<float> widened;
    thread_local std::vector<uint8_t> tile;
    const float* src = nullptr;
    if (type == InputType::kFloat32) {
      src = static_cast<const float*>(in) + begin;
    } else if (widen) {
      widened.resize(len);
      kernels::decode_chunk(*widen, static_cast<const uint16_t*>(in) + begin, 2, widened.data(), len);
      src = widened.data();
    }
    uint8_t* dst = out + begin * cb;
    const bool direct = pack && type != InputType::kFloat64 && nibbles_direct(f, plan) &&
                        !crosses_index_block(opt.index_offset + begin, len);
    if (pack && !direct) {
      tile.resize(len);
      dst = tile.data();
    }
    if (type == InputType::kFloat64) {
      const double* d = static_cast<const double*>(in) + begin;
      for (size_t i = 0; i < len; ++i) {
        const uint32_t code = plan.codec->encode(d[i], opt.round, opt.index_offset + begin + i);
        for (int b = 0; b < (pack ? 1 : cb); ++b) dst[i * (pack ? 1 : cb) + b] = static_cast<uint8_t>(code >> (8 * b));
      }
    } else if (direct) {
      // 4-bit codes packed in registers, no tile pass.
      kernels::encode_chunk(plan, src, out + packed_bytes(f, begin), 0, len, opt.index_offset + begin);
      return;
    } else {
      split_at_index_blocks(0, len, opt.index_offset + begin, [&](size_t b, size_t e) {
        kernels::encode_chunk(plan, src + b, dst + b * (pack ? 1 : cb), pack ? 1 : cb, e - b,
                              opt.index_offset + begin + b);
      });
    }
    if (pack) {
      uint8_t* o = out + packed_bytes(f, begin);
      if (f.bits == 4 && !f.ternary && !g_force_scalar.load()) {
        kernels::pack_nibbles(tile.data(), len, o);
      } else {
        pack_codes(f, tile.data(), len, o);
      }
    }
  });
}

void encode_array(const Format& f, const float* in, uint8_t* out, size_t n, bool packed,
                  const ArrayOptions& opt) {
  encode_array(f, InputType::kFloat32, in, out, n, packed, opt);
}

namespace {
[[noreturn]] void invalid_code(const Format& f, uint64_t code, uint64_t element) {
  fail_input("code " + std::to_string(code) + " at element " + std::to_string(element) + " is not a code of the " +
             std::to_string(f.bits) + "-bit format " + f.name);
}
}  // namespace

void decode_array(const Format& f, const uint8_t* in, float* out, size_t n, bool packed,
                  const ArrayOptions& opt) {
  KernelPlan plan = make_plan(f, RoundOptions{});
  const bool pack = packed && has_packed_layout(f);
  const int cb = f.code_bytes();
  const uint64_t limit = f.bits >= 32 ? ~uint64_t{0} : (uint64_t{1} << f.bits);
  // Codes wider than the format, or unused inside its width, are not codes
  // of it: refuse them rather than decode garbage.
  const bool check_width = !pack && static_cast<uint64_t>(cb) * 8 > static_cast<uint64_t>(f.bits);
  const std::vector<uint8_t>* valid = plan.valid_codes.get();
  const bool scalar = g_force_scalar.load() || !plan.decode_lut;
  for_chunks(n, opt, [&](size_t begin, size_t end) {
    const size_t len = end - begin;
    thread_local std::vector<uint8_t> tile;
    const uint8_t* codes = in + begin * cb;
    int width = cb;
    if (pack) {
      tile.resize(len);
      unpack_codes(f, in + packed_bytes(f, begin), len, tile.data());
      codes = tile.data();
      width = 1;
    }
    const auto code_at = [&](size_t i) {
      uint32_t c = 0;
      for (int b = 0; b < width; ++b) c |= static_cast<uint32_t>(codes[i * width + b]) << (8 * b);
      return c;
    };
    if (check_width || valid) {
      for (size_t i = 0; i < len; ++i) {
        const uint32_t c = code_at(i);
        if (c >= limit || (valid && !(*valid)[c])) invalid_code(f, c, begin + i);
      }
    }
    if (scalar) {
      for (size_t i = 0; i < len; ++i) out[begin + i] = static_cast<float>(plan.codec->decode(code_at(i)));
      return;
    }
    kernels::decode_chunk(plan, codes, width, out + begin, len);
  });
}

void fakequant_array(const Format& f, const float* in, float* out, size_t n,
                     const ArrayOptions& opt) {
  KernelPlan plan = make_plan(f, opt.round);
  // Past the last-level cache a normal store costs a read of the line first.
  plan.stream_stores = n * sizeof(float) >= kStreamingBytes && in != out;
  for_chunks(n, opt, [&](size_t begin, size_t end) {
    split_at_index_blocks(begin, end, opt.index_offset, [&](size_t b, size_t e) {
      kernels::fakequant_chunk(plan, in + b, out + b, e - b, opt.index_offset + b);
    });
  });
}

void fakequant_array(const Format& f, const double* in, double* out, size_t n,
                     const ArrayOptions& opt) {
  const KernelPlan plan = make_plan(f, opt.round);
  for_chunks(n, opt, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) out[i] = plan.codec->fakequant(in[i], opt.round, opt.index_offset + i);
  });
}

// ---------------------------------------------------------------- targets

namespace {
struct TargetInfo {
  KernelTarget target;
  int64_t hwy_bit;
};
constexpr TargetInfo kTargets[] = {
    // Highway's portable baseline: EMU128, or SCALAR where SSE2 is all that
    // the compiler may assume.
    {KernelTarget::kBaseline, HWY_EMU128 | HWY_SCALAR},
    {KernelTarget::kAvx2, HWY_AVX2},
    {KernelTarget::kAvx512, HWY_AVX3},
};
}  // namespace

const char* kernel_target_name(KernelTarget t) {
  switch (t) {
    case KernelTarget::kScalar:
      return "scalar";
    case KernelTarget::kBaseline:
      return "baseline";
    case KernelTarget::kAvx2:
      return "avx2";
    case KernelTarget::kAvx512:
      return "avx512";
  }
  return "?";
}

std::vector<KernelTarget> available_targets() {
  std::vector<KernelTarget> v = {KernelTarget::kScalar};
  const int64_t supported = hwy::SupportedTargets();
  for (const auto& t : kTargets) {
    if ((HWY_TARGETS & t.hwy_bit) & supported) v.push_back(t.target);
  }
  return v;
}

void set_kernel_target(KernelTarget t) {
  g_force_scalar = t == KernelTarget::kScalar;
  g_forced_target = static_cast<int>(t);
  for (const auto& info : kTargets) {
    if (info.target == t) hwy::SetSupportedTargetsForTest(info.hwy_bit & HWY_TARGETS);
  }
}

void reset_kernel_target() {
  g_force_scalar = false;
  g_forced_target = -1;
  hwy::SetSupportedTargetsForTest(0);
}

KernelTarget current_kernel_target() {
  if (g_forced_target >= 0) return static_cast<KernelTarget>(g_forced_target.load());
  return available_targets().back();
}

}  // namespace lowbit

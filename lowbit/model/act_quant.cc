#include "lowbit/model/act_quant.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

namespace {

// Rows a bits-per-element figure assumes for the scales of a per-tensor
// dynamic scheme: one evaluation chunk.
constexpr uint64_t kRowsForBits = 512;

Scheme runtime_scheme(const std::string& spec) {
  Scheme s = parse_scheme(spec);
  if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
    fail_usage(fmt::format("activation scheme '{}': outliers are a stored weight format; a runtime tensor takes "
                           "per-tensor, per-token (/channel), /gN or MX/NVFP4 block scales",
                           spec));
  }
  if (s.gran.kind == Granularity::Kind::kBlock2D) {
    fail_usage(fmt::format("activation scheme '{}': 2-D blocks span tokens; use /gN or a 1-D block preset", spec));
  }
  if (s.gran.kind == Granularity::Kind::kChannel && s.gran.axis != 0) {
    fail_usage(fmt::format("activation scheme '{}': /channel scales a token's row (axis 0), the only channel axis "
                           "of an activation",
                           spec));
  }
  return s;
}

}  // namespace

ActQuant ActQuant::dynamic(const std::string& spec) {
  ActQuant a;
  a.scheme = runtime_scheme(spec);
  return a;
}

ActQuant ActQuant::fixed(const std::string& spec, float amax) {
  ActQuant a;
  a.scheme = runtime_scheme(spec);
  if (a.scheme.gran.kind != Granularity::Kind::kTensor || a.scheme.zero != ZeroPoint::kNone ||
      a.scheme.two_level()) {
    fail_usage(fmt::format("static scheme '{}': a static scale is one symmetric scale per tensor (e.g. int8/tensor, "
                           "e4m3fn/tensor)",
                           spec));
  }
  if (!(amax > 0) || !std::isfinite(amax)) {
    fail_usage(fmt::format("static scheme '{}': the calibrated largest |x| is {}, not a positive number", spec, amax));
  }
  a.static_amax = amax;
  return a;
}

bool ActQuant::identity() const noexcept {
  const Format& f = scheme.element;
  return f.family == Family::kMinifloat && f.bits == 32 && f.exp_bits == 8 && f.man_bits == 23 && f.is_signed &&
         f.subnormals && f.specials == Specials::kIeee;
}

void ActQuant::apply(const float* x, int64_t rows, int64_t cols, float* out, int threads) const {
  const size_t n = static_cast<size_t>(rows * cols);
  if (n == 0) return;
  if (identity()) {
    std::copy(x, x + n, out);
    return;
  }
  if (static_amax > 0) {
    // s maps the calibrated amax onto the element's max; 1/s once, as the
    // tensor quantizer computes it (quantizer.h).
    const float s = static_cast<float>(static_amax / scheme.element_max());
    const float inv = 1.0f / s;
    // Element-wise, so chunks on the pool give the same bits at any thread
    // count (the rounding's random stream is indexed by element).
    const auto count = static_cast<int64_t>(n);
    parallel_chunks(count, 1 << 14, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = x[i] * inv;
    });
    ArrayOptions o;
    o.round = scheme.round;
    o.threads = threads;
    fakequant_array(scheme.element, out, out, n, o);
    parallel_chunks(count, 1 << 14, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] *= s;
    });
    return;
  }
  QuantizeOptions o;
  o.threads = threads;
  fakequant_tensor(TensorView(x, {static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)}), out, scheme, o);
}

double ActQuant::bits_per_element(int64_t cols) const {
  if (identity()) return 32;
  if (static_amax > 0) return scheme.element.bits;
  const QuantizedTensor::Bits b = scheme_bits(scheme, {kRowsForBits, static_cast<uint64_t>(cols)});
  return static_cast<double>(b.total()) / static_cast<double>(kRowsForBits * static_cast<uint64_t>(cols));
}

std::string ActQuant::describe() const {
  return static_amax > 0 ? fmt::format("{} static {} (amax {:.6g})", scheme.spec(),
                                       static_rule.empty() ? "absmax" : static_rule, static_amax)
                         : scheme.spec();
}

}  // namespace lowbit

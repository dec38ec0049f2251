#include "lowbit/train/operand_quant.h"

#include <bit>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/kernels/small_block_kernels.h"
#include "lowbit/kernels/transpose.h"
#include "lowbit/model/act_quant.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/train/mix64.h"

namespace lowbit {

namespace {

constexpr int64_t kHadamard = 16;


// max |x| over the operand (SIMD, in chunks on the pool: a maximum does not
// depend on the partition). A NaN operand gives NaN, which leaves the
// operand unrounded here; the trainer's checks then stop the run.
float absmax(const float* x, int64_t n, int threads) {
  constexpr int64_t kChunk = 1 << 16;
  std::vector<uint32_t> part(static_cast<size_t>((n + kChunk - 1) / kChunk), 0);
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    part[static_cast<size_t>(b / kChunk)] = kernels::max_abs_bits(x + b, static_cast<size_t>(e - b));
  });
  uint32_t m = 0;
  for (uint32_t v : part) m = v > m ? v : m;
  return std::bit_cast<float>(m);
}

// out[rows, cols] = x rounded along its rows' columns; out may be x.
void round_rows(const OperandQuant& q, const float* x, int64_t rows, int64_t cols, uint64_t seed,
                AmaxHistory* history, float* out, int threads) {
  const auto n = static_cast<size_t>(rows * cols);
  if (q.kind == OperandQuant::Kind::kNone) {
    if (out != x) std::copy(x, x + n, out);
    return;
  }
  if (q.kind == OperandQuant::Kind::kCast) {
    ArrayOptions o;
    o.round = q.scheme.round;
    o.round.seed = seed;
    o.threads = threads;
    fakequant_array(q.cast, x, out, n, o);
    return;
  }
  Scheme s = q.scheme;
  s.round.seed = seed;
  if (q.history > 0) {
    if (!history) fail_internal("delayed scaling without its amax history");
    const float current = absmax(x, static_cast<int64_t>(n), threads);
    float amax = current;
    if (!history->values.empty()) {
      amax = 0;
      for (float v : history->values) amax = v > amax ? v : amax;  // a NaN entry never wins
    }
    if (static_cast<int64_t>(history->values.size()) < q.history) {
      history->values.push_back(current);
    } else {
      history->values[static_cast<size_t>(history->next)] = current;
    }
    history->next = (history->next + 1) % q.history;
    if (!(amax > 0 && std::isfinite(amax))) {
      if (out != x) std::copy(x, x + n, out);
      return;
    }
    // The history's amax maps onto the element's max: a static scale, as
    // the runtime's calibrated activations use (act_quant.h); values
    // beyond it saturate (or overflow, by the scheme's policy), as in TE.
    ActQuant fixed;
    fixed.scheme = s;
    fixed.static_amax = amax;
    if (out == x) {  // ActQuant reads and writes separate buffers
      std::vector<float> in(x, x + n);
      fixed.apply(in.data(), 1, static_cast<int64_t>(n), out, threads);
    } else {
      fixed.apply(x, 1, static_cast<int64_t>(n), out, threads);
    }
    return;
  }
  QuantizeOptions o;
  o.threads = threads;
  fakequant_tensor(TensorView(x, {static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)}), out, s, o);
}

}  // namespace

OperandQuant OperandQuant::parse(std::string_view text, std::string_view where) {
  OperandQuant q;
  q.spec = std::string(text);
  std::string_view body = text;
  std::vector<std::string_view> options;
  if (const size_t plus = body.find('+'); plus != std::string_view::npos) {
    std::string_view rest = body.substr(plus + 1);
    body = body.substr(0, plus);
    while (!rest.empty()) {
      const size_t p = rest.find('+');
      options.push_back(rest.substr(0, p));
      rest = p == std::string_view::npos ? std::string_view{} : rest.substr(p + 1);
    }
  }
  const auto bad = [&](const std::string& why) {
    fail_usage(fmt::format("{}: invalid operand '{}': {}", where, text, why));
  };
  if (body.empty()) bad("empty");
  if (body == "none" || body == "float32") {
    q.kind = Kind::kNone;
  } else if (body.find('/') == std::string_view::npos && [&] {
               try {
                 q.cast = parse_format(body);
                 return true;
               } catch (const Error&) {
                 return false;
               }
             }()) {
    q.kind = Kind::kCast;
    // A cast is a hardware conversion: beyond the range it gives infinity
    // (NaN for formats without one), which loss scaling then sees.
    q.scheme.round = RoundOptions{};
    q.scheme.round.overflow = Overflow::kIeee;
  } else {
    try {
      q.scheme = parse_scheme(body);
    } catch (const Error& e) {
      bad(fmt::format("not a format or a scheme ({})", e.what()));
    }
    if (q.scheme.outliers.kind != OutlierPolicy::Kind::kNone) bad("outliers have no meaning for a GEMM operand");
    q.kind = Kind::kScheme;
  }
  for (std::string_view o : options) {
    if (o == "rht") {
      q.hadamard = true;
    } else if (o == "sr") {
      if (q.kind == Kind::kNone) bad("+sr needs a format or a scheme to round to");
      q.scheme.round.mode = Rounding::kStochastic;
    } else if (o == "delayed" || o.starts_with("delayed:")) {
      int n = 16;
      if (o.size() > 8) {
        const auto r = std::from_chars(o.data() + 8, o.data() + o.size(), n);
        if (r.ec != std::errc{} || r.ptr != o.data() + o.size() || n < 1 || n > 1 << 16) {
          bad("delayed:N takes a history of 1..65536 steps");
        }
      }
      if (q.kind != Kind::kScheme || q.scheme.gran.kind != Granularity::Kind::kTensor ||
          q.scheme.zero != ZeroPoint::kNone || q.scheme.two_level()) {
        bad("delayed scaling is for symmetric per-tensor schemes (float8_e4m3fn/tensor...)");
      }
      q.history = n;
    } else {
      bad(fmt::format("unknown option '+{}' (options: +delayed[:N], +sr, +rht)", o));
    }
  }
  return q;
}

bool OperandQuant::axis_free() const {
  if (hadamard) return false;
  if (kind != Kind::kScheme) return true;
  const Granularity& g = scheme.gran;
  return g.kind == Granularity::Kind::kTensor || (g.kind == Granularity::Kind::kBlock2D && g.rows == g.cols);
}

bool OperandQuant::round_for_product(const float* in, int64_t rows, int64_t cols, bool reduce_over_rows,
                                     uint64_t round_seed, uint64_t transform_seed, AmaxHistory* history, float* out,
                                     int threads) const {
  const auto n = static_cast<size_t>(rows * cols);
  if (n == 0) return false;
  // Axis-free roundings run on the operand as stored. Otherwise blocks and
  // the transform run along the reduction axis, so a reduction over rows
  // works on the transpose, which the product then takes as it is.
  if (!reduce_over_rows || axis_free()) {
    const float* src = in;
    if (hadamard) {
      std::copy(in, in + n, out);
      random_hadamard_rows(out, rows, cols, transform_seed, threads);
      src = out;
    }
    round_rows(*this, src, rows, cols, round_seed, history, out, threads);
    return false;
  }
  transpose(in, rows, cols, out, threads);
  if (hadamard) random_hadamard_rows(out, cols, rows, transform_seed, threads);
  round_rows(*this, out, cols, rows, round_seed, history, out, threads);
  return true;
}

void OperandQuant::apply(const float* in, int64_t rows, int64_t cols, bool reduce_over_rows, uint64_t round_seed,
                         uint64_t transform_seed, AmaxHistory* history, float* out, int threads) const {
  if (!round_for_product(in, rows, cols, reduce_over_rows, round_seed, transform_seed, history, out, threads)) return;
  std::vector<float> t(out, out + rows * cols);
  transpose(t.data(), cols, rows, out, threads);
}

void random_hadamard_rows(float* x, int64_t rows, int64_t cols, uint64_t seed, int threads) {
  const int64_t groups = cols / kHadamard;
  if (groups == 0) return;
  std::vector<float> sign(static_cast<size_t>(groups * kHadamard));
  for (size_t i = 0; i < sign.size(); ++i) sign[i] = (mix64(seed + 0x9E3779B97F4A7C15ull * (i + 1)) & 1) ? -1.0f : 1.0f;
  // Each row's groups are turned on their side, [16, groups], so that every
  // butterfly is one loop over the groups that the compiler vectorizes; the
  // arithmetic of each element is the same as one group at a time.
  parallel_chunks(rows, 16, threads, [&](int64_t b, int64_t e) {
    std::vector<float> t(static_cast<size_t>(groups * kHadamard));
    for (int64_t r = b; r < e; ++r) {
      float* v = x + r * cols;
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i = 0; i < kHadamard; ++i) t[i * groups + g] = v[g * kHadamard + i] * sign[g * kHadamard + i];
      }
      // The fast Walsh-Hadamard transform (Sylvester order), then 1/4 =
      // 1/sqrt(16), an exact scaling.
      for (int64_t h = 1; h < kHadamard; h *= 2) {
        for (int64_t i = 0; i < kHadamard; i += 2 * h) {
          for (int64_t j = i; j < i + h; ++j) {
            float* lo = t.data() + j * groups;
            float* hi = t.data() + (j + h) * groups;
            for (int64_t g = 0; g < groups; ++g) {
              const float a = lo[g], c = hi[g];
              lo[g] = a + c;
              hi[g] = a - c;
            }
          }
        }
      }
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i = 0; i < kHadamard; ++i) v[g * kHadamard + i] = t[i * groups + g] * 0.25f;
      }
    }
  });
}

}  // namespace lowbit

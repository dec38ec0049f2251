#include "lowbit/train/operand_quant.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/model/act_quant.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/train/mix64.h"

namespace lowbit {

namespace {

constexpr int64_t kHadamard = 16;


void transpose(const float* in, int64_t rows, int64_t cols, float* out, int threads) {
  constexpr int64_t kTile = 32;
  parallel_chunks((rows + kTile - 1) / kTile, 1, threads, [&](int64_t b, int64_t e) {
    for (int64_t rt = b; rt < e; ++rt) {
      const int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
        }
      }
    }
  });
}

float absmax(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;  // NaN never wins: a NaN operand is caught by the trainer's checks
  }
  return m;
}

// Rounds rows of x [rows, cols] in place along their columns.
void round_rows(const OperandQuant& q, float* x, int64_t rows, int64_t cols, uint64_t seed, AmaxHistory* history,
                int threads) {
  const auto n = static_cast<size_t>(rows * cols);
  if (q.kind == OperandQuant::Kind::kCast) {
    ArrayOptions o;
    o.round = q.scheme.round;
    o.round.seed = seed;
    o.threads = threads;
    fakequant_array(q.cast, x, x, n, o);
    return;
  }
  if (q.kind != OperandQuant::Kind::kScheme) return;
  Scheme s = q.scheme;
  s.round.seed = seed;
  if (q.history > 0) {
    if (!history) fail_internal("delayed scaling without its amax history");
    const float current = absmax(x, static_cast<int64_t>(n));
    float amax = current;
    if (!history->values.empty()) {
      amax = 0;
      for (float v : history->values) amax = v > amax ? v : amax;
    }
    if (static_cast<int64_t>(history->values.size()) < q.history) {
      history->values.push_back(current);
    } else {
      history->values[static_cast<size_t>(history->next)] = current;
    }
    history->next = (history->next + 1) % q.history;
    if (amax > 0 && std::isfinite(amax)) {
      // The history's amax maps onto the element's max: a static scale, as
      // the runtime's calibrated activations use (act_quant.h); values
      // beyond it saturate (or overflow, by the scheme's policy), as in TE.
      ActQuant fixed;
      fixed.scheme = s;
      fixed.static_amax = amax;
      std::vector<float> in(x, x + n);
      fixed.apply(in.data(), 1, static_cast<int64_t>(n), x, threads);
    }
    return;
  }
  QuantizeOptions o;
  o.threads = threads;
  fakequant_tensor(TensorView(x, {static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)}), x, s, o);
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

void OperandQuant::apply(const float* in, int64_t rows, int64_t cols, bool reduce_over_rows, uint64_t round_seed,
                         uint64_t transform_seed, AmaxHistory* history, float* out, int threads) const {
  const auto n = static_cast<size_t>(rows * cols);
  if (n == 0) return;
  // Elementwise casts and per-tensor scales do not care about the axis;
  // blocks and the transform run along the reduction axis, so a reduction
  // over rows works on the transpose.
  const bool along_rows = reduce_over_rows &&
                          (hadamard || (kind == Kind::kScheme && scheme.gran.kind != Granularity::Kind::kTensor));
  if (!along_rows) {
    std::copy(in, in + n, out);
    if (hadamard) random_hadamard_rows(out, rows, cols, transform_seed, threads);
    round_rows(*this, out, rows, cols, round_seed, history, threads);
    return;
  }
  std::vector<float> t(n);
  transpose(in, rows, cols, t.data(), threads);
  if (hadamard) random_hadamard_rows(t.data(), cols, rows, transform_seed, threads);
  round_rows(*this, t.data(), cols, rows, round_seed, history, threads);
  transpose(t.data(), cols, rows, out, threads);
}

void random_hadamard_rows(float* x, int64_t rows, int64_t cols, uint64_t seed, int threads) {
  const int64_t groups = cols / kHadamard;
  if (groups == 0) return;
  std::vector<float> sign(static_cast<size_t>(groups * kHadamard));
  for (size_t i = 0; i < sign.size(); ++i) sign[i] = (mix64(seed + 0x9E3779B97F4A7C15ull * (i + 1)) & 1) ? -1.0f : 1.0f;
  parallel_chunks(rows, 16, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        float* v = x + r * cols + g * kHadamard;
        const float* s = sign.data() + g * kHadamard;
        for (int64_t i = 0; i < kHadamard; ++i) v[i] *= s[i];
        // The fast Walsh-Hadamard transform (Sylvester order), then 1/4 =
        // 1/sqrt(16): exact in float, so the transform is orthogonal to
        // rounding.
        for (int64_t h = 1; h < kHadamard; h *= 2) {
          for (int64_t i = 0; i < kHadamard; i += 2 * h) {
            for (int64_t j = i; j < i + h; ++j) {
              const float a = v[j], c = v[j + h];
              v[j] = a + c;
              v[j + h] = a - c;
            }
          }
        }
        for (int64_t i = 0; i < kHadamard; ++i) v[i] *= 0.25f;
      }
    }
  });
}

}  // namespace lowbit

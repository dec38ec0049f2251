// GPTQ (gptq.h). Layout of the sweep: the weight is held transposed and
// permuted, wt[i] = column perm[i] of W (rows floats, contiguous), so that
// quantizing a column, its error and the updates within a lazy block are
// loops over contiguous rows, and the update after a block is one matrix
// product. Every row of W is independent inside a block (each row has its
// own error feedback), so a block runs as fixed chunks of rows on the pool;
// the update after it is matmul_tiled. Neither depends on the thread count.
#include "lowbit/methods/gptq.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/kernels/small_block_kernels.h"
#include "lowbit/kernels/cholesky.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/kernels/transpose.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/quant/block_codec.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scale_coder.h"

namespace lowbit {
namespace {

// Rows of W per task inside a lazy block: fixed, so results do not depend
// on the thread count (a chunk's rows see exactly the same operations
// whichever thread runs them, and rows never interact inside a block).
constexpr uint64_t kRowChunk = 256;
// Tiles of the update after each block (matmul_tiled).
constexpr int64_t kTileRows = 128, kTileCols = 256;

int thread_count(int t) { return t > 0 ? t : default_thread_count(); }

}  // namespace

void check_gptq(const Scheme& s, const GptqOptions& o) {
  if (s.round.mode == Rounding::kStochastic) {
    fail_usage("gptq feeds back the error of each rounding, which needs a deterministic element rounding; '" +
               s.spec() + "' rounds stochastically");
  }
  if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
    fail_usage("gptq does not take schemes with outliers ('" + s.spec() + "'); quantize without /outliers");
  }
  if (!(o.damp > 0 && o.damp <= 1)) fail_usage("gptq damp must be in (0, 1], not " + std::to_string(o.damp));
  if (o.block < 1) fail_usage("gptq block must be >= 1, not " + std::to_string(o.block));
}

namespace {

// Whether a group's parameters follow the sweep (the reference's default)
// or come from the original weights.
bool dynamic_groups(const Scheme& s, const GptqOptions& o) {
  return s.gran.kind == Granularity::Kind::kGroup && !o.act_order && !o.static_groups;
}

// What the sweep shares with its tasks.
struct Sweep {
  const BlockCodec& codec;
  const Scheme& scheme;
  uint64_t rows, cols;
  const std::vector<uint64_t>& perm;
  const float* u;            // [cols, cols] upper factor, in the permuted order
  float* wt;                 // [cols, rows] the weight, transposed and permuted
  float* qt;                 // [cols, rows] its quantized values
  std::vector<BlockParams>& params;  // per block of the grid
  bool dynamic;
  const float* importance;   // per column (wmse rules), or null
  float tensor_amax = 0;     // two-level schemes: the original weight's
  uint32_t tensor_scale_code = 0;  // its tensor scale, as stored
  float tensor_scale = 0;          // and as a value
  bool reciprocal = false;         // GptqOptions::reciprocal_tensor_scale
};

// Dynamic groups: the parameters of group `c / group` of rows [r0, r1)
// from the weights as they are now, by the scheme's own rule (quantize()
// of that slab: each row's group is one block of it).
void refresh_group(const Sweep& S, uint64_t c, uint64_t r0, uint64_t r1, std::vector<float>& slab) {
  const uint64_t group = S.scheme.gran.group, gl = std::min(group, S.cols - c), n = r1 - r0;
  slab.resize(n * gl);
  for (uint64_t k = 0; k < gl; ++k) {
    const float* src = S.wt + (c + k) * S.rows + r0;
    for (uint64_t r = 0; r < n; ++r) slab[r * gl + k] = src[r];
  }
  QuantizeOptions qo;
  qo.threads = 1;  // inside a pool task
  if (S.importance) {
    qo.importance = S.importance + c;
    qo.importance_count = gl;
    qo.importance_per_column = true;
  }
  // Two-level schemes: the slab's tensor scale is the whole weight's unless
  // the sweep has grown a weight past the original amax.
  qo.min_tensor_amax = S.tensor_amax;
  qo.reciprocal_tensor_scale = S.reciprocal;
  const std::vector<uint64_t> shape = {n, gl};
  const QuantizedTensor q = quantize({slab.data(), shape}, S.scheme, qo);
  BlockCodec slab_codec(S.scheme, shape);
  if (S.scheme.two_level()) slab_codec.set_tensor_scale_code(q.tensor_scale);
  std::vector<BlockParams> p = slab_codec.read(q);
  if (S.scheme.two_level() && q.tensor_scale != S.tensor_scale_code) {
    // The slab's amax outgrew the weight's: its block scales, as values,
    // are rounded again relative to the weight's tensor scale (with_scale
    // takes the block's own factor), at most the scale format's largest.
    const float top = static_cast<float>(S.scheme.scale_format.max_finite());
    for (BlockParams& b : p) {
      const float rel = S.tensor_scale > 0 ? std::min(b.value.scale / S.tensor_scale, top) : 0.0f;
      b = S.codec.with_scale(b, rel);
    }
  }
  const BlockGrid& g = S.codec.grid();
  for (uint64_t r = 0; r < n; ++r) S.params[g.block_of(r0 + r, c)] = p[r];
}

// One lazy block [i1, i2) for rows [r0, r1): quantize each column, keep its
// scaled error in et (row-chunk slice), update the block's later columns.
void sweep_rows(const Sweep& S, uint64_t i1, uint64_t i2, uint64_t r0, uint64_t r1, float* et) {
  const uint64_t n = r1 - r0, R = S.rows;
  const BlockGrid& g = S.codec.grid();
  std::vector<kernels::BlockScale> colp(n);
  std::vector<float> slab;
  uint64_t last_block = UINT64_MAX;
  for (uint64_t i = i1; i < i2; ++i) {
    const uint64_t c = S.perm[i];
    if (S.dynamic && c % S.scheme.gran.group == 0) {
      refresh_group(S, c, r0, r1, slab);
      last_block = UINT64_MAX;
    }
    // Column c's parameters for these rows: they change only where the
    // block of the chunk's first row changes (every block of a column
    // starts at the same column).
    const uint64_t b0 = g.block_of(r0, c);
    if (b0 != last_block) {
      for (uint64_t r = 0; r < n; ++r) colp[r] = S.params[g.block_of(r0 + r, c)].value;
      last_block = b0;
    }
    float* w = S.wt + i * R + r0;
    float* q = S.qt + i * R + r0;
    S.codec.quantize_elements(w, n, colp.data(), q);
    const float d = S.u[i * S.cols + i];
    float* e = et + (i - i1) * R + r0;
    // e = (q - w) / d: the negated error, so that every update below adds.
    for (uint64_t r = 0; r < n; ++r) e[r] = (q[r] - w[r]) / d;
    const float* urow = S.u + i * S.cols;
    for (uint64_t j = i + 1; j < i2; ++j) {
      const float f = urow[j];
      float* wj = S.wt + j * R + r0;
      for (uint64_t r = 0; r < n; ++r) wj[r] += f * e[r];
    }
  }
}

// The weight's Hessian in float64, with its dead columns handled.
std::vector<double> hessian(std::span<const float> gram, uint64_t cols, std::vector<uint8_t>& dead) {
  std::vector<double> h(cols * cols);
  for (uint64_t i = 0; i < cols; ++i) {
    for (uint64_t j = 0; j < cols; ++j) {
      // The lower triangle, mirrored: a file's matrix is symmetric, and a
      // caller's need only be filled below the diagonal.
      h[i * cols + j] = gram[std::max(i, j) * cols + std::min(i, j)];
    }
  }
  dead.assign(cols, 0);
  for (uint64_t i = 0; i < cols; ++i) {
    if (h[i * cols + i] == 0) {
      dead[i] = 1;
      h[i * cols + i] = 1;
    }
  }
  return h;
}

}  // namespace

double hessian_error(const float* w, const float* q, uint64_t rows, uint64_t cols, std::span<const float> gram,
                     int threads) {
  if (gram.size() != cols * cols) fail_internal("hessian_error: gram size");
  const int t = thread_count(threads);
  std::vector<float> e(rows * cols), eh(rows * cols);
  for (uint64_t k = 0; k < rows * cols; ++k) e[k] = w[k] - q[k];
  // E·H (H symmetric, so H stored [cols, cols] is its own transpose).
  matmul_nt(e.data(), static_cast<int64_t>(rows), static_cast<int64_t>(cols), static_cast<int64_t>(cols), gram.data(),
            static_cast<int64_t>(cols), nullptr, eh.data(), static_cast<int64_t>(cols), t);
  // Row sums in a fixed order.
  double total = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (uint64_t c = 0; c < cols; ++c) s += static_cast<double>(e[r * cols + c]) * eh[r * cols + c];
    total += s;
  }
  return total;
}

QuantizedTensor gptq_quantize(const TensorView& w, const Scheme& scheme, std::span<const float> gram,
                              const GptqOptions& opt, GptqStats* stats) {
  check_gptq(scheme, opt);
  const int threads = thread_count(opt.threads);
  const uint64_t rows = w.rows(), cols = w.cols(), numel = w.numel();
  if (gram.size() != cols * cols) {
    fail_input("gptq: the Hessian of a weight with " + std::to_string(cols) + " input columns must be " +
               std::to_string(cols) + " x " + std::to_string(cols) + ", not " + std::to_string(gram.size()) +
               " values (calibration statistics of another model?)");
  }
  if (kernels::max_abs_bits(gram.data(), gram.size()) >= 0x7f800000u) {
    fail_input("gptq: the Hessian holds NaN or infinite values");
  }
  if (kernels::max_abs_bits(w.data, numel) >= 0x7f800000u) {
    fail_input("gptq: the weight holds NaN or infinite values");
  }
  GptqStats st;
  const BlockCodec probe(scheme, w.shape);  // kUsage for schemes BlockCodec cannot take
  (void)probe;

  std::vector<uint8_t> dead;
  std::vector<double> h = hessian(gram, cols, dead);
  std::vector<float> w0(w.data, w.data + numel);
  for (uint64_t c = 0; c < cols; ++c) {
    if (!dead[c]) continue;
    ++st.dead_columns;
    for (uint64_t r = 0; r < rows; ++r) w0[r * cols + c] = 0;
  }
  std::vector<float> importance(cols);
  for (uint64_t c = 0; c < cols; ++c) importance[c] = gram[c * cols + c];

  // The plain rounding: the baseline of the report, the static parameters
  // and the fallback.
  QuantizeOptions qo;
  qo.threads = threads;
  qo.min_tensor_amax = opt.min_tensor_amax;
  qo.reciprocal_tensor_scale = opt.reciprocal_tensor_scale;
  if (scheme.rule == ScaleRule::kWmse) {
    qo.importance = importance.data();
    qo.importance_count = cols;
    qo.importance_per_column = true;
  }
  QuantizedTensor rtn = quantize({w0.data(), w.shape}, scheme, qo);
  std::vector<float> q_rtn(numel);
  dequantize(rtn, q_rtn.data(), threads);

  // Column order and the factor of the damped, permuted inverse Hessian.
  std::vector<uint64_t> perm(cols);
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](uint64_t a, uint64_t b) { return h[a * cols + a] > h[b * cols + b]; });
  }
  double mean_diag = 0;
  for (uint64_t i = 0; i < cols; ++i) mean_diag += h[i * cols + i];
  mean_diag /= static_cast<double>(std::max<uint64_t>(cols, 1));
  const auto t_factor = std::chrono::steady_clock::now();
  std::vector<double> f(cols * cols);
  bool factored = false;
  for (double damp = opt.damp;; damp *= 10) {
    damp = std::min(damp, 1.0);
    for (uint64_t i = 0; i < cols; ++i) {
      for (uint64_t j = 0; j < cols; ++j) f[i * cols + j] = h[perm[i] * cols + perm[j]];
      f[i * cols + i] += damp * mean_diag;
    }
    if (inverse_cholesky_upper(f.data(), static_cast<int64_t>(cols))) {
      factored = true;
      st.damp = damp;
      break;
    }
    if (damp >= 1.0) break;
    ++st.damp_retries;
  }
  if (!factored) {
    st.fallback = "the Hessian is not positive definite even with damping 1 (the mean of its diagonal added to it); "
                  "rounded without error feedback";
    if (opt.measure_error) st.rtn_error = st.gptq_error = hessian_error(w.data, q_rtn.data(), rows, cols, gram, threads);
    if (stats) *stats = st;
    return rtn;
  }
  const auto t_sweep = std::chrono::steady_clock::now();
  st.factor_seconds = std::chrono::duration<double>(t_sweep - t_factor).count();
  std::vector<float> u(cols * cols);
  for (uint64_t k = 0; k < cols * cols; ++k) u[k] = static_cast<float>(f[k]);
  std::vector<double>().swap(f);
  std::vector<double>().swap(h);

  // The sweep.
  BlockCodec codec(scheme, w.shape);
  if (scheme.two_level()) codec.set_tensor_scale_code(rtn.tensor_scale);
  std::vector<BlockParams> params = codec.read(rtn);
  std::vector<float> wt(numel), qt(numel);
  {
    std::vector<float> t(numel);
    transpose(w0.data(), static_cast<int64_t>(rows), static_cast<int64_t>(cols), t.data(), threads);
    for (uint64_t i = 0; i < cols; ++i) std::memcpy(wt.data() + i * rows, t.data() + perm[i] * rows, rows * 4);
  }
  Sweep S{codec, scheme, rows, cols, perm, u.data(), wt.data(), qt.data(), params, dynamic_groups(scheme, opt),
          scheme.rule == ScaleRule::kWmse ? importance.data() : nullptr};
  if (scheme.two_level()) {
    S.tensor_amax = std::max(std::bit_cast<float>(kernels::max_abs_bits(w0.data(), numel)), opt.min_tensor_amax);
    S.reciprocal = opt.reciprocal_tensor_scale;
    S.tensor_scale_code = rtn.tensor_scale;
    S.tensor_scale = ScaleCoder(*scheme.tensor_scale_format).decode(rtn.tensor_scale);
  }
  uint64_t B = static_cast<uint64_t>(opt.block);
  if (S.dynamic) B = std::max(scheme.gran.group, B / scheme.gran.group * scheme.gran.group);
  B = std::min(B, std::max<uint64_t>(cols, 1));
  std::vector<float> et(B * rows);
  const uint64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  for (uint64_t i1 = 0; i1 < cols; i1 += B) {
    const uint64_t i2 = std::min(cols, i1 + B);
    ThreadPool::global().parallel_for(chunks, threads, [&](size_t k) {
      const uint64_t r0 = k * kRowChunk, r1 = std::min(rows, r0 + kRowChunk);
      sweep_rows(S, i1, i2, r0, r1, et.data());
    });
    if (i2 < cols) {
      // wt[i2:] += U[i1:i2, i2:]ᵀ · et: the block's errors reach the rest.
      matmul_tiled(true, u.data() + i1 * cols + i2, static_cast<int64_t>(cols), false, et.data(),
                   static_cast<int64_t>(rows), static_cast<int64_t>(cols - i2), static_cast<int64_t>(rows),
                   static_cast<int64_t>(i2 - i1), wt.data() + i2 * rows, static_cast<int64_t>(rows), true, kTileRows,
                   kTileCols, threads);
    }
  }

  // Back to row-major, original column order.
  std::vector<float> q(numel);
  {
    std::vector<float> t(numel);
    for (uint64_t i = 0; i < cols; ++i) std::memcpy(t.data() + perm[i] * rows, qt.data() + i * rows, rows * 4);
    transpose(t.data(), static_cast<int64_t>(cols), static_cast<int64_t>(rows), q.data(), threads);
  }
  QuantizedTensor out = std::move(rtn);
  codec.encode({q.data(), w.shape}, params, threads, out);
  codec.write(params, out);
  out.scheme = scheme;
  // The codes of a value on the grid are that value again: check it, so a
  // stored tensor can never differ from what the sweep fed back.
  std::vector<float> back(numel);
  dequantize(out, back.data(), threads);
  if (std::memcmp(back.data(), q.data(), numel * 4) != 0) {
    fail_internal("gptq: the stored codes do not decode to the swept values for scheme " + scheme.spec());
  }
  st.sweep_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_sweep).count();
  if (opt.measure_error) {
    st.rtn_error = hessian_error(w.data, q_rtn.data(), rows, cols, gram, threads);
    st.gptq_error = hessian_error(w.data, q.data(), rows, cols, gram, threads);
  }
  if (stats) *stats = st;
  return out;
}

namespace {

// gptq as a registered method: the algorithm above, the output errors
// measured for the report. "gptq" has the default options; a spec such as
// "gptq:act_order,damp=0.05" a configured copy.
class Gptq final : public Method {
 public:
  Gptq() = default;
  Gptq(std::string spec, const GptqOptions& o) : spec_(std::move(spec)), opt_(o) {}
  const char* name() const noexcept override { return spec_.c_str(); }
  bool needs_calibration() const noexcept override { return true; }
  void check(const Scheme& s) const override { check_gptq(s, opt_); }
  std::unique_ptr<Method> configured(std::string_view options) const override {
    GptqOptions o;
    std::string canonical;
    size_t pos = 0;
    while (pos <= options.size()) {
      const size_t comma = std::min(options.find(',', pos), options.size());
      const std::string_view item = options.substr(pos, comma - pos);
      pos = comma + 1;
      const size_t eq = item.find('=');
      const std::string_view key = item.substr(0, eq), value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
      const auto number = [&](double lo, double hi) {
        char* end = nullptr;
        const std::string v(value);
        const double d = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !(d >= lo && d <= hi)) {
          fail_usage("gptq option " + std::string(key) + " takes a number in [" + fmt_number(lo) + ", " +
                     fmt_number(hi) + "], not '" + v + "'");
        }
        return d;
      };
      const auto flag = [&] {
        if (eq == std::string_view::npos || value == "1") return true;
        if (value == "0") return false;
        fail_usage("gptq option " + std::string(key) + " takes 0 or 1, not '" + std::string(value) + "'");
      };
      if (key == "act_order") {
        o.act_order = flag();
      } else if (key == "static_groups") {
        o.static_groups = flag();
      } else if (key == "damp" && eq != std::string_view::npos) {
        o.damp = number(1e-6, 1);
      } else if (key == "block" && eq != std::string_view::npos) {
        o.block = static_cast<int>(number(1, 1 << 20));
        if (o.block != number(1, 1 << 20)) fail_usage("gptq option block takes a whole number of columns");
      } else {
        fail_usage("unknown gptq option '" + std::string(item) +
                   "'; valid: act_order[=0|1] (default 1), static_groups[=0|1] (default 0), damp=<relative "
                   "damping, default 0.01>, block=<columns per lazy batch, default 128> (e.g. "
                   "gptq:act_order=0,damp=0.05)");
      }
    }
    return std::make_unique<Gptq>("gptq:" + std::string(options), o);
  }
  using Method::quantize;
  QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats* calib, const QuantizeOptions& base,
                           MethodReport* report) const override {
    if (!calib || calib->gram.empty()) {
      fail_usage("method gptq needs the Gram matrix of each weight's input: record it with `lowbit calibrate MODEL "
                 "--text CALIB.txt --gram -o calib.gguf` and pass --calib calib.gguf");
    }
    GptqOptions o = opt_;
    o.threads = base.threads;
    o.min_tensor_amax = base.min_tensor_amax;
    o.reciprocal_tensor_scale = base.reciprocal_tensor_scale;
    o.measure_error = report != nullptr;
    GptqStats st;
    QuantizedTensor q = gptq_quantize(w, s, calib->gram, o, &st);
    if (report) {
      report->calib_error_rtn = st.rtn_error;
      report->calib_error = st.gptq_error;
      report->note = st.fallback;
      if (st.fallback.empty() && st.damp_retries > 0) {
        report->note = "the Hessian needed damping " + fmt_number(st.damp) + " to factor";
      }
    }
    return q;
  }

 private:
  static std::string fmt_number(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }
  std::string spec_ = "gptq";
  GptqOptions opt_;
};

}  // namespace

const Method& gptq_method() {
  static const Gptq m;
  return m;
}

}  // namespace lowbit

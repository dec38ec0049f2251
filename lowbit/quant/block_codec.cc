#include "lowbit/quant/block_codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// Rows per encode task: a fixed split, so no result depends on threads.
constexpr uint64_t kTaskElements = 1 << 15;

}  // namespace

BlockCodec::BlockCodec(const Scheme& s, std::vector<uint64_t> shape)
    : s_(s),
      shape_(std::move(shape)),
      grid_(BlockGrid::make(shape_, s.gran)),
      // As the quantizer plans it: asym codes round in a signed integer
      // format one bit wider, so that the clamp, not the format, bounds them.
      elem_(make_kernel_plan(s.zero == ZeroPoint::kNone ? s.element : make_int_format(s.element.bits + 1, true, false),
                             s.round)),
      spec_{s.zero != ZeroPoint::kNone, static_cast<float>(s.element_max())},
      sc_(s.scale_format),
      code_format_(s.code_format()),
      zero_format_(s.zero == ZeroPoint::kFloat ? s.scale_format : s.code_format()) {
  if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
    fail_usage("'" + s.spec() + "' takes outliers out of the tensor first; a BlockCodec works on the dense rest");
  }
}

void BlockCodec::set_tensor_scale_code(uint32_t code) {
  if (s_.two_level()) tensor_scale_ = ScaleCoder(*s_.tensor_scale_format).decode(code);
}

BlockParams BlockCodec::from_codes(uint32_t scale_code, uint32_t zero_code) const {
  return decode_params(scale_code, zero_code, tensor_scale_);
}

BlockParams BlockCodec::decode_params(uint32_t scale_code, uint32_t zero_code, float tensor_scale) const {
  BlockParams p;
  p.scale_code = scale_code;
  p.zero_code = zero_code;
  const float v = sc_.decode(scale_code);
  const float eff = s_.two_level() ? v * tensor_scale : v;
  if (!std::isfinite(eff)) {
    p.value = kernels::BlockScale{kNaN, kNaN, 0, 0};
    return p;
  }
  p.value.scale = eff;
  p.value.inv = eff == 0.0f ? 0.0f : 1.0f / eff;
  if (s_.zero == ZeroPoint::kInteger) p.value.z_post = static_cast<float>(zero_code);
  if (s_.zero == ZeroPoint::kFloat) p.value.z_in = sc_.decode(zero_code);
  return p;
}

BlockParams BlockCodec::from_values(float scale, float zero) const { return with_zero(with_scale({}, scale), zero); }

BlockParams BlockCodec::with_scale(const BlockParams& p, float scale) const {
  float val = 0;
  uint32_t code = 0;
  sc_.round(&scale, 1, &val, &code);
  BlockParams q = p;
  q.scale_code = code;
  const float eff = s_.two_level() ? val * tensor_scale_ : val;
  // A scale the format cannot hold stays visible as such (not as the NaN
  // block): the caller decides.
  q.value.scale = eff;
  q.value.inv = eff == 0.0f || !std::isfinite(eff) ? 0.0f : 1.0f / eff;
  return q;
}

BlockParams BlockCodec::with_zero(const BlockParams& p, float zero) const {
  BlockParams q = p;
  if (s_.zero == ZeroPoint::kInteger) {
    // Rounded to the nearest code, as quantize() rounds -lo / scale.
    q.value.z_post = std::clamp(std::nearbyint(zero), 0.0f, spec_.qmax);
    q.zero_code = static_cast<uint32_t>(q.value.z_post);
  } else if (s_.zero == ZeroPoint::kFloat) {
    sc_.round(&zero, 1, &q.value.z_in, &q.zero_code);
  }
  return q;
}

std::vector<BlockParams> BlockCodec::read(const QuantizedTensor& q) const {
  const uint64_t nb = grid_.num_blocks;
  if (q.shape != shape_) fail_input("BlockCodec::read: the quantized tensor has another shape");
  const std::vector<uint32_t> scodes = load_codes(s_.scale_format, q.scales, nb);
  std::vector<uint32_t> zcodes(nb, 0);
  if (s_.zero != ZeroPoint::kNone) zcodes = load_codes(zero_format_, q.zeros, nb);
  const float ts = s_.two_level() ? ScaleCoder(*s_.tensor_scale_format).decode(q.tensor_scale) : 1.0f;
  std::vector<BlockParams> out(nb);
  for (uint64_t b = 0; b < nb; ++b) out[b] = decode_params(scodes[b], zcodes[b], ts);
  return out;
}

void BlockCodec::write(std::span<const BlockParams> p, QuantizedTensor& q) const {
  if (p.size() != grid_.num_blocks) fail_internal("BlockCodec::write: one parameter set per block");
  std::vector<uint32_t> scodes(p.size()), zcodes(p.size());
  for (size_t b = 0; b < p.size(); ++b) {
    scodes[b] = p[b].scale_code;
    zcodes[b] = p[b].zero_code;
  }
  q.scales = store_codes(s_.scale_format, scodes);
  q.zeros.clear();
  if (s_.zero != ZeroPoint::kNone) q.zeros = store_codes(zero_format_, zcodes);
}

void BlockCodec::encode(const TensorView& x, std::span<const BlockParams> p, int threads, QuantizedTensor& q) const {
  if (p.size() != grid_.num_blocks) fail_internal("BlockCodec::encode: one parameter set per block");
  if (x.shape != shape_) fail_internal("BlockCodec::encode: the tensor has another shape");
  const BlockGrid& g = grid_;
  const uint64_t n = g.numel();
  q.scheme = s_;
  q.shape = shape_;
  std::vector<kernels::BlockScale> values(p.size());
  for (size_t b = 0; b < p.size(); ++b) values[b] = p[b].value;
  std::vector<uint32_t> codes(n);
  const uint64_t rows_per_task = std::max<uint64_t>(1, kTaskElements / std::max<uint64_t>(1, g.cols));
  const uint64_t tasks = g.rows == 0 ? 0 : (g.rows + rows_per_task - 1) / rows_per_task;
  ThreadPool::global().parallel_for(tasks, threads > 0 ? threads : default_thread_count(), [&](size_t t) {
    const uint64_t r1 = std::min(g.rows, (t + 1) * rows_per_task);
    for (uint64_t r = t * rows_per_task; r < r1; ++r) {
      const uint64_t base = r * g.cols;
      kernels::ScaledOut row;
      row.layout = kernels::CodeLayout::kWord;
      row.codes = codes.data() + base;
      // A row's blocks are consecutive in the grid's block order.
      const kernels::BlockScale* bp = values.data() + g.block_row(r) * g.blocks_per_row;
      split_at_index_blocks(0, g.cols, base, [&](uint64_t j0, uint64_t j1) {
        kernels::scaled_row(elem_, spec_, x.data + base, j0, j1, g.group, bp, base, row);
      });
    }
  });
  q.codes = store_codes(code_format_, codes);
}

double BlockCodec::block_sq_error(const float* x, uint64_t n, const BlockParams& p, uint64_t first_index) const {
  double err = 0;
  kernels::ScaledOut out;
  out.block_err = &err;
  // The kernel keeps the high half of the element index fixed per call.
  split_at_index_blocks(0, n, first_index, [&](uint64_t j0, uint64_t j1) {
    kernels::scaled_row(elem_, spec_, x + j0, 0, j1 - j0, j1 - j0, &p.value, first_index + j0, out);
  });
  return err;
}

void BlockCodec::quantize_run(const float* x, uint64_t n, const BlockParams& p, uint64_t first_index, float* x_hat,
                              uint32_t* codes) const {
  kernels::ScaledOut out;
  out.deq = x_hat;
  if (codes) {
    out.layout = kernels::CodeLayout::kWord;
    out.codes = codes;
  }
  split_at_index_blocks(0, n, first_index, [&](uint64_t j0, uint64_t j1) {
    kernels::ScaledOut part = out;
    part.deq = x_hat + j0;
    if (codes) part.codes = codes + j0;
    kernels::scaled_row(elem_, spec_, x + j0, 0, j1 - j0, j1 - j0, &p.value, first_index + j0, part);
  });
}

void BlockCodec::quantize_elements(const float* x, uint64_t n, const kernels::BlockScale* params,
                                   float* x_hat) const {
  if (s_.round.mode == Rounding::kStochastic) {
    fail_usage("quantizing elements of different blocks needs a deterministic rounding; " + s_.spec() +
               " rounds stochastically");
  }
  kernels::ScaledOut out;
  out.deq = x_hat;
  // A group of 1: element i takes params[i]. The index only feeds
  // stochastic rounding, refused above.
  kernels::scaled_row(elem_, spec_, x, 0, n, 1, params, 0, out);
}

}  // namespace lowbit

// error_sums (error_kernels.h), compiled once per Highway target: 16 pairs
// per step, as 16 / L double vectors of L lanes, so that vector v lane l
// always holds partial v * L + l whatever L is.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/error_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first.
#include "lowbit/kernels/error_kernels.h"

#include <algorithm>
#include <cmath>

// Target-independent parts: once, although foreach_target includes this
// file once per target.
#ifndef LOWBIT_KERNELS_ERROR_KERNELS_COMMON_
#define LOWBIT_KERNELS_ERROR_KERNELS_COMMON_
namespace lowbit::kernels {
namespace {

constexpr size_t kPartials = 16;

// The 16 partials of each sum, and the tree that ends them.
struct Partials {
  double x2[kPartials] = {}, y2[kPartials] = {}, xy[kPartials] = {}, e2[kPartials] = {};
};

double tree(double* p) {
  for (size_t w = kPartials / 2; w >= 1; w /= 2) {
    for (size_t k = 0; k < w; ++k) p[k] += p[k + w];
  }
  return p[0];
}

// Adds pairs [0, n) of a chunk whose pair 0 is partial `first`.
void add_scalar(const float* x, const float* y, size_t n, size_t first, Partials& p, ErrorSums& s) {
  for (size_t i = 0; i < n; ++i) {
    const size_t k = (first + i) % kPartials;
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      ++s.nonfinite;
      s.lost += std::isfinite(x[i]);
      continue;
    }
    const double a = x[i], b = y[i], d = b - a;
    p.x2[k] += a * a;
    p.y2[k] += b * b;
    p.xy[k] += a * b;
    p.e2[k] += d * d;
    s.max_abs_err = std::max(s.max_abs_err, std::fabs(d));
  }
}

void finish(Partials& p, ErrorSums& s) {
  s.sum_x2 = tree(p.x2);
  s.sum_y2 = tree(p.y2);
  s.sum_xy = tree(p.xy);
  s.sum_err2 = tree(p.e2);
}

}  // namespace
}  // namespace lowbit::kernels
#endif  // LOWBIT_KERNELS_ERROR_KERNELS_COMMON_

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_HAVE_FLOAT64

// Up to 16 double lanes per vector: one step covers whole vectors.
using DD = hn::CappedTag<double, kPartials>;
using DH = hn::Rebind<float, DD>;  // the float halves that widen into DD

template <size_t kV>
HWY_INLINE void Steps(const float* HWY_RESTRICT x, const float* HWY_RESTRICT y, size_t steps, Partials& p,
                      ErrorSums& s) {
  const DD dd;
  const DH dh;
  const size_t L = hn::Lanes(dd);
  using V = hn::Vec<DD>;
  V x2[kV], y2[kV], xy[kV], e2[kV];
  for (size_t v = 0; v < kV; ++v) x2[v] = y2[v] = xy[v] = e2[v] = hn::Zero(dd);
  V emax = hn::Zero(dd);
  size_t bad = 0, lost = 0;
  for (size_t t = 0; t < steps; ++t) {
    const float* xs = x + t * kPartials;
    const float* ys = y + t * kPartials;
    for (size_t v = 0; v < kV; ++v) {
      V a = hn::PromoteTo(dd, hn::LoadU(dh, xs + v * L));
      V b = hn::PromoteTo(dd, hn::LoadU(dh, ys + v * L));
      const auto ok = hn::And(hn::IsFinite(a), hn::IsFinite(b));
      if (HWY_UNLIKELY(!hn::AllTrue(dd, ok))) {
        bad += hn::CountTrue(dd, hn::Not(ok));
        lost += hn::CountTrue(dd, hn::AndNot(hn::IsFinite(b), hn::IsFinite(a)));
        a = hn::IfThenElseZero(ok, a);
        b = hn::IfThenElseZero(ok, b);
      }
      const V d = hn::Sub(b, a);
      x2[v] = hn::Add(x2[v], hn::Mul(a, a));
      y2[v] = hn::Add(y2[v], hn::Mul(b, b));
      xy[v] = hn::Add(xy[v], hn::Mul(a, b));
      e2[v] = hn::Add(e2[v], hn::Mul(d, d));
      emax = hn::Max(emax, hn::Abs(d));
    }
  }
  for (size_t v = 0; v < kV; ++v) {
    hn::StoreU(x2[v], dd, p.x2 + v * L);
    hn::StoreU(y2[v], dd, p.y2 + v * L);
    hn::StoreU(xy[v], dd, p.xy + v * L);
    hn::StoreU(e2[v], dd, p.e2 + v * L);
  }
  s.nonfinite += bad;
  s.lost += lost;
  s.max_abs_err = std::max(s.max_abs_err, hn::GetLane(hn::MaxOfLanes(dd, emax)));
}

ErrorSums ErrorSumsSimd(const float* x, const float* y, size_t n) {
  ErrorSums s;
  Partials p;
  const size_t steps = n / kPartials, L = hn::Lanes(DD());
  // L is a power of two up to 16 on every target: whole vectors per step.
  switch (kPartials / L) {
    case 1: Steps<1>(x, y, steps, p, s); break;
    case 2: Steps<2>(x, y, steps, p, s); break;
    case 4: Steps<4>(x, y, steps, p, s); break;
    case 8: Steps<8>(x, y, steps, p, s); break;
    default: Steps<16>(x, y, steps, p, s); break;
  }
  add_scalar(x + steps * kPartials, y + steps * kPartials, n - steps * kPartials, 0, p, s);
  finish(p, s);
  return s;
}

#else  // no double lanes: the reference order in scalar code

ErrorSums ErrorSumsSimd(const float* x, const float* y, size_t n) { return error_sums_reference(x, y, n); }

#endif

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(ErrorSumsSimd);

ErrorSums error_sums(const float* x, const float* x_hat, size_t n) {
  return HWY_DYNAMIC_DISPATCH(ErrorSumsSimd)(x, x_hat, n);
}

ErrorSums error_sums_reference(const float* x, const float* x_hat, size_t n) {
  ErrorSums s;
  Partials p;
  add_scalar(x, x_hat, n, 0, p, s);
  finish(p, s);
  return s;
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE

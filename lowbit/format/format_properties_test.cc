// Property tests over random formats: every parametric spec string
// (fp:eXmY with any bias and special-value convention, int:B, posit:N:ES)
// rounds with the defining properties of each mode, and the SIMD kernels
// agree with the scalar model bit for bit on it. RapidCheck draws the
// formats and values and shrinks any counterexample to a small one.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <bit>
#include <cmath>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

// A random parametric format spec that the registry accepts.
rc::Gen<std::string> gen_spec() {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::tuple(rc::gen::inRange(2, 9), rc::gen::inRange(0, 11), rc::gen::inRange(-4, 5),
                                  rc::gen::element<std::string>("ieee", "fn", "fnuz", "finite")),
                   [](const std::tuple<int, int, int, std::string>& t) {
                     const auto& [e, m, dbias, sp] = t;
                     const int bias = std::max(0, (1 << (e - 1)) - 1 + dbias);
                     return "fp:e" + std::to_string(e) + "m" + std::to_string(m) + ":bias=" + std::to_string(bias) +
                            ":specials=" + sp;
                   }),
      rc::gen::map(rc::gen::tuple(rc::gen::inRange(2, 17), rc::gen::element(0, 1, 2)),
                   [](const std::tuple<int, int>& t) {
                     const auto& [b, kind] = t;
                     return "int:" + std::to_string(b) + (kind == 1 ? ":unsigned" : kind == 2 ? ":narrow" : "");
                   }),
      rc::gen::map(rc::gen::tuple(rc::gen::inRange(3, 17), rc::gen::inRange(0, 3)), [](const std::tuple<int, int>& t) {
        return "posit:" + std::to_string(std::get<0>(t)) + ":" + std::to_string(std::get<1>(t));
      }));
}

// A value spread over many binades around the format's range, both signs.
rc::Gen<float> gen_value() {
  return rc::gen::map(rc::gen::tuple(rc::gen::inRange(-40, 20), rc::gen::inRange(0, 1 << 24), rc::gen::arbitrary<bool>()),
                      [](const std::tuple<int, int, bool>& t) {
                        const auto& [e, m, neg] = t;
                        const float v = std::ldexp(1.0f + static_cast<float>(m) / (1 << 24), e);
                        return neg ? -v : v;
                      });
}

// Values that matter for this format: its own values, the exact midpoints
// between neighbours (the ties), a float32 step either side of those, and
// arbitrary values.
rc::Gen<float> gen_value_for(const Codec& c) {
  const uint32_t codes = c.format().bits <= 16 ? c.format().num_codes() : 0;
  if (codes == 0) return gen_value();
  return rc::gen::oneOf(
      gen_value(),
      rc::gen::map(rc::gen::tuple(rc::gen::inRange<uint32_t>(0, codes), rc::gen::inRange(0, 5)),
                   [&c](const std::tuple<uint32_t, int>& t) {
                     const auto& [code, what] = t;
                     const double v = c.decode(code);
                     if (!std::isfinite(v)) return 0.0f;
                     const double next = c.fakequant(std::nextafter(static_cast<float>(v), INFINITY), {Rounding::kUp});
                     const float mid = static_cast<float>(0.5 * (v + (std::isfinite(next) ? next : v)));
                     switch (what) {
                       case 0: return static_cast<float>(v);
                       case 1: return mid;
                       case 2: return std::nextafter(mid, INFINITY);
                       case 3: return std::nextafter(mid, -INFINITY);
                       default: return -mid;
                     }
                   }));
}

bool try_parse(const std::string& spec, Format* f) {
  try {
    *f = parse_format(spec);
    return true;
  } catch (const Error&) {
    return false;  // e.g. a bias that puts values outside float32
  }
}

RC_GTEST_PROP(FormatProperties, DirectedModesBracketAndNearestPicksTheNearer, ()) {
  const std::string spec = *gen_spec();
  Format f;
  RC_PRE(try_parse(spec, &f));
  const Codec c(f);
  const float x = *gen_value_for(c);
  RC_PRE(x <= c.max_finite() && x >= c.lowest_finite());
  RC_PRE(f.family != Family::kPosit || std::fabs(x) >= f.min_subnormal());
  const double lo = c.fakequant(x, {Rounding::kDown}), hi = c.fakequant(x, {Rounding::kUp});
  RC_ASSERT(lo <= x);
  RC_ASSERT(hi >= x);
  const double q = c.fakequant(x, {Rounding::kNearestEven});
  RC_ASSERT(q == lo || q == hi);
  if (f.family != Family::kPosit) RC_ASSERT(std::fabs(q - x) <= std::fabs((q == lo ? hi : lo) - x));
  for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero, Rounding::kOdd}) {
    const uint32_t code = c.encode(x, {r});
    RC_ASSERT(c.encode(c.decode(code), {r}) == code);  // idempotent
  }
}

RC_GTEST_PROP(FormatProperties, EncodeIsMonotonic, ()) {
  const std::string spec = *gen_spec();
  Format f;
  RC_PRE(try_parse(spec, &f));
  const Codec c(f);
  float a = *gen_value_for(c), b = *gen_value_for(c);
  if (a > b) std::swap(a, b);
  for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero, Rounding::kUp,
                     Rounding::kDown, Rounding::kOdd}) {
    for (Overflow ov : {Overflow::kSaturate, Overflow::kIeee}) {
      const double qa = c.fakequant(a, {r, ov}), qb = c.fakequant(b, {r, ov});
      if (std::isnan(qa) || std::isnan(qb)) continue;
      RC_ASSERT(qa <= qb);
    }
  }
}

RC_GTEST_PROP(FormatProperties, KernelsMatchScalarModel, ()) {
  const std::string spec = *gen_spec();
  Format f;
  RC_PRE(try_parse(spec, &f));
  const Codec c(f);
  const auto values = *rc::gen::container<std::vector<float>>(37, gen_value_for(c));
  const Rounding mode = *rc::gen::element(Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                                          Rounding::kUp, Rounding::kDown, Rounding::kOdd, Rounding::kStochastic);
  const Overflow ov = *rc::gen::element(Overflow::kSaturate, Overflow::kIeee);
  ArrayOptions opt;
  opt.round = {mode, ov, *rc::gen::inRange(1, 33), *rc::gen::arbitrary<uint64_t>()};
  opt.index_offset = *rc::gen::inRange<uint64_t>(0, 1000);
  std::vector<float> out(values.size());
  fakequant_array(f, values.data(), out.data(), values.size(), opt);
  for (size_t i = 0; i < values.size(); ++i) {
    const float want = static_cast<float>(c.fakequant(values[i], opt.round, opt.index_offset + i));
    RC_ASSERT(std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(want) ||
              (std::isnan(out[i]) && std::isnan(want) && std::signbit(out[i]) == std::signbit(want)));
  }
}

}  // namespace
}  // namespace lowbit

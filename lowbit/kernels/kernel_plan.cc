#include "lowbit/kernels/kernel_plan.h"

#include <bit>
#include <cmath>
#include <map>
#include <mutex>

#include "lowbit/format/families.h"

namespace lowbit {

uint32_t float_bits_of(double v) {
  if (std::isnan(v)) return 0x7fc00000u | (std::signbit(v) ? 0x80000000u : 0u);
  return std::bit_cast<uint32_t>(static_cast<float>(v));
}

namespace {

std::shared_ptr<const std::vector<uint8_t>> cached_valid_codes(const Codec& c) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<uint8_t>>> cache;
  const std::string key = c.format().key();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto valid = std::make_shared<std::vector<uint8_t>>(c.format().num_codes());
  bool all = true;
  for (uint32_t code = 0; code < valid->size(); ++code) {
    (*valid)[code] = c.is_valid_code(code) ? 1 : 0;
    all = all && (*valid)[code];
  }
  std::shared_ptr<const std::vector<uint8_t>> result;
  if (!all) result = std::move(valid);
  cache[key] = result;
  return result;
}

std::shared_ptr<const std::vector<uint32_t>> cached_decode_lut(const Codec& c) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<uint32_t>>> cache;
  const std::string key = c.format().key();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[key];
  if (!slot) {
    auto lut = std::make_shared<std::vector<uint32_t>>(c.format().num_codes());
    for (uint32_t code = 0; code < lut->size(); ++code) (*lut)[code] = float_bits_of(c.decode(code));
    slot = std::move(lut);
  }
  return slot;
}

bool is_pow2(double v) { return v > 0 && std::ldexp(1.0, std::ilogb(v)) == v; }

// Fills s_tab/code_tab for posits and HiFloat8 from the scalar model's value
// table. A binade gets a shift only when its values are exactly the grid
// that shift describes, with consecutive codes and arithmetic midpoints;
// anything else is left to the scalar fallback.
void build_binade_table(KernelPlan& p) {
  const Codec& c = *p.codec;
  const auto& entries = c.table()->entries();
  std::vector<ValueTable::Entry> pos;
  uint32_t zero_code = 0;
  for (const auto& e : entries) {
    if (e.value > 0) pos.push_back(e);
    if (e.value == 0) zero_code = e.code;
  }
  // The virtual neighbour past max joins the grid of the top binade.
  if (c.has_virtual_overflow()) pos.push_back({c.virtual_max(), c.max_code() + 1});
  const double vmin = pos.front().value;
  const int log2_vmin = std::ilogb(vmin);
  p.s_tab.fill(KernelPlan::kFallback);
  p.code_tab.fill(0);
  for (int eb = 0; eb < 255; ++eb) {
    const int e = eb == 0 ? -126 : eb - 127;  // float32 subnormals share Eb = 0
    const double lo = eb == 0 ? 0.0 : std::ldexp(1.0, e);
    const double hi = std::ldexp(1.0, e + 1);
    if (hi <= vmin) {
      // Entirely below the smallest positive value: rounds to 0 or vmin.
      if (is_pow2(vmin) && c.format().has_zero()) {
        p.s_tab[eb] = 23 + log2_vmin - (eb == 0 ? -126 : e);
        p.code_tab[eb] = zero_code;
      }
      continue;
    }
    if (eb == 0) continue;
    if (lo > c.max_finite()) {
      // Entirely past max: r = |x| exactly (s = 0) and the lane overflows.
      p.s_tab[eb] = 0;
      continue;
    }
    size_t i = 0;
    while (i < pos.size() && pos[i].value < lo) ++i;
    size_t j = i;
    while (j < pos.size() && pos[j].value < hi) ++j;
    const size_t count = j - i;
    // At most the binade's own bottom value: every x in it has the same
    // neighbours (posit regime regions). Record them for the SIMD path.
    const auto sparse = [&] {
      if (count > 1 || (count == 1 && pos[i].value != lo) || (count == 0 && i == 0) ||
          c.format().family != Family::kPosit) {
        return;
      }
      const auto& below = count == 1 ? pos[i] : pos[i - 1];
      const auto& above = pos[j < pos.size() ? j : pos.size() - 1];
      p.s_tab[eb] = KernelPlan::kSparse;
      p.sp_lo[eb] = float_bits_of(below.value);
      p.sp_hi[eb] = float_bits_of(above.value);
      p.sp_lo_code[eb] = below.code;
      p.sp_hi_code[eb] = above.code;
      p.sp_mid[eb] = above.value > below.value
                         ? float_bits_of(c.bracket(0.5 * (below.value + above.value)).mid)
                         : p.sp_lo[eb];
    };
    if (count == 0 || pos[i].value != lo || (count & (count - 1)) != 0) {
      sparse();
      continue;
    }
    // The successor must be 2^(e+1) itself, or the binade is sparse; the
    // top binade ends at the virtual overflow value, past which every lane
    // overflows anyway.
    const bool top = j == pos.size() && c.has_virtual_overflow();
    if (!top && (j >= pos.size() || pos[j].value != hi)) {
      sparse();
      continue;
    }
    const int m = std::countr_zero(count);
    const double q = std::ldexp(1.0, e - m);
    bool ok = true;
    for (size_t k = 0; k < count && ok; ++k) {
      ok = pos[i + k].value == lo + static_cast<double>(k) * q &&
           pos[i + k].code == pos[i].code + k;
      // Midpoints must be arithmetic (posits define them on the bit string).
      if (ok && pos[i + k].value < c.max_finite()) {
        ok = c.bracket(pos[i + k].value + q / 4).mid == pos[i + k].value + q / 2;
      }
    }
    if (!ok) {
      sparse();
      continue;
    }
    p.s_tab[eb] = 23 - m;
    p.code_tab[eb] = pos[i].code - (1u << m);
  }
}

void build_codebook(KernelPlan& p) {
  const Codec& c = *p.codec;
  for (const auto& e : c.table()->entries()) {
    p.cb_values.push_back(static_cast<float>(e.value));
    p.cb_codes.push_back(e.code);
  }
  const size_t n = p.cb_values.size();
  while (p.cb_size_pow2 < n) p.cb_size_pow2 <<= 1;
  for (size_t i = 0; i + 1 < n; ++i) {
    const double a = p.cb_values[i], b = p.cb_values[i + 1];
    const double mid = 0.5 * (a + b);
    float f = static_cast<float>(mid);
    if (f > mid) f = std::nextafter(f, -INFINITY);
    p.cb_mid_floor.push_back(f);
    // The tie and toward-zero decisions come from the shared rule itself.
    Bracket br;
    br.lo = a;
    br.hi = b;
    br.lo_code = p.cb_codes[i];
    br.hi_code = p.cb_codes[i + 1];
    br.mid = mid;
    uint32_t flags = 0;
    if (f == mid) flags |= KernelPlan::kPairMidExact;
    if (pick_hi(br, mid, {Rounding::kNearestEven}, 0)) flags |= KernelPlan::kPairRneTieHi;
    if (pick_hi(br, mid, {Rounding::kNearestAway}, 0)) flags |= KernelPlan::kPairRnaTieHi;
    if (pick_hi(br, mid, {Rounding::kTowardZero}, 0)) flags |= KernelPlan::kPairRtzHi;
    if (pick_hi(br, mid, {Rounding::kOdd}, 0)) flags |= KernelPlan::kPairOddHi;
    p.cb_pair_flags.push_back(flags);
  }
  p.cb_mid_floor.push_back(p.cb_values.back());
  p.cb_pair_flags.push_back(0);
}

}  // namespace

KernelPlan::KernelPlan(const Format& f, const RoundOptions& o)
    : codec(std::make_shared<Codec>(f)), opt(o) {
  const Codec& c = *codec;
  if (f.bits <= 16) {
    decode_lut = cached_decode_lut(c);
    valid_codes = cached_valid_codes(c);
  }
  code_mask = f.bits >= 32 ? 0xffffffffu : ((1u << f.bits) - 1);
  negative_zero = f.has_negative_zero();
  for (int s = 0; s < 2; ++s) {
    const bool neg = s == 1;
    nan_code[s] = c.nan_result(neg);
    inf_code[s] = c.inf_result(neg);
    clamp_code[s] = neg ? c.lowest_code() : c.max_code();
    const bool ieee_ovf = o.overflow == Overflow::kIeee && c.has_virtual_overflow();
    away_code[s] = ieee_ovf ? c.ieee_overflow_code(neg) : clamp_code[s];
    if (!f.is_signed && neg) {
      clamp_code[s] = 0;
      away_code[s] = (o.overflow == Overflow::kIeee && f.has_nan()) ? c.nan_result(false) : 0u;
    }
    nan_bits[s] = float_bits_of(c.decode(nan_code[s]));
    inf_bits[s] = float_bits_of(c.decode(inf_code[s]));
    clamp_bits[s] = float_bits_of(c.decode(clamp_code[s]));
    away_bits[s] = float_bits_of(c.decode(away_code[s]));
  }
  max_mag_bits[0] = float_bits_of(c.max_finite());
  max_mag_bits[1] = f.is_signed ? float_bits_of(-c.lowest_finite()) : 0u;

  switch (f.family) {
    case Family::kMinifloat: {
      // E8M0 (no subnormals), and formats whose smallest normal is itself a
      // float32 subnormal (bias > 127: their grid there is not float32's
      // exponent grid), use the scalar model.
      if (!f.subnormals || f.bias > 127) break;
      const family::MinifloatLayout L(f);
      family = SimdFamily::kClosedForm;
      man_bits = L.m;
      emin_biased = L.emin + 127;
      sign_bit = L.sign_bit;
      tiny_bits = float_bits_of(f.min_subnormal());
      // The magic constant must be a normal float32 for the addition trick.
      fast_minifloat = L.m >= 1 && L.m <= 22 && L.emin - L.m + 23 >= -126;
      min_normal_bits = float_bits_of(std::ldexp(1.0, L.emin));
      if (fast_minifloat) magic_bits = float_bits_of(std::ldexp(1.0, L.emin - L.m + 23));
      break;
    }
    case Family::kInteger:
      family = SimdFamily::kClosedForm;
      man_bits = 31;
      emin_biased = 158;  // quantum 2^(158 - 127 - 31) = 1 at every magnitude
      twos_complement = true;
      integer = true;
      tiny_bits = float_bits_of(1.0);
      break;
    case Family::kPosit:
    case Family::kHiFloat8: {
      family = SimdFamily::kBinadeTable;
      const bool posit = f.family == Family::kPosit;
      twos_complement = posit;
      sign_bit = posit ? 0u : 0x80u;
      codes_monotonic = posit;
      tiny_bits = float_bits_of(f.min_subnormal());
      if (posit) {
        clamp_input = true;
        clamp_lo_bits = float_bits_of(f.min_subnormal());
        clamp_hi_bits = float_bits_of(c.max_finite());
      }
      build_binade_table(*this);
      break;
    }
    case Family::kCodebook:
      if (o.mode == Rounding::kStochastic) break;  // non-power-of-two gaps: scalar
      family = SimdFamily::kCodebook;
      build_codebook(*this);
      break;
  }
}

}  // namespace lowbit

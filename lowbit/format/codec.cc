#include "lowbit/format/codec.h"

#include <bit>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "lowbit/format/families.h"

namespace lowbit {

namespace {

// Value tables are built once per distinct format and shared: building the
// 65536-entry table of posit16 for every Codec would dominate small calls.
std::shared_ptr<const ValueTable> cached_table(const std::string& key, uint32_t num_codes,
                                               const std::function<double(uint32_t)>& decode) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const ValueTable>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[key];
  if (!slot) slot = std::make_shared<const ValueTable>(num_codes, decode);
  return slot;
}


bool rounds_toward_zero(Rounding mode, bool negative) {
  return mode == Rounding::kTowardZero || mode == Rounding::kOdd ||
         (negative ? mode == Rounding::kUp : mode == Rounding::kDown);
}

}  // namespace

Codec::Codec(Format f) : f_(std::move(f)) {
  switch (f_.family) {
    case Family::kMinifloat: {
      const family::MinifloatLayout L(f_);
      max_code_ = L.max_mag_code;
      max_value_ = family::minifloat_decode(f_, max_code_);
      if (f_.is_signed) {
        lowest_code_ = max_code_ | L.sign_bit;
        lowest_value_ = -max_value_;
      } else {
        lowest_code_ = 0;
        lowest_value_ = family::minifloat_decode(f_, 0);  // 0, or 2^-127 for E8M0
      }
      min_positive_code_ = f_.subnormals ? 1u : 0u;
      min_positive_ = family::minifloat_decode(f_, min_positive_code_);
      const bool nan = f_.has_nan(), inf = f_.has_inf();
      nan_pos_ = nan ? family::minifloat_nan_code(f_, false) : 0u;
      nan_neg_ = nan ? family::minifloat_nan_code(f_, true) : 0u;
      if (inf) {
        inf_pos_ = family::minifloat_inf_code(f_, false);
        inf_neg_ = family::minifloat_inf_code(f_, true);
      } else if (nan) {
        inf_pos_ = nan_pos_;
        inf_neg_ = f_.is_signed ? nan_neg_ : nan_pos_;
      } else {
        inf_pos_ = max_code_;
        inf_neg_ = lowest_code_;
      }
      has_virtual_ = nan || inf;
      if (has_virtual_) {
        virtual_max_ = max_value_ + std::ldexp(1.0, std::ilogb(max_value_) - L.m);
        virtual_code_ = max_code_ + 1;
        ovf_pos_ = inf ? inf_pos_ : nan_pos_;
        ovf_neg_ = inf ? inf_neg_ : (f_.is_signed ? nan_neg_ : nan_pos_);
      }
      break;
    }
    case Family::kInteger: {
      const int64_t lo = family::int_min(f_), hi = family::int_max(f_);
      const uint32_t mask = static_cast<uint32_t>((uint64_t{1} << f_.bits) - 1);
      max_value_ = static_cast<double>(hi);
      lowest_value_ = static_cast<double>(lo);
      max_code_ = static_cast<uint32_t>(hi) & mask;
      lowest_code_ = static_cast<uint32_t>(lo) & mask;
      min_positive_ = 1;
      min_positive_code_ = 1;
      nan_pos_ = nan_neg_ = 0;
      inf_pos_ = max_code_;
      inf_neg_ = lowest_code_;
      break;
    }
    case Family::kPosit: {
      const int n = f_.bits, es = f_.posit_es;
      table_ = cached_table(f_.key(), f_.num_codes(),
                            [n, es](uint32_t c) { return family::posit_decode(n, es, c); });
      max_value_ = table_->max();
      max_code_ = table_->max_entry().code;
      lowest_value_ = table_->min();
      lowest_code_ = table_->min_entry().code;
      min_positive_ = family::posit_decode(n, es, 1);
      min_positive_code_ = 1;
      nan_pos_ = nan_neg_ = inf_pos_ = inf_neg_ = 1u << (n - 1);  // NaR
      break;
    }
    case Family::kHiFloat8: {
      table_ = cached_table(f_.key(), 256, family::hifloat8_decode);
      max_value_ = table_->max();
      max_code_ = table_->max_entry().code;
      lowest_value_ = table_->min();
      lowest_code_ = table_->min_entry().code;
      min_positive_code_ = 1;
      min_positive_ = family::hifloat8_decode(1);
      nan_pos_ = nan_neg_ = family::kHiF8Nan;
      inf_pos_ = family::kHiF8PosInf;
      inf_neg_ = family::kHiF8PosInf | 0x80u;
      has_virtual_ = true;
      // The inf code sits where 1.5 * 2^15 would be: overflow rounds against it.
      virtual_max_ = family::hifloat8_decode(family::kHiF8MaxCode) * 1.5;
      virtual_code_ = family::kHiF8PosInf;
      ovf_pos_ = inf_pos_;
      ovf_neg_ = inf_neg_;
      break;
    }
    case Family::kCodebook: {
      auto values = f_.table;
      table_ = cached_table(f_.key(), static_cast<uint32_t>(values->size()),
                            [values](uint32_t c) { return static_cast<double>((*values)[c]); });
      max_value_ = table_->max();
      max_code_ = table_->max_entry().code;
      lowest_value_ = table_->min();
      lowest_code_ = table_->min_entry().code;
      nan_pos_ = nan_neg_ = table_->smallest_magnitude_code();
      inf_pos_ = max_code_;
      inf_neg_ = lowest_code_;
      break;
    }
  }
}

double Codec::decode(uint32_t code) const {
  switch (f_.family) {
    case Family::kMinifloat:
      return family::minifloat_decode(f_, code);
    case Family::kInteger:
      return family::int_decode(f_, code);
    case Family::kPosit:
      if (code >= f_.num_codes()) return std::numeric_limits<double>::quiet_NaN();
      return family::posit_decode(f_.bits, f_.posit_es, code);
    case Family::kHiFloat8:
      if (code > 0xffu) return std::numeric_limits<double>::quiet_NaN();
      return family::hifloat8_decode(code);
    case Family::kCodebook:
      if (code >= f_.table->size()) return std::numeric_limits<double>::quiet_NaN();
      return (*f_.table)[code];
  }
  return std::numeric_limits<double>::quiet_NaN();
}

bool Codec::is_valid_code(uint32_t code) const {
  if (f_.bits < 32 && code >= (1u << f_.bits)) return false;
  if (!std::isnan(decode(code))) return true;
  if (!f_.has_nan()) return false;
  if (f_.family == Family::kMinifloat && !f_.is_signed) return code <= family::MinifloatLayout(f_).mag_mask;
  return true;
}

Bracket Codec::bracket(double x) const {
  switch (f_.family) {
    case Family::kMinifloat:
      return family::minifloat_bracket(f_, x);
    case Family::kInteger:
      return family::int_bracket(f_, x);
    case Family::kPosit: {
      // Never 0 from nonzero (and never NaR from finite: see encode_overflow).
      if (x != 0 && std::fabs(x) < min_positive_) x = std::copysign(min_positive_, x);
      Bracket b = table_->bracket(x);
      if (!b.exact()) {
        const uint32_t mask = (f_.bits + 1 >= 32) ? 0xffffffffu : ((1u << (f_.bits + 1)) - 1);
        b.mid = family::posit_decode(f_.bits + 1, f_.posit_es, ((b.lo_code << 1) | 1u) & mask);
      }
      return b;
    }
    case Family::kHiFloat8:
    case Family::kCodebook:
      return table_->bracket(x);
  }
  return {};
}

uint32_t Codec::encode_overflow(double x, const RoundOptions& opt, uint64_t index) const {
  const bool neg = x < 0;
  if (opt.overflow == Overflow::kSaturate || !has_virtual_) return neg ? lowest_code_ : max_code_;
  Bracket b;
  if (!neg) {
    b.lo = max_value_;
    b.hi = virtual_max_;
    b.lo_code = max_code_;
    b.hi_code = virtual_code_;
    b.hi_virtual = true;
  } else {
    b.lo = -virtual_max_;
    b.hi = lowest_value_;
    b.lo_code = virtual_code_;
    b.hi_code = lowest_code_;
    b.lo_virtual = true;
  }
  b.mid = 0.5 * (b.lo + b.hi);
  const bool hi = pick_hi(b, x, opt, index);
  if (!neg) return hi ? ovf_pos_ : max_code_;
  return hi ? lowest_code_ : ovf_neg_;
}

uint32_t Codec::encode_unsigned_negative(double x, const RoundOptions& opt, uint64_t index) const {
  const bool nan_allowed = opt.overflow == Overflow::kIeee && f_.has_nan();
  if (!f_.has_zero()) {
    // E8M0: no zero to round to; a negative value is out of range.
    return nan_allowed && !rounds_toward_zero(opt.mode, true) ? nan_pos_ : lowest_code_;
  }
  if (!nan_allowed) return 0;
  Bracket b;
  b.lo = -min_positive_;  // the mirror image of the smallest value: virtual
  b.hi = 0;
  b.lo_code = min_positive_code_;
  b.hi_code = 0;
  b.mid = 0.5 * b.lo;
  b.lo_virtual = true;
  return pick_hi(b, x, opt, index) ? 0u : nan_pos_;
}

uint32_t Codec::encode(double x, const RoundOptions& opt, uint64_t index) const {
  if (std::isnan(x)) return nan_result(std::signbit(x));
  if (std::isinf(x)) return inf_result(x < 0);
  if (!f_.is_signed && x < 0) return encode_unsigned_negative(x, opt, index);
  // Unsigned formats never overflow from below here: x >= 0, and E8M0's
  // values under 2^-127 are handled by its bracket.
  if (x > max_value_ || (f_.is_signed && x < lowest_value_)) return encode_overflow(x, opt, index);
  const Bracket b = bracket(x);
  if (b.exact()) return b.lo_code;
  return pick_hi(b, x, opt, index) ? b.hi_code : b.lo_code;
}

}  // namespace lowbit

// Outliers: which elements the policies pick, what is stored for them, and
// the position codes (plain and ICQuant-style gap codes). The bit streams are
// checked against a reference encoder written here from the description in
// outliers.h, and the costs against the closed form per gap, so a change in
// the stored layout or its bit count cannot go unnoticed.
#include "lowbit/quant/outliers.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"
#include "lowbit/quant/error_stats.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

const Codec& fp16() {
  static const Codec c(parse_format("float16"));
  return c;
}

// Bits of the gap code, from the definition: each position costs one code
// for its gap g (distance to the previous position minus one; the first
// position's gap is the position itself) plus one escape code per whole
// 2^b - 1 in g.
uint64_t gap_code_bits(const std::vector<uint64_t>& pos, int b) {
  const uint64_t esc = (uint64_t{1} << b) - 1;
  uint64_t bits = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    const uint64_t g = i == 0 ? pos[0] : pos[i] - pos[i - 1] - 1;
    bits += static_cast<uint64_t>(b) * (g / esc + 1);
  }
  return bits;
}

// The gap stream as outliers.h describes it: the codes of all gaps in order
// (escapes first), each b bits least significant first, packed into bytes
// least significant bit first.
std::vector<uint8_t> reference_gap_stream(const std::vector<uint64_t>& pos, int b) {
  const uint64_t esc = (uint64_t{1} << b) - 1;
  std::vector<uint64_t> codes;
  for (size_t i = 0; i < pos.size(); ++i) {
    const uint64_t g = i == 0 ? pos[0] : pos[i] - pos[i - 1] - 1;
    codes.insert(codes.end(), g / esc, esc);
    codes.push_back(g % esc);
  }
  const uint64_t nbits = codes.size() * static_cast<uint64_t>(b);
  std::vector<uint8_t> bytes((nbits + 7) / 8, 0);
  for (uint64_t i = 0; i < nbits; ++i) {
    const uint64_t bit = (codes[i / b] >> (i % b)) & 1;
    bytes[i / 8] = static_cast<uint8_t>(bytes[i / 8] | (bit << (i % 8)));
  }
  return bytes;
}

// Plain positions: little-endian u32, or u64 once positions can pass 2^32.
std::vector<uint8_t> reference_plain(const std::vector<uint64_t>& pos, uint64_t n) {
  const int w = n > (uint64_t{1} << 32) ? 8 : 4;
  std::vector<uint8_t> bytes;
  for (uint64_t p : pos) {
    for (int k = 0; k < w; ++k) bytes.push_back(static_cast<uint8_t>((p >> (8 * k)) & 0xFF));
  }
  return bytes;
}

// A list as extract_outliers would make it, values left 0.
OutlierList make_list(const std::vector<uint64_t>& pos, uint64_t n, int gap_bits) {
  OutlierList l;
  encode_positions(pos, n, gap_bits, l);
  l.count = pos.size();
  l.values.assign(pos.size(), 0);
  return l;
}

// Encodes, checks bytes and bit count against the references, decodes.
void check_round_trip(const std::vector<uint64_t>& pos, uint64_t n, int b) {
  SCOPED_TRACE("gap_bits " + std::to_string(b) + " n " + std::to_string(n) + " count " + std::to_string(pos.size()));
  const OutlierList l = make_list(pos, n, b);
  EXPECT_EQ(l.gap_bits, b);
  if (b == 0) {
    EXPECT_EQ(l.positions, reference_plain(pos, n));
    EXPECT_EQ(l.position_bits, pos.size() * (n > (uint64_t{1} << 32) ? 64u : 32u));
  } else {
    EXPECT_EQ(l.positions, reference_gap_stream(pos, b));
    EXPECT_EQ(l.position_bits, gap_code_bits(pos, b));
  }
  EXPECT_EQ(outlier_positions(l, n), pos);
}

// ---- position codes ----

TEST(OutlierPositions, HandEncodedGapStream) {
  // b = 2 (escape 3): positions 0, 1, 5, 6 have gaps 0, 0, 3, 0; the gap 3 is
  // an escape then 0, so the codes are 0 0 3 0 0: bits 00 00 11 00 | 00.
  const OutlierList l = make_list({0, 1, 5, 6}, 8, 2);
  EXPECT_EQ(l.position_bits, 10u);
  EXPECT_EQ(l.positions, (std::vector<uint8_t>{0x30, 0x00}));
  EXPECT_EQ(outlier_positions(l, 8), (std::vector<uint64_t>{0, 1, 5, 6}));
  // b = 3 (escape 7): positions 2 and 12 have gaps 2 and 9 = 7 + 2, so the
  // codes are 2, 7, 2. Stream bits b0..b8 = 0 1 0 | 1 1 1 | 0 1 0, so byte 0
  // (b7..b0) = 1011 1010 = 0xBA and byte 1 = 0.
  const OutlierList m = make_list({2, 12}, 13, 3);
  EXPECT_EQ(m.position_bits, 9u);
  EXPECT_EQ(m.positions, (std::vector<uint8_t>{0xBA, 0x00}));
}

TEST(OutlierPositions, HandEncodedPlain) {
  const OutlierList l = make_list({1, 258}, 300, 0);
  EXPECT_EQ(l.position_bits, 64u);
  EXPECT_EQ(l.positions, (std::vector<uint8_t>{1, 0, 0, 0, 2, 1, 0, 0}));
  // Exactly 2^32 elements still fit u32 positions; one more needs u64.
  const uint64_t n32 = uint64_t{1} << 32;
  const OutlierList a = make_list({n32 - 1}, n32, 0);
  EXPECT_EQ(a.positions, (std::vector<uint8_t>{0xFF, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(outlier_positions(a, n32), (std::vector<uint64_t>{n32 - 1}));
  const OutlierList b = make_list({0, n32}, n32 + 1, 0);
  EXPECT_EQ(b.position_bits, 128u);
  EXPECT_EQ(b.positions, (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(outlier_positions(b, n32 + 1), (std::vector<uint64_t>{0, n32}));
}

TEST(OutlierPositions, EscapeBoundariesForEveryWidth) {
  // Gaps at and around multiples of the escape, runs of gap 0, position 0
  // and the last position n - 1.
  for (int b = 2; b <= 16; ++b) {
    const uint64_t esc = (uint64_t{1} << b) - 1;
    const std::vector<uint64_t> gaps = {0, 0, esc - 1, esc, esc + 1, 0, 2 * esc - 1, 2 * esc, 2 * esc + 1, 0, 0, 3 * esc, 1};
    std::vector<uint64_t> pos;
    uint64_t next = 0;
    for (uint64_t g : gaps) {
      pos.push_back(next + g);
      next = pos.back() + 1;
    }
    check_round_trip(pos, pos.back() + 1, b);
    check_round_trip(pos, pos.back() + 1, 0);
    check_round_trip({}, 10, b);
    check_round_trip({0}, 1, b);
  }
}

TEST(OutlierPositions, GapPastTwoToThe32) {
  // The running position is 64-bit: a gap of 2^32 + 1 is 65537 escapes of
  // 65535 and a final 2.
  const uint64_t far = (uint64_t{1} << 32) + 7;
  const std::vector<uint64_t> pos = {5, far};
  const OutlierList l = make_list(pos, far + 1, 16);
  EXPECT_EQ(l.position_bits, 16u * (1 + 65537 + 1));
  EXPECT_EQ(outlier_positions(l, far + 1), pos);
  check_round_trip(pos, far + 1, 16);
}

// Random ascending position sets, every width. Gaps are drawn near the
// escape's multiples as well as small and zero, so that the escape logic
// is exercised at every width.
RC_GTEST_PROP(OutlierPositions, RandomSetsRoundTrip, ()) {
  const int b = *rc::gen::element(0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const uint64_t esc = b == 0 ? 1000 : (uint64_t{1} << b) - 1;
  const auto draws = *rc::gen::container<std::vector<std::pair<int, uint32_t>>>(
      rc::gen::pair(rc::gen::inRange(0, 6), rc::gen::arbitrary<uint32_t>()));
  std::vector<uint64_t> pos;
  uint64_t next = 0;
  for (const auto& [kind, r] : draws) {
    uint64_t g = 0;
    switch (kind) {
      case 0: g = 0; break;
      case 1: g = r % 8; break;
      case 2: g = esc - 1 + r % 3; break;  // esc - 1, esc, esc + 1
      case 3: g = (1 + r % 3) * esc + (r / 3) % 3 - 1; break;  // m esc - 1, m esc, m esc + 1
      case 4: g = r % (4 * esc + 1); break;
      default: g = r % 64; break;
    }
    pos.push_back(next + g);
    next = pos.back() + 1;
  }
  // Tail: 0 makes the last position n - 1.
  const uint64_t tail = *rc::gen::inRange<uint64_t>(0, 3);
  const uint64_t n = next + tail + (pos.empty() ? 1 : 0);
  OutlierList l;
  encode_positions(pos, n, b, l);
  l.count = pos.size();
  l.values.assign(pos.size(), 0);
  if (b == 0) {
    RC_ASSERT(l.positions == reference_plain(pos, n));
    RC_ASSERT(l.position_bits == 32 * pos.size());
  } else {
    RC_ASSERT(l.positions == reference_gap_stream(pos, b));
    RC_ASSERT(l.position_bits == gap_code_bits(pos, b));
  }
  RC_ASSERT(outlier_positions(l, n) == pos);
}

// ---- malformed lists ----

void expect_input_error(const OutlierList& l, uint64_t n, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    (void)outlier_positions(l, n);
    ADD_FAILURE() << "decoded without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
  }
  // restore_outliers validates the whole list before writing anything.
  std::vector<float> out(std::min<uint64_t>(n, 1024), 1.5f);
  const std::vector<float> before = out;
  try {
    restore_outliers(l, out.data(), n);
    ADD_FAILURE() << "restored without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
  }
  EXPECT_EQ(out, before);
}

TEST(OutlierPositions, MalformedListsAreInputErrors) {
  const std::vector<uint64_t> pos = {3, 100, 200, 250};
  {
    OutlierList l = make_list(pos, 300, 6);
    l.positions.pop_back();  // the last code loses its last bit
    expect_input_error(l, 300, "truncated gap stream");
    l.positions.clear();
    expect_input_error(l, 300, "empty gap stream");
  }
  expect_input_error(make_list(pos, 300, 6), 250, "gap-coded position == n");
  expect_input_error(make_list(pos, 300, 6), 200, "gap-coded position past n");
  expect_input_error(make_list(pos, 300, 0), 250, "plain position == n");
  {
    // Only escapes: the stream runs past the tensor before any position.
    OutlierList l = make_list({200}, 300, 2);
    expect_input_error(l, 150, "escapes past n");
  }
  {
    OutlierList l;
    l.gap_bits = 0;
    l.count = 2;
    l.values = {0, 0};
    l.positions = reference_plain({5, 3}, 300);
    expect_input_error(l, 300, "descending plain positions");
    l.positions = reference_plain({5, 5}, 300);
    expect_input_error(l, 300, "repeated plain position");
    l.positions.pop_back();
    expect_input_error(l, 300, "plain list of the wrong size");
  }
  {
    OutlierList l = make_list(pos, 300, 6);
    l.values.pop_back();
    expect_input_error(l, 300, "fewer values than positions");
    l.values.push_back(0);
    l.values.push_back(0);
    expect_input_error(l, 300, "more values than positions");
  }
  {
    OutlierList l = make_list(pos, 300, 6);
    l.count = 5;
    l.values.assign(5, 0);
    expect_input_error(l, 300, "count larger than the gap stream holds");
  }
  for (int bad : {1, 17, -1}) {
    OutlierList l = make_list(pos, 300, 6);
    l.gap_bits = bad;
    expect_input_error(l, 300, "gap width " + std::to_string(bad));
  }
}

// ---- selection ----

// The reference selection of the fraction policy: order by |x| descending
// (NaN above inf above every finite value), ties by position ascending, and
// take the first round(f n).
std::vector<uint64_t> reference_top(const std::vector<float>& x, uint64_t k) {
  const auto rank = [](float v) {
    if (std::isnan(v)) return 2.0 * std::numeric_limits<double>::max();
    if (std::isinf(v)) return std::numeric_limits<double>::max();
    return static_cast<double>(std::fabs(v));
  };
  std::vector<uint64_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), uint64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](uint64_t a, uint64_t b) { return rank(x[a]) > rank(x[b]); });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

OutlierPolicy fraction(double f, int gap_bits = 6) {
  OutlierPolicy p;
  p.kind = OutlierPolicy::Kind::kFraction;
  p.value = f;
  p.gap_bits = gap_bits;
  return p;
}

// Checks what extract_outliers did to x and stored: the listed positions
// are zero, everything else untouched, the values are the float16 codes of
// the originals.
void check_extraction(const std::vector<float>& orig, const std::vector<float>& after, const OutlierList& l,
                      const std::vector<uint64_t>& want) {
  const std::vector<uint64_t> got = outlier_positions(l, orig.size());
  ASSERT_EQ(got, want);
  ASSERT_EQ(l.count, want.size());
  ASSERT_EQ(l.values.size(), want.size());
  size_t k = 0;
  for (uint64_t i = 0; i < orig.size(); ++i) {
    if (k < want.size() && want[k] == i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(after[i]), 0u) << i;
      const uint32_t code = fp16().encode(orig[i], RoundOptions{});
      EXPECT_EQ(l.values[k], code) << i;
      ++k;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(after[i]), std::bit_cast<uint32_t>(orig[i])) << i;
    }
  }
}

TEST(ExtractOutliers, PicksRoundFnElements) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(1000);
  for (auto& v : x) v = d(rng);
  // f n = 12.3, 12.7, 500, 999, 0.4 (none a tie for rounding).
  const std::vector<std::pair<double, uint64_t>> cases = {{0.0123, 12}, {0.0127, 13}, {0.5, 500}, {0.999, 999}, {0.0004, 0}};
  for (const auto& [f, k] : cases) {
    SCOPED_TRACE(f);
    std::vector<float> y = x;
    const OutlierList l = extract_outliers(y.data(), 10, 100, fraction(f));
    EXPECT_EQ(l.count, k);
    check_extraction(x, y, l, reference_top(x, k));
  }
}

TEST(ExtractOutliers, LargestMagnitudeTiesGoToLowerPositions) {
  // |x| below 1 everywhere except: -7 at 10, 6 at 400, and +-5 at 7, 50,
  // 120, 300, 301, 999. Five outliers: -7, 6, and the three first fives.
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.001f * static_cast<float>(i % 997) - 0.5f;
  x[10] = -7.0f;
  x[400] = 6.0f;
  for (uint64_t i : {7, 50, 120, 300, 301, 999}) x[i] = (i % 2) ? -5.0f : 5.0f;
  std::vector<float> y = x;
  const OutlierList l = extract_outliers(y.data(), 1, 1000, fraction(0.005));
  check_extraction(x, y, l, {7, 10, 50, 120, 400});
  // float16 by hand: 5 = 1.25 * 2^2 -> exponent 17, mantissa 0x100: 0x4500;
  // 7 = 1.75 * 2^2 -> 0x4700; 6 = 1.5 * 2^2 -> 0x4600.
  EXPECT_EQ(l.values, (std::vector<uint16_t>{0xC500, 0xC700, 0x4500, 0x4500, 0x4600}));

  // Many ties: values in {-4..4} over 4096 elements, 10% taken.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-4, 4);
  std::vector<float> t(4096);
  for (auto& v : t) v = static_cast<float>(d(rng));
  t[17] = -0.0f;
  for (double f : {0.1, 0.3, 0.77}) {
    SCOPED_TRACE(f);
    std::vector<float> u = t;
    const OutlierList m = extract_outliers(u.data(), 64, 64, fraction(f, 0));
    check_extraction(t, u, m, reference_top(t, static_cast<uint64_t>(std::floor(f * 4096 + 0.5))));
  }
}

TEST(ExtractOutliers, NanAndInfAreTakenFirst) {
  std::vector<float> x(100);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 1e28f;  // up to ~1e30, finite
  x[3] = -kInf;
  x[40] = kNaN;
  x[70] = kInf;
  x[90] = -kNaN;
  std::vector<float> y = x;
  const OutlierList l = extract_outliers(y.data(), 1, 100, fraction(0.04));
  check_extraction(x, y, l, {3, 40, 70, 90});
  ASSERT_EQ(l.values.size(), 4u);
  EXPECT_EQ(fp16().decode(l.values[0]), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(fp16().decode(l.values[1])));
  EXPECT_EQ(fp16().decode(l.values[2]), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(fp16().decode(l.values[3])));
  // One more: the largest finite value comes next.
  y = x;
  const OutlierList m = extract_outliers(y.data(), 1, 100, fraction(0.05));
  check_extraction(x, y, m, {3, 40, 70, 90, 99});
}

TEST(ExtractOutliers, SigmaPolicyIsPerRow) {
  // Rows with different means and spreads; the same value 5 is an outlier
  // in a narrow row and not in a wide one.
  const uint64_t rows = 8, cols = 512;
  std::mt19937 rng(3);
  std::vector<float> x(rows * cols);
  for (uint64_t r = 0; r < rows; ++r) {
    std::normal_distribution<float> d(static_cast<float>(r) * 10.0f, r % 2 ? 10.0f : 1.0f);
    for (uint64_t j = 0; j < cols; ++j) x[r * cols + j] = d(rng);
    x[r * cols + (r * 37) % cols] = static_cast<float>(r) * 10.0f + 5.0f;
  }
  x[2 * cols + 100] = kInf;  // non-finite: always flagged, not in the stats
  x[5 * cols + 7] = kNaN;
  const double nsig = 3.0;
  std::vector<uint64_t> want;
  for (uint64_t r = 0; r < rows; ++r) {
    // Population mean and standard deviation of the finite values.
    double s = 0, c = 0;
    for (uint64_t j = 0; j < cols; ++j) {
      if (std::isfinite(x[r * cols + j])) {
        s += x[r * cols + j];
        c += 1;
      }
    }
    const double mean = s / c;
    double s2 = 0;
    for (uint64_t j = 0; j < cols; ++j) {
      const double v = x[r * cols + j];
      if (std::isfinite(v)) s2 += (v - mean) * (v - mean);
    }
    const double lim = nsig * std::sqrt(s2 / c);
    for (uint64_t j = 0; j < cols; ++j) {
      const double v = x[r * cols + j];
      if (!std::isfinite(v)) {
        want.push_back(r * cols + j);
        continue;
      }
      const double dev = std::fabs(v - mean);
      // The data leaves a clear margin, so summation order cannot matter.
      ASSERT_GT(std::fabs(dev - lim), 1e-6 * lim) << r << " " << j;
      if (dev > lim) want.push_back(r * cols + j);
    }
    const bool narrow = r % 2 == 0;
    const uint64_t spike = r * cols + (r * 37) % cols;
    EXPECT_EQ(std::find(want.begin(), want.end(), spike) != want.end(), narrow) << r;
  }
  OutlierPolicy p;
  p.kind = OutlierPolicy::Kind::kSigma;
  p.value = nsig;
  std::vector<float> y = x;
  const OutlierList l = extract_outliers(y.data(), rows, cols, p);
  check_extraction(x, y, l, want);
}

TEST(ExtractOutliers, NonePolicyPicksNothing) {
  std::vector<float> x = {1, 2, 3, 1000};
  std::vector<float> y = x;
  const OutlierList l = extract_outliers(y.data(), 1, 4, OutlierPolicy{});
  EXPECT_EQ(l.count, 0u);
  EXPECT_EQ(l.position_bits, 0u);
  EXPECT_EQ(y, x);
}

TEST(ExtractOutliers, RestoreWritesTheStoredValuesBack) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> x(3000);
  for (auto& v : x) v = d(rng);
  x[0] = 1.0f / 3.0f * 100.0f;  // not a float16: restored as its rounding
  for (int b : {0, 2, 6, 16}) {
    SCOPED_TRACE(b);
    std::vector<float> y = x;
    const OutlierList l = extract_outliers(y.data(), 30, 100, fraction(0.02, b));
    const std::vector<float> holes = y;
    restore_outliers(l, y.data(), y.size());
    const std::vector<uint64_t> pos = outlier_positions(l, y.size());
    ASSERT_EQ(pos.size(), 60u);
    EXPECT_EQ(pos[0], 0u);
    size_t k = 0;
    for (uint64_t i = 0; i < y.size(); ++i) {
      if (k < pos.size() && pos[k] == i) {
        EXPECT_EQ(y[i], static_cast<float>(fp16().fakequant(x[i], RoundOptions{}))) << i;
        ++k;
      } else {
        EXPECT_EQ(y[i], holes[i]) << i;
      }
    }
    EXPECT_NE(y[0], x[0]);
    EXPECT_NEAR(y[0], x[0], x[0] * 0x1p-11);
  }
}

TEST(ExtractOutliers, FivePercentCostsAbout031BitsPerElement) {
  // At density f with b-bit gaps a position costs b (1 + E[escapes]); for
  // uniformly spread positions that is about b (1 + (1 - f)^(2^b - 1)),
  // 6 * (1 + 0.95^63) * 0.05 = 0.312 bits per element.
  const uint64_t n = uint64_t{1} << 20;
  std::mt19937 rng(9);
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  const OutlierList l = extract_outliers(x.data(), 1024, 1024, fraction(0.05, 6));
  EXPECT_EQ(l.count, 52429u);  // round(0.05 * 2^20) = round(52428.8)
  const double per_elem = static_cast<double>(l.position_bits) / static_cast<double>(n);
  EXPECT_GT(per_elem, 0.30);
  EXPECT_LT(per_elem, 0.325);
  const double closed = 6.0 * (1.0 + std::pow(0.95, 63)) * 0.05;
  EXPECT_NEAR(per_elem, closed, 0.02 * closed);
  EXPECT_EQ(l.position_bits, gap_code_bits(outlier_positions(l, n), 6));
  // Plain u32 positions would cost 32 f = 1.6 bits per element.
  std::vector<float> y(n);
  for (auto& v : y) v = d(rng);
  EXPECT_EQ(extract_outliers(y.data(), 1024, 1024, fraction(0.05, 0)).position_bits, 52429u * 32u);
}

// ---- through quantize() ----

TEST(OutliersEndToEnd, Int4G32KeepsHugeValuesExactly) {
  const std::vector<uint64_t> shape = {256, 256};
  const uint64_t n = 256 * 256;
  std::mt19937 rng(13);
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  // About 1% huge values (integers of magnitude 50..100, so float16 holds
  // them exactly): without outliers each one flattens the other 31 elements
  // of its block to 0.
  std::vector<uint64_t> huge;
  for (uint64_t i = 3; i < n; i += 97) {
    x[i] = static_cast<float>(50 + (i % 51)) * ((i % 2) ? -1.0f : 1.0f);
    huge.push_back(i);
  }
  const Scheme plain = parse_scheme("int4/g32");
  const Scheme with = parse_scheme("int4/g32/outliers=0.05");
  const QuantizedTensor qp = quantize({x.data(), shape}, plain);
  const QuantizedTensor qo = quantize({x.data(), shape}, with);
  std::vector<float> yp(n), yo(n);
  dequantize(qp, yp.data());
  dequantize(qo, yo.data());
  const double snr_plain = error_stats(x.data(), yp.data(), n).qsnr_db();
  const double snr_out = error_stats(x.data(), yo.data(), n).qsnr_db();
  EXPECT_GT(snr_out, snr_plain + 10.0) << snr_plain << " vs " << snr_out;

  // The list: round(0.05 n) positions, every huge value among them and
  // stored exactly (integers below 2048 are float16 values).
  const uint64_t k = static_cast<uint64_t>(std::floor(0.05 * static_cast<double>(n) + 0.5));
  EXPECT_EQ(qo.outliers.count, k);
  const std::vector<uint64_t> pos = outlier_positions(qo.outliers, n);
  EXPECT_EQ(pos, reference_top(x, k));
  for (uint64_t i : huge) {
    EXPECT_TRUE(std::binary_search(pos.begin(), pos.end(), i)) << i;
    EXPECT_EQ(yo[i], x[i]) << i;
  }
  for (uint64_t i : pos) EXPECT_EQ(yo[i], static_cast<float>(fp16().fakequant(x[i], RoundOptions{}))) << i;

  // Bits: the list's own count, and 16 per value.
  const QuantizedTensor::Bits b = qo.bits();
  EXPECT_EQ(b.outlier_positions, qo.outliers.position_bits);
  EXPECT_EQ(b.outlier_positions, gap_code_bits(pos, 6));
  EXPECT_EQ(b.outlier_values, 16 * k);
  EXPECT_EQ(b.codes, 4 * n);
  EXPECT_EQ(b.scales, 16 * n / 32);
  EXPECT_EQ(qo.bits_per_element(),
            (4.0 * n + 16.0 * n / 32 + static_cast<double>(gap_code_bits(pos, 6)) + 16.0 * k) / n);
  EXPECT_EQ(qp.bits().outlier_positions, 0u);
  EXPECT_EQ(qp.bits().outlier_values, 0u);
}

}  // namespace
}  // namespace lowbit

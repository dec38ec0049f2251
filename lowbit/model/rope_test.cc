#include "lowbit/model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

std::vector<float> random_rows(int64_t n, int64_t width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(n * width));
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(RopeTest, PositionZeroIsIdentity) {
  const Rope r(8, 8, 10000.0, RopeStyle::kAdjacentPairs);
  std::vector<float> x = random_rows(1, 16, 1), y = x;
  r.apply(y.data(), 1, 16, 2, 0, 1);
  EXPECT_EQ(x, y);
}

TEST(RopeTest, AdjacentPairsOnPermutedRowsEqualHalves) {
  const int64_t hd = 8, heads = 3, n = 10;
  const Rope adj(hd, hd, 500.0, RopeStyle::kAdjacentPairs), half(hd, hd, 500.0, RopeStyle::kHalves);
  std::vector<float> h = random_rows(n, heads * hd, 2), a(h.size());
  // GGUF order: element 2i + s of a head is element s*(hd/2) + i of the HF head.
  for (int64_t r = 0; r < n * heads; ++r) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t s = 0; s < 2; ++s) a[static_cast<size_t>(r * hd + 2 * i + s)] = h[static_cast<size_t>(r * hd + s * hd / 2 + i)];
    }
  }
  half.apply(h.data(), n, heads * hd, heads, 5, 1);
  adj.apply(a.data(), n, heads * hd, heads, 5, 1);
  for (int64_t r = 0; r < n * heads; ++r) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t s = 0; s < 2; ++s) {
        EXPECT_EQ(a[static_cast<size_t>(r * hd + 2 * i + s)], h[static_cast<size_t>(r * hd + s * hd / 2 + i)]);
      }
    }
  }
}

TEST(RopeTest, DotProductDependsOnDistanceOnly) {
  const Rope r(16, 16, 10000.0, RopeStyle::kHalves);
  const std::vector<float> q0 = random_rows(1, 16, 3), k0 = random_rows(1, 16, 4);
  const auto dot_at = [&](int64_t pq, int64_t pk) {
    std::vector<float> q = q0, k = k0;
    r.apply(q.data(), 1, 16, 1, pq, 1);
    r.apply(k.data(), 1, 16, 1, pk, 1);
    double d = 0;
    for (int i = 0; i < 16; ++i) d += double{q[static_cast<size_t>(i)]} * k[static_cast<size_t>(i)];
    return d;
  };
  EXPECT_NEAR(dot_at(7, 3), dot_at(104, 100), 1e-4);
  EXPECT_NEAR(dot_at(3, 3), dot_at(0, 0), 1e-4);
}

TEST(RopeTest, PartialRotationAndThreadsAndErrors) {
  const Rope r(8, 4, 10000.0, RopeStyle::kAdjacentPairs);
  std::vector<float> x = random_rows(40, 16, 5), y = x, z = x;
  r.apply(y.data(), 40, 16, 2, 3, 1);
  r.apply(z.data(), 40, 16, 2, 3, 3);
  EXPECT_EQ(std::memcmp(y.data(), z.data(), y.size() * 4), 0);
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 8 >= 4) {
      EXPECT_EQ(x[i], y[i]);  // past rope_dim: untouched
    }
  }
  EXPECT_THROW(Rope(8, 9, 1e4, RopeStyle::kHalves), Error);
  EXPECT_THROW(Rope(8, 10, 1e4, RopeStyle::kHalves), Error);
  EXPECT_THROW(Rope(8, 8, 0.0, RopeStyle::kHalves), Error);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// apply_inverse is the transpose: <R x, y> = <x, Rᵀ y>, and Rᵀ R x = x to
// rounding, in both pairings and with a partial rotation.
TEST(RopeTest, InverseIsTheTranspose) {
  for (RopeStyle style : {RopeStyle::kAdjacentPairs, RopeStyle::kHalves}) {
    const Rope rope(8, 6, 10000.0, style);
    const int64_t n = 5, heads = 2, ld = 16;
    std::vector<float> x(n * ld), y(n * ld);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = std::sin(0.37f * static_cast<float>(i) + 1.0f);
      y[i] = std::cos(0.11f * static_cast<float>(i * i));
    }
    std::vector<float> rx = x, rty = y, back = x;
    rope.apply(rx.data(), n, ld, heads, 3, 1);
    rope.apply_inverse(rty.data(), n, ld, heads, 3, 2);
    double a = 0, b = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      a += double{rx[i]} * y[i];
      b += double{x[i]} * rty[i];
    }
    EXPECT_NEAR(a, b, 1e-5);
    rope.apply(back.data(), n, ld, heads, 3, 1);
    rope.apply_inverse(back.data(), n, ld, heads, 3, 1);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(back[i], x[i], 1e-6) << i;
  }
}

}  // namespace
}  // namespace lowbit

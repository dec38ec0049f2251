// PackedWeight: its weights are ggml_dequantize_row's, bit for bit, on
// every SIMD target (scales of every float16 kind included); its product is
// the same bits at every thread count; what it cannot hold it refuses.
#include "lowbit/ggml/packed_weight.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

struct Quantized {
  std::vector<uint8_t> bytes;
  std::span<const std::byte> span() const { return std::as_bytes(std::span(bytes)); }
};

// rows x cols of t: random rows through ggml_quantize_rows, then some block
// scales (and Q4_1 mins) overwritten with float16 edge values: the smallest
// subnormal, -0, the largest finite, a negative.
Quantized quantized(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = nd(rng);
  const uint64_t rb = ggml_row_bytes(t, static_cast<uint64_t>(cols), "test");
  Quantized q{std::vector<uint8_t>(rb * static_cast<uint64_t>(rows))};
  ggml_quantize_rows(t, w.data(), static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), q.bytes.data(), nullptr, 1);
  const uint32_t bb = ggml_type_info(t).block_bytes;
  const uint16_t edges[] = {0x0001, 0x8000, 0x7BFF, 0xB800, 0x03FF};
  const size_t blocks = q.bytes.size() / bb;
  for (size_t b = 0; b < blocks; b += 3) {
    const uint16_t e = edges[(b / 3) % 5];
    std::memcpy(q.bytes.data() + b * bb, &e, 2);
    if (t == GgmlType::kQ4_1) std::memcpy(q.bytes.data() + b * bb + 2, &edges[(b / 3 + 2) % 5], 2);
  }
  return q;
}

TEST(PackedWeight, ValuesEqualGgmlDequantizationOnEveryTarget) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1}) {
    const int64_t rows = 7, cols = 96;
    const Quantized q = quantized(t, rows, cols, 1);
    const PackedWeight p = PackedWeight::from_ggml(t, q.span(), rows, cols);
    EXPECT_EQ(p.rows(), rows);
    EXPECT_EQ(p.cols(), cols);
    const uint64_t rb = ggml_row_bytes(t, cols, "test");
    // The GGUF bytes regrouped, plus one padding row (7 rows -> 2 groups).
    EXPECT_EQ(p.bytes(), rb * 8) << ggml_type_info(t).name;
    std::vector<float> want(cols), got(cols);
    for (KernelTarget k : available_targets()) {
      set_kernel_target(k);
      for (int64_t r = 0; r < rows; ++r) {
        ggml_dequantize_row(t, q.bytes.data() + r * rb, cols, want.data());
        p.dequantize_row(r, got.data());
        EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0)
            << ggml_type_info(t).name << " row " << r << " on " << kernel_target_name(k);
      }
      reset_kernel_target();
    }
  }
}

TEST(PackedWeight, ProductIsTheSameBitsAtEveryThreadCount) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_1}) {
    const int64_t rows = 200, cols = 576;  // several tasks, one short
    const Quantized q = quantized(t, rows, cols, 2);
    const PackedWeight p = PackedWeight::from_ggml(t, q.span(), rows, cols);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(cols);
    for (float& v : x) v = nd(rng);
    std::vector<float> one(rows), want(rows);
    p.multiply(x.data(), one.data(), 1);
    kernels::gemv_rows_reference(p.matrix(), x.data(), 0, rows, want.data());
    EXPECT_EQ(std::memcmp(one.data(), want.data(), one.size() * sizeof(float)), 0);
    for (int threads : {2, 3, 8}) {
      std::vector<float> other(rows);
      p.multiply(x.data(), other.data(), threads);
      EXPECT_EQ(std::memcmp(one.data(), other.data(), one.size() * sizeof(float)), 0) << threads << " threads";
    }
  }
}

TEST(PackedWeight, SeveralProductsInOneDispatchAreTheBitsOfEachAlone) {
  // Q4_1 [200, 576], Q8_0 [64, 576], Q4_0 [33, 96]: uneven task counts.
  const struct {
    GgmlType t;
    int64_t rows, cols;
  } shapes[] = {{GgmlType::kQ4_1, 200, 576}, {GgmlType::kQ8_0, 64, 576}, {GgmlType::kQ4_0, 33, 96}};
  std::vector<PackedWeight> ws;
  std::vector<std::vector<float>> xs, alone;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& s : shapes) {
    const Quantized q = quantized(s.t, s.rows, s.cols, 7);
    ws.push_back(PackedWeight::from_ggml(s.t, q.span(), s.rows, s.cols));
    xs.emplace_back(static_cast<size_t>(s.cols));
    for (float& v : xs.back()) v = nd(rng);
    alone.emplace_back(static_cast<size_t>(s.rows));
    ws.back().multiply(xs.back().data(), alone.back().data(), 1);
  }
  for (KernelTarget k : available_targets()) {
    set_kernel_target(k);
    for (int threads : {1, 2, 3, 8}) {
      std::vector<std::vector<float>> ys;
      std::vector<PackedWeight::Product> products;
      for (size_t i = 0; i < ws.size(); ++i) ys.emplace_back(alone[i].size(), -1.0f);
      for (size_t i = 0; i < ws.size(); ++i) products.push_back({&ws[i], xs[i].data(), ys[i].data()});
      PackedWeight::multiply_all(products, threads);
      for (size_t i = 0; i < ws.size(); ++i) {
        EXPECT_EQ(std::memcmp(ys[i].data(), alone[i].data(), alone[i].size() * sizeof(float)), 0)
            << "product " << i << ", " << threads << " threads on " << kernel_target_name(k);
      }
    }
    reset_kernel_target();
  }
}

TEST(PackedWeight, RefusesWhatItCannotHold) {
  EXPECT_FALSE(PackedWeight::supports(GgmlType::kQ4_K));
  EXPECT_TRUE(PackedWeight::supports(GgmlType::kQ4_1));
  const Quantized q = quantized(GgmlType::kQ8_0, 2, 64, 4);
  try {
    PackedWeight::from_ggml(GgmlType::kQ4_K, q.span(), 2, 64);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  }
  try {
    PackedWeight::from_ggml(GgmlType::kQ8_0, q.span().first(q.bytes.size() - 1), 2, 64);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit

// TQ1_0 and TQ2_0 blocks derived by hand from quantize_row_tq{1,2}_0_ref.
#include <gtest/gtest.h>

#include <vector>

#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {
namespace {

std::vector<uint8_t> encode(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> b(ggml_row_bytes(t, x.size(), "test"));
  ggml_quantize_row(t, x.data(), x.size(), b.data());
  return b;
}

TEST(GgmlTernary, Tq2_0CodesAndTies) {
  // amax = 0.5: d = 0.5 (fp16 0x3800), id = 2, code = lroundf(2x) + 1:
  // 0.25 -> lroundf(0.5) = 1 -> 2, -0.25 -> -1 -> 0 (ties away from zero),
  // 0.2 -> 0 -> 1. Byte l holds elements l, l + 32, l + 64, l + 96.
  std::vector<float> x(256, 0.0f);
  x[0] = 0.5f;     // code 2
  x[32] = 0.25f;   // code 2
  x[64] = -0.25f;  // code 0
  x[96] = 0.2f;    // code 1
  x[129] = -0.5f;  // code 0, byte 32 + 1
  const auto b = encode(GgmlType::kTQ2_0, x);
  ASSERT_EQ(b.size(), 66u);
  EXPECT_EQ(b[0], 2 | (2 << 2) | (0 << 4) | (1 << 6));
  EXPECT_EQ(b[33], 0 | (1 << 2) | (1 << 4) | (1 << 6));
  EXPECT_EQ(b[5], 0x55);  // four zeros: code 1 each
  EXPECT_EQ(ggml_internal::load_u16(b.data() + 64), 0x3800);
  std::vector<float> y(256);
  ggml_dequantize_row(GgmlType::kTQ2_0, b.data(), 256, y.data());
  EXPECT_EQ(y[32], 0.5f);
  EXPECT_EQ(y[64], -0.5f);
  EXPECT_EQ(y[96], 0.0f);
}

TEST(GgmlTernary, Tq1_0PacksFiveTritsPerByte) {
  // All +1 (x = 3, d = 3): every code is 2. Five codes make t = 242 and the
  // byte ceil(242 * 256 / 243) = (242 * 256 + 242) / 243 = 255; qh's four
  // codes shifted one trit up make t = 2*81 + 2*27 + 2*9 + 2*3 = 240 and
  // (240 * 256 + 242) / 243 = 253. d = fp16(3) = 0x4200.
  std::vector<float> x(256, 3.0f);
  auto b = encode(GgmlType::kTQ1_0, x);
  ASSERT_EQ(b.size(), 54u);
  for (int i = 0; i < 48; ++i) ASSERT_EQ(b[i], 255) << i;
  for (int i = 48; i < 52; ++i) ASSERT_EQ(b[i], 253) << i;
  EXPECT_EQ(ggml_internal::load_u16(b.data() + 52), 0x4200);
  // Element 0 is the most significant trit of byte 0, element 32 the next:
  // codes (0, 1, 2, 2, 2) give t = 0*81 + 1*27 + 2*9 + 2*3 + 2 = 53 and the
  // byte (53 * 256 + 242) / 243 = 56.
  x[0] = -3.0f;
  x[32] = 0.0f;
  b = encode(GgmlType::kTQ1_0, x);
  EXPECT_EQ(b[0], 56);
  std::vector<float> y(256);
  ggml_dequantize_row(GgmlType::kTQ1_0, b.data(), 256, y.data());
  EXPECT_EQ(y, x);
}

}  // namespace
}  // namespace lowbit

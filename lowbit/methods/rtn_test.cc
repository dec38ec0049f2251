#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

#include <cstring>
#include <random>

#include "lowbit/methods/method_registry.h"

namespace lowbit {
namespace {

using testing_support::normal_values;


// rtn is quantize() with the scheme as written, bit for bit; importance
// changes nothing.
TEST(Rtn, IsTheSchemeAsWritten) {
  const std::vector<float> w = normal_values(64 * 256, 1);
  const std::vector<float> imp(256, 2.0f);
  CalibStats calib;
  calib.importance_per_column = imp;
  for (const char* spec : {"int4/g128/asym", "mxfp4", "nvfp4", "int8/channel", "e4m3fn/b16x16"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    EXPECT_EQ(rtn_method().stored_scheme(s, true).spec(), s.spec());
    const QuantizedTensor a = rtn_method().quantize({w.data(), {64, 256}}, s, &calib, {});
    const QuantizedTensor b = quantize({w.data(), {64, 256}}, s);
    EXPECT_EQ(a.codes, b.codes);
    EXPECT_EQ(a.scales, b.scales);
    EXPECT_EQ(a.zeros, b.zeros);
    EXPECT_EQ(a.tensor_scale, b.tensor_scale);
  }
}

}  // namespace
}  // namespace lowbit

#include "lowbit/methods/method_registry.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(MethodRegistry, EveryMethodByItsName) {
  EXPECT_EQ(method_names(), "rtn, mse, hqq");
  for (const Method* m : all_methods()) {
    EXPECT_EQ(&find_method(m->name()), m);
    EXPECT_FALSE(m->needs_calibration()) << m->name();  // the data-free ones
  }
  const Error e = catch_error([] { find_method("gptq"); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("unknown method 'gptq'; valid: rtn, mse, hqq"), std::string::npos);
}

TEST(MethodRegistry, ChecksBeforeAnyWork) {
  // hqq optimizes zero points: asymmetric integer schemes only.
  const Error e = catch_error([] { hqq_method().check(parse_scheme("mxfp4")); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("method hqq needs an asymmetric integer scheme"), std::string::npos);
  hqq_method().check(parse_scheme("int4/g128/asym"));
  rtn_method().check(parse_scheme("mxfp4"));
  mse_method().check(parse_scheme("nvfp4"));
}

}  // namespace
}  // namespace lowbit

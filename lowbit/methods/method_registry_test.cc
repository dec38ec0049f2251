#include "lowbit/methods/method_registry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(MethodRegistry, EveryMethodByItsName) {
  EXPECT_EQ(method_names(), "rtn, mse, hqq, gptq");
  for (const Method* m : all_methods()) {
    EXPECT_EQ(&find_method(m->name()), m);
    // The data-aware ones need calibration statistics.
    EXPECT_EQ(m->needs_calibration(), std::string(m->name()) == "gptq") << m->name();
  }
  const Error e = catch_error([] { find_method("awq"); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("unknown method 'awq'; valid: rtn, mse, hqq, gptq"), std::string::npos);
}

TEST(MethodRegistry, ChecksBeforeAnyWork) {
  // hqq optimizes zero points: asymmetric integer schemes only.
  const Error e = catch_error([] { hqq_method().check(parse_scheme("mxfp4")); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("method hqq needs an asymmetric integer scheme"), std::string::npos);
  hqq_method().check(parse_scheme("int4/g128/asym"));
  rtn_method().check(parse_scheme("mxfp4"));
  mse_method().check(parse_scheme("nvfp4"));
  // gptq feeds back each rounding's error: deterministic roundings only.
  const Error g = catch_error([] { gptq_method().check(parse_scheme("mxfp4/round=stochastic")); });
  EXPECT_EQ(g.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(g.what()).find("deterministic"), std::string::npos) << g.what();
  gptq_method().check(parse_scheme("nvfp4"));
}

TEST(MethodRegistry, GptqWithoutItsStatisticsSaysHowToRecordThem) {
  std::vector<float> w(64, 0.5f);
  const Error e = catch_error([&] { gptq_method().quantize({w.data(), {4, 16}}, parse_scheme("int4/g16"), nullptr, {}); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("lowbit calibrate MODEL --text CALIB.txt --gram"), std::string::npos) << e.what();
}

TEST(MethodRegistry, OptionsMakeAConfiguredCopyOncePerSpec) {
  const Method& a = find_method("gptq:act_order,damp=0.05");
  EXPECT_STREQ(a.name(), "gptq:act_order,damp=0.05");
  EXPECT_TRUE(a.needs_calibration());
  EXPECT_EQ(&find_method("gptq:act_order,damp=0.05"), &a);
  EXPECT_NE(&a, &gptq_method());
  Error e = catch_error([] { find_method("gptq:act_ordr"); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("unknown gptq option 'act_ordr'; valid: act_order[=0|1] (default 1)"),
            std::string::npos)
      << e.what();
  e = catch_error([] { find_method("gptq:damp=2"); });
  EXPECT_NE(std::string(e.what()).find("damp takes a number in [1e-06, 1], not '2'"), std::string::npos) << e.what();
  EXPECT_STREQ(find_method("gptq:act_order=0,static_groups=1").name(), "gptq:act_order=0,static_groups=1");
  e = catch_error([] { find_method("gptq:act_order=2"); });
  EXPECT_NE(std::string(e.what()).find("act_order takes 0 or 1, not '2'"), std::string::npos) << e.what();
  e = catch_error([] { find_method("gptq:block=0.5"); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  e = catch_error([] { find_method("rtn:fast"); });
  EXPECT_NE(std::string(e.what()).find("method rtn takes no options (got 'fast')"), std::string::npos) << e.what();
  e = catch_error([] { find_method("awq:x"); });
  EXPECT_NE(std::string(e.what()).find("unknown method 'awq'"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace lowbit

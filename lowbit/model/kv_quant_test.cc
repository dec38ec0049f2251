#include "lowbit/model/kv_quant.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

TEST(KvQuantTest, PresetsExpand) {
  EXPECT_FALSE(KvQuant::parse("none").has_value());
  const std::optional<KvQuant> kivi = KvQuant::parse("kivi2");
  ASSERT_TRUE(kivi.has_value());
  EXPECT_TRUE(kivi->key.per_channel());
  EXPECT_EQ(kivi->key.group, 32);
  EXPECT_FALSE(kivi->value.per_channel());
  EXPECT_EQ(kivi->window, 32);
  EXPECT_EQ(kivi->key.scheme.element.bits, 2);
  // The spec string reads back as the same cache.
  const std::optional<KvQuant> again = KvQuant::parse(kivi->spec());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->spec(), kivi->spec());
  for (const char* p : {"int8", "fp8", "kivi4", "bfp8", "bfp4"}) EXPECT_TRUE(KvQuant::parse(p).has_value()) << p;
  EXPECT_TRUE(KvQuant::parse("bfp4")->reorder);
}

TEST(KvQuantTest, WhatACacheCannotStoreIsRefused) {
  for (const char* bad : {"k=int8/tensor,v=int8/channel",      // a tensor scale changes as positions arrive
                          "k=int8/channel,v=int8/tensor",
                          "k=nvfp4,v=int8/channel",            // so does NVFP4's second-level scale
                          "k=int8/channel,v=int4/g32@32",       // values are per token
                          "k=int4/g32@32,v=int4/g32",           // per-channel keys take /channel:1
                          "k=int4/channel:1@0,v=int4/g32",
                          "k=int4/channel:1/asym@32,v=int4/g32,reorder",
                          "k=int8/channel",                     // no v
                          "k=int8/channel,v=int8/channel,window=-3",
                          "k=int8/channel,v=int8/channel,extra",
                          "k=int8/channel/outliers=0.01,v=int8/channel",
                          "int3"}) {
    try {
      KvQuant::parse(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage) << bad;
      EXPECT_NE(std::string(e.what()).find("KV cache spec"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(KvQuant::parse("k=int4/g48,v=int4/g48")->check_width(64), Error);
  EXPECT_NO_THROW(KvQuant::parse("kivi4")->check_width(64));
}

}  // namespace
}  // namespace lowbit

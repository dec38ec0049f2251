#include "lowbit/model/kv_cache.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

TEST(KvCacheTest, RoomAdvanceClear) {
  KvCache c(3, 10, 4);
  EXPECT_EQ(c.size(), 0);
  EXPECT_EQ(c.keys(1) - c.keys(0), 40);
  EXPECT_EQ(c.values(2) - c.values(0), 80);
  c.advance(7);
  EXPECT_EQ(c.size(), 7);
  EXPECT_NO_THROW(c.check_room(3));
  try {
    c.check_room(4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("context is full"), std::string::npos);
  }
  EXPECT_THROW(c.advance(4), Error);
  EXPECT_EQ(c.size(), 7);
  c.clear();
  EXPECT_EQ(c.size(), 0);
  EXPECT_THROW(KvCache(0, 1, 1), Error);
  EXPECT_THROW(KvCache(1, -1, 1), Error);
}

}  // namespace
}  // namespace lowbit

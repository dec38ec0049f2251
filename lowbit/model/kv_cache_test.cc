#include "lowbit/model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/quant/quantizer.h"

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

// Writes n random rows at the cache's size() in layer 0 and stores them,
// returning what attention would read for rows [0, size()+n).
struct Rows {
  std::vector<float> k, v;
};
Rows write_rows(KvCache& c, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t d = c.kv_dim();
  KvRows r = c.rows(0, 1);
  for (int64_t i = 0; i < n * d; ++i) {
    r.keys[c.size() * d + i] = nd(rng) * (i % d == 3 ? 20.0f : 1.0f);  // channel 3 an outlier
    r.values[c.size() * d + i] = nd(rng);
  }
  c.store(0, n, 1);
  Rows out;
  out.k.assign(r.keys, r.keys + (c.size() + n) * d);
  out.v.assign(r.values, r.values + (c.size() + n) * d);
  c.advance(n);
  return out;
}

// Writes the same n random rows as keys and values of layer 0 of an empty
// cache and stores them; returns the rows as written.
std::vector<float> store_same_rows(KvCache& c, int64_t n, std::mt19937& rng) {
  const KvRows r = c.rows(0, 1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> raw(static_cast<size_t>(n * c.kv_dim()));
  for (float& x : raw) x = nd(rng);
  std::memcpy(r.keys, raw.data(), raw.size() * sizeof(float));
  std::memcpy(r.values, raw.data(), raw.size() * sizeof(float));
  c.store(0, n, 1);
  return raw;
}

TEST(KvCacheTest, PerTokenRowsAreTheSchemeOfEachRow) {
  KvCache c(1, 16, 64, KvQuant::parse("int8"));
  EXPECT_THROW(c.keys(0), Error);
  std::mt19937 rng(3);
  KvRows r = c.rows(0, 1);
  const std::vector<float> raw = store_same_rows(c, 5, rng);
  std::vector<float> want(raw.size());
  fakequant_tensor(TensorView(raw.data(), {5, 64}), want.data(), parse_scheme("int8/channel"));
  EXPECT_EQ(0, std::memcmp(r.keys, want.data(), want.size() * sizeof(float)));
  c.advance(5);
  // Read back from the packed form alone (the scratch is overwritten).
  std::fill(r.keys, r.keys + 16 * 64, 0.0f);
  r = c.rows(0, 1);
  EXPECT_EQ(0, std::memcmp(r.values, want.data(), want.size() * sizeof(float)));
  // int8 codes plus one 16-bit scale per row, keys and values.
  EXPECT_DOUBLE_EQ(c.bytes_per_token(), 2 * (64 + 2));
  KvCache f(1, 16, 64);
  f.advance(5);
  EXPECT_DOUBLE_EQ(f.bytes_per_token(), 2 * 64 * 4);
}

TEST(KvCacheTest, SplittingTheCallsChangesNoStoredRow) {
  for (const char* spec : {"int8", "kivi2", "bfp4", "k=e4m3fn/channel,v=int4/g16/asym,window=5"}) {
    KvCache one(1, 80, 64, KvQuant::parse(spec)), many(1, 80, 64, KvQuant::parse(spec));
    std::mt19937 a(9), b(9);
    const Rows whole = write_rows(one, 70, a);
    Rows last;
    for (int64_t n : {1, 2, 30, 1, 36}) last = write_rows(many, n, b);
    // bfp4 orders the channels by the first rows it packs: the same rows
    // only when the first pack sees the same rows.
    if (std::string(spec) == "bfp4") continue;
    EXPECT_EQ(whole.k, last.k) << spec;
    EXPECT_EQ(whole.v, last.v) << spec;
    EXPECT_DOUBLE_EQ(one.stored_bytes(), many.stored_bytes()) << spec;
  }
}

TEST(KvCacheTest, KiviKeepsTheWindowAndPartialGroupsInFloat) {
  KvCache c(1, 128, 64, KvQuant::parse("kivi2"));
  std::mt19937 rng(5);
  const KvRows r = c.rows(0, 1);
  const std::vector<float> raw = store_same_rows(c, 70, rng);
  // 70 positions, window 32: keys pack whole groups of 32 below 38, so 32;
  // values pack per token, so 38. The rest is float32 as written.
  EXPECT_EQ(0, std::memcmp(r.keys + 32 * 64, raw.data() + 32 * 64, 38 * 64 * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(r.values + 38 * 64, raw.data() + 38 * 64, 32 * 64 * sizeof(float)));
  EXPECT_NE(0, std::memcmp(r.values + 37 * 64, raw.data() + 37 * 64, 64 * sizeof(float)));
  std::vector<float> want(32 * 64);
  fakequant_tensor(TensorView(raw.data(), {32, 64}), want.data(), parse_scheme("int2/channel:1/asym"));
  EXPECT_EQ(0, std::memcmp(r.keys, want.data(), want.size() * sizeof(float)));
  c.advance(70);
  // Bytes: 32 key rows and 38 value rows at 2 bits plus their scales and
  // zeros, the rest float32.
  EXPECT_LT(c.stored_bytes(), 70.0 * 64 * 4 * 2 * 0.6);
  EXPECT_GT(c.stored_bytes(), (38.0 + 32.0) * 64 * 4);
}

TEST(KvCacheTest, RollbackUndoesAFailedForward) {
  KvCache c(2, 64, 32, KvQuant::parse("int8"));
  std::mt19937 rng(1);
  write_rows(c, 4, rng);
  const double bytes = c.stored_bytes();
  KvRows r = c.rows(0, 1);
  std::fill(r.keys + 4 * 32, r.keys + 10 * 32, 1.0f);
  c.store(0, 6, 1);
  c.rollback();
  EXPECT_EQ(c.size(), 4);
  EXPECT_DOUBLE_EQ(c.stored_bytes(), bytes);
  write_rows(c, 3, rng);
  EXPECT_EQ(c.size(), 7);
}

}  // namespace
}  // namespace lowbit

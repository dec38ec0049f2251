// llama.cpp's importance matrix file: lowbit's writer and reader round-trip
// it (the layout itself is checked against llama.cpp's own reader and
// writer in tests/python/test_calibrate.py), and the reader refuses what
// is not one, naming the problem.
#include "lowbit/calib/imatrix_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

class ImatrixFileTest : public testing_support::TempDirTest {};

Imatrix sample() {
  Imatrix m;
  m.datasets = {"linux-doc:calib"};
  m.chunk_count = 3;
  m.chunk_size = 512;
  m.column_percentile_levels = {99.0f, 99.9f};
  m.entries["blk.0.attn_q.weight"] = ImatrixEntry{4, {1.5f, 0.0f, 3.0f, 12.0f}, {6.0f}, {}, {}, {}, {}};
  std::vector<uint64_t> hist(AbsHistogram::kBins, 0);
  hist[AbsHistogram::bin_of(1.5f)] = 3;
  hist[AbsHistogram::bin_of(0.25f)] = (uint64_t{1} << 40) + 1;  // beyond float32's exact integers
  m.entries["blk.0.ffn_down.weight"] =
      ImatrixEntry{2, {2.0f, 4.0f}, {2.0f}, {1.5f, 1.75f}, hist, {2.0f, -1.0f, -1.0f, 4.0f}, {1.0f, 1.25f, 1.5f, 1.75f}};
  return m;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST_F(ImatrixFileTest, RoundTripsAndGivesTheMeanSquare) {
  write_imatrix(sample(), path("m.gguf"));
  EXPECT_TRUE(looks_like_gguf(path("m.gguf")));
  const Imatrix r = read_imatrix(path("m.gguf"));
  EXPECT_EQ(r.datasets, sample().datasets);
  EXPECT_EQ(r.chunk_count, 3u);
  EXPECT_EQ(r.chunk_size, 512u);
  ASSERT_EQ(r.entries.size(), 2u);
  EXPECT_EQ(r.entries.at("blk.0.attn_q.weight").in_sum2, sample().entries.at("blk.0.attn_q.weight").in_sum2);
  EXPECT_TRUE(r.entries.at("blk.0.attn_q.weight").in_absmax.empty());  // as in llama-imatrix's files
  EXPECT_EQ(r.entries.at("blk.0.ffn_down.weight").in_absmax, (std::vector<float>{1.5f, 1.75f}));
  EXPECT_EQ(r.entries.at("blk.0.ffn_down.weight").in_hist, sample().entries.at("blk.0.ffn_down.weight").in_hist);
  EXPECT_FALSE(r.input_histogram("blk.0.attn_q.weight").has_value());
  EXPECT_EQ(r.entries.at("blk.0.ffn_down.weight").in_gram, (std::vector<float>{2.0f, -1.0f, -1.0f, 4.0f}));
  EXPECT_TRUE(r.entries.at("blk.0.attn_q.weight").in_gram.empty());
  EXPECT_EQ(r.input_histogram("blk.0.ffn_down.weight")->total(), (uint64_t{1} << 40) + 4);
  // Per-column percentiles: one row per level.
  EXPECT_EQ(r.column_percentile_levels, (std::vector<float>{99.0f, 99.9f}));
  EXPECT_EQ(r.column_percentile("blk.0.ffn_down.weight", 99.9f), (std::vector<float>{1.5f, 1.75f}));
  EXPECT_EQ(r.column_percentile("blk.0.ffn_down.weight", 99.0f), (std::vector<float>{1.0f, 1.25f}));
  EXPECT_FALSE(r.column_percentile("blk.0.ffn_down.weight", 99.99f).has_value());
  EXPECT_FALSE(r.column_percentile("blk.0.attn_q.weight", 99.0f).has_value());
  EXPECT_EQ(r.importance("blk.0.attn_q.weight", 4, "m"), (std::vector<float>{0.25f, 0.0f, 0.5f, 2.0f}));
  EXPECT_TRUE(r.importance("blk.1.attn_q.weight", 4, "m").empty());
  // The file's layout: general.type, then per weight its sums [1, cols],
  // counts [1, 1] and maxima [1, cols] where there are any, F32, in name
  // order.
  const GgufFile f = GgufFile::open(path("m.gguf"));
  EXPECT_EQ(f.get_string("general.type"), "imatrix");
  ASSERT_EQ(f.tensors().size(), 8u);
  EXPECT_EQ(f.tensors()[7].name, "blk.0.ffn_down.weight.in_pct");
  EXPECT_EQ(f.tensors()[7].ne, (std::vector<uint64_t>{2, 2}));  // [levels, cols]
  EXPECT_EQ(f.tensors()[6].name, "blk.0.ffn_down.weight.in_gram");
  EXPECT_EQ(f.tensors()[6].ne, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(f.tensors()[4].name, "blk.0.ffn_down.weight.in_absmax");
  EXPECT_EQ(f.tensors()[5].name, "blk.0.ffn_down.weight.in_hist");
  EXPECT_EQ(f.tensors()[5].type, GgmlType::kF64);
  EXPECT_EQ(f.tensors()[4].ne, (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(f.tensors()[0].name, "blk.0.attn_q.weight.in_sum2");
  EXPECT_EQ(f.tensors()[0].ne, (std::vector<uint64_t>{4, 1}));
  EXPECT_EQ(f.tensors()[1].name, "blk.0.attn_q.weight.counts");
  EXPECT_EQ(f.tensors()[1].ne, (std::vector<uint64_t>{1, 1}));
  // Another model's tensor: named.
  EXPECT_NE(message_of([&] { r.importance("blk.0.attn_q.weight", 8, "m"); }).find("another model"),
            std::string::npos);
  // Static activation scales: the largest maximum of the entry.
  EXPECT_EQ(r.input_absmax("blk.0.ffn_down.weight", 2, "m"), 1.75f);
  EXPECT_FALSE(r.input_absmax("blk.9.ffn_down.weight", 2, "m").has_value());
  EXPECT_NE(message_of([&] { r.input_absmax("blk.0.ffn_down.weight", 3, "m"); }).find("another model"),
            std::string::npos);
  EXPECT_NE(message_of([&] { r.input_absmax("blk.0.attn_q.weight", 4, "m"); }).find("no blk.0.attn_q.weight.in_absmax"),
            std::string::npos);
}

TEST_F(ImatrixFileTest, RefusesWhatIsNotAnImportanceMatrix) {
  {
    std::ofstream(path("legacy.dat"), std::ios::binary) << "\x02\x00\x00\x00garbage";
  }
  EXPECT_NE(message_of([&] { read_imatrix(path("legacy.dat")); }).find("llama-imatrix --in-file"), std::string::npos);
  {
    GgufWriter w(path("model.gguf"));
    w.add_metadata("general.type", GgufValue::of("model"));
    w.commit();
  }
  EXPECT_NE(message_of([&] { read_imatrix(path("model.gguf")); }).find("not an importance matrix"), std::string::npos);
  const auto one_tensor = [&](const std::string& file, const std::string& name, float value) {
    GgufWriter w(path(file));
    w.add_metadata("general.type", GgufValue::of("imatrix"));
    w.declare_tensor(name, {1, 1}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(size_t{0}, &value, 4);
    w.commit();
  };
  one_tensor("nocounts.gguf", "blk.0.attn_q.weight.in_sum2", 1.0f);
  EXPECT_NE(message_of([&] { read_imatrix(path("nocounts.gguf")); }).find("no .counts"), std::string::npos);
  one_tensor("onlymax.gguf", "blk.0.attn_q.weight.in_absmax", 1.0f);
  EXPECT_NE(message_of([&] { read_imatrix(path("onlymax.gguf")); }).find("no .in_sum2"), std::string::npos);
  {
    GgufWriter w(path("shortmax.gguf"));
    w.add_metadata("general.type", GgufValue::of("imatrix"));
    const float v[2] = {1.0f, 2.0f};
    w.declare_tensor("blk.0.attn_q.weight.in_sum2", {2, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.counts", {1, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.in_absmax", {1, 1}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(size_t{0}, v, 8);
    w.write_tensor_data(size_t{1}, v, 4);
    w.write_tensor_data(size_t{2}, v, 4);
    w.commit();
  }
  EXPECT_NE(message_of([&] { read_imatrix(path("shortmax.gguf")); }).find("1 maxima for 2 sums"), std::string::npos);
  Imatrix bad = sample();
  bad.entries.at("blk.0.ffn_down.weight").in_sum2[1] = std::numeric_limits<float>::quiet_NaN();
  write_imatrix(bad, path("nan.gguf"));
  EXPECT_NE(message_of([&] { read_imatrix(path("nan.gguf")); }).find("finite"), std::string::npos);
  one_tensor("onlygram.gguf", "blk.0.attn_q.weight.in_gram", 1.0f);
  EXPECT_NE(message_of([&] { read_imatrix(path("onlygram.gguf")); }).find("no .in_sum2"), std::string::npos);
  Imatrix badgram = sample();
  badgram.entries.at("blk.0.ffn_down.weight").in_gram[1] = std::numeric_limits<float>::infinity();
  write_imatrix(badgram, path("badgram.gguf"));
  EXPECT_NE(message_of([&] { read_imatrix(path("badgram.gguf")); }).find("in_gram' holds inf"), std::string::npos);
  // Percentiles need their levels, one row per level.
  Imatrix nolevels = sample();
  nolevels.column_percentile_levels = {99.0f, 99.9f, 99.99f};
  nolevels.entries.at("blk.0.ffn_down.weight").in_pct.resize(6, 2.0f);
  write_imatrix(nolevels, path("threelevels.gguf"));
  EXPECT_EQ(read_imatrix(path("threelevels.gguf")).column_percentile("blk.0.ffn_down.weight", 99.99f),
            (std::vector<float>{2.0f, 2.0f}));
  {
    GgufWriter w(path("pctnolevels.gguf"));
    w.add_metadata("general.type", GgufValue::of("imatrix"));
    const float v[2] = {1.0f, 2.0f};
    w.declare_tensor("blk.0.attn_q.weight.in_sum2", {2, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.counts", {1, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.in_pct", {2, 1}, GgmlType::kF32);
    w.begin();
    w.write_tensor_data(size_t{0}, v, 8);
    w.write_tensor_data(size_t{1}, v, 4);
    w.write_tensor_data(size_t{2}, v, 8);
    w.commit();
  }
  EXPECT_NE(message_of([&] { read_imatrix(path("pctnolevels.gguf")); }).find("lowbit.column_percentiles"),
            std::string::npos);
  one_tensor("onlypct.gguf", "blk.0.attn_q.weight.in_pct", 1.0f);
  EXPECT_NE(message_of([&] { read_imatrix(path("onlypct.gguf")); }).find("no .in_sum2"), std::string::npos);
  one_tensor("onlyhist.gguf", "blk.0.attn_q.weight.in_hist", 1.0f);
  EXPECT_NE(message_of([&] { read_imatrix(path("onlyhist.gguf")); }).find("no .in_sum2"), std::string::npos);
  // A histogram must be F64 counts of every bin, whole numbers.
  for (const double bad_count : {0.5, -1.0, 1e300}) {
    GgufWriter w(path("badhist.gguf"));
    w.add_metadata("general.type", GgufValue::of("imatrix"));
    const float v[2] = {1.0f, 2.0f};
    std::vector<double> h(AbsHistogram::kBins, 0.0);
    h[7] = bad_count;
    w.declare_tensor("blk.0.attn_q.weight.in_sum2", {2, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.counts", {1, 1}, GgmlType::kF32);
    w.declare_tensor("blk.0.attn_q.weight.in_hist", {AbsHistogram::kBins, 1}, GgmlType::kF64);
    w.begin();
    w.write_tensor_data(size_t{0}, v, 8);
    w.write_tensor_data(size_t{1}, v, 4);
    w.write_tensor_data(size_t{2}, h.data(), h.size() * 8);
    w.commit();
    EXPECT_NE(message_of([&] { read_imatrix(path("badhist.gguf")); }).find("whole non-negative"), std::string::npos);
  }
}

}  // namespace
}  // namespace lowbit

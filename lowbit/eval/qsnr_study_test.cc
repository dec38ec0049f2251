// The crest-factor sweep on data too small or too uniform for twelve bins:
// it reports the bins that have blocks, and refuses data with fewer than
// two blocks to compare rather than return an empty sweep.
#include "lowbit/eval/qsnr_study.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/eval/distributions.h"

namespace lowbit {
namespace {

StudyOptions sweep(uint64_t block = 32, int bins = 12) {
  StudyOptions o;
  o.threads = 1;
  o.sweep_crest = true;
  o.crest_block = block;
  o.crest_bins = bins;
  return o;
}

uint64_t swept_blocks(const StudyResult& r) {
  uint64_t n = 0;
  for (const auto& b : r.crest_bins) n += b.blocks;
  return n;
}

TEST(QsnrStudy, SweepOnTwoBlocksHasTwoBins) {
  const std::vector<float> x = draw_samples(parse_distribution("normal"), 64, 1, 1);
  const StudyResult r = run_qsnr_study(x, {64}, {"mxfp4", "mxint4"}, sweep());
  ASSERT_EQ(r.crest_bins.size(), 2u);
  for (const auto& b : r.crest_bins) {
    EXPECT_EQ(b.blocks, 1u);
    ASSERT_EQ(b.qsnr_db.size(), 2u);
    for (double q : b.qsnr_db) EXPECT_TRUE(std::isfinite(q)) << q;
  }
  EXPECT_LE(r.crest_bins[0].hi, r.crest_bins[1].lo);
}

TEST(QsnrStudy, SweepNeedsTwoBlocks) {
  const std::vector<float> x = draw_samples(parse_distribution("normal"), 63, 1, 1);
  try {
    (void)run_qsnr_study(x, {63}, {"mxfp4"}, sweep());
    FAIL() << "63 elements (one block of 32) gave a sweep";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("at least 2 blocks of 32"), std::string::npos) << e.what();
  }
  // Without the sweep the same data is fine.
  StudyOptions plain = sweep();
  plain.sweep_crest = false;
  EXPECT_EQ(run_qsnr_study(x, {63}, {"mxfp4"}, plain).records.size(), 1u);
}

TEST(QsnrStudy, AllZeroBlocksSitOutTheSweep) {
  // Four blocks, three of them zero: one block with a crest factor is not
  // enough; with two, both are swept and the zero blocks are not.
  std::vector<float> x(128, 0.0f);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i % 7) - 3;
  EXPECT_THROW((void)run_qsnr_study(x, {128}, {"mxfp4"}, sweep()), Error);
  for (int i = 64; i < 96; ++i) x[i] = static_cast<float>(i % 5) - 2;
  const StudyResult r = run_qsnr_study(x, {128}, {"mxfp4"}, sweep());
  EXPECT_EQ(swept_blocks(r), 2u);
  for (const auto& b : r.crest_bins) EXPECT_GT(b.lo, 0);
}

TEST(QsnrStudy, EqualCrestFactorsLeaveNoEmptyBins) {
  // Blocks of one element all have crest factor 1, and a repeated block
  // gives the same crest factor everywhere: one bin, not eleven empty ones
  // reported with an infinite QSNR.
  const std::vector<float> x = draw_samples(parse_distribution("normal"), 96, 2, 1);
  const StudyResult ones = run_qsnr_study(x, {96}, {"mxfp4"}, sweep(1));
  ASSERT_EQ(ones.crest_bins.size(), 1u);
  EXPECT_EQ(ones.crest_bins[0].blocks, 96u);
  std::vector<float> rep;
  for (int k = 0; k < 40; ++k) rep.insert(rep.end(), x.begin(), x.begin() + 32);
  rep.insert(rep.end(), x.begin() + 32, x.begin() + 64);  // one different block
  const StudyResult r = run_qsnr_study(rep, {rep.size()}, {"mxfp4", "int4/g32"}, sweep());
  EXPECT_EQ(swept_blocks(r), 41u);
  EXPECT_LE(r.crest_bins.size(), 2u);
  for (const auto& b : r.crest_bins) {
    EXPECT_GT(b.blocks, 0u);
    for (double q : b.qsnr_db) EXPECT_TRUE(std::isfinite(q)) << q;
  }
}

TEST(QsnrStudy, BinsCountEveryBlockOnce) {
  const std::vector<float> x = draw_samples(parse_distribution("student-t:3"), 32 * 1000, 3, 1);
  const StudyResult r = run_qsnr_study(x, {x.size()}, {"mxfp4"}, sweep(32, 12));
  ASSERT_EQ(r.crest_bins.size(), 12u);
  EXPECT_EQ(swept_blocks(r), 1000u);
  for (size_t k = 1; k < r.crest_bins.size(); ++k) EXPECT_EQ(r.crest_bins[k - 1].hi, r.crest_bins[k].lo);
}

}  // namespace
}  // namespace lowbit

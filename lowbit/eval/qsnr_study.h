// The QSNR study: quantize one data set with many schemes and compare their
// error at their exact bits per element, as the INT-vs-FP literature does.
//
// Optionally, a crest-factor sweep: the data is cut into blocks of
// `crest_block` consecutive elements, blocks are binned by their crest
// factor (max |x| / RMS), and each scheme's QSNR is reported per bin. That
// shows where integer elements overtake floating-point ones as blocks get
// flatter (lower crest), the crossover the INT-vs-FP study plots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/quant/error_stats.h"

namespace lowbit {

struct StudyRecord {
  std::string scheme;        // as given
  std::string spec;          // canonical expansion
  double bits_per_element = 0;
  ErrorStats error;
  double seconds = 0;        // quantize + dequantize time
};

struct CrestBin {
  double lo = 0, hi = 0;     // crest factor range
  uint64_t blocks = 0;
  std::vector<double> qsnr_db;  // per scheme, in study order
};

struct StudyResult {
  std::vector<uint64_t> shape;
  std::vector<StudyRecord> records;
  CrestStats crest;                 // over blocks of crest_block elements
  std::vector<CrestBin> crest_bins; // when a sweep was asked for
};

// The fewest blocks (with a crest factor) a crest sweep runs on.
inline constexpr uint64_t kMinCrestSweepBlocks = 2;

struct StudyOptions {
  int threads = 0;
  bool sweep_crest = false;
  uint64_t crest_block = 32;
  int crest_bins = 12;  // at most; fewer when there are fewer blocks, or equal crest factors
};

// Throws Error(kInput) when a crest sweep is asked for and the data has
// fewer than kMinCrestSweepBlocks blocks with a crest factor.
StudyResult run_qsnr_study(const std::vector<float>& x, const std::vector<uint64_t>& shape,
                           const std::vector<std::string>& schemes, const StudyOptions& opt);

}  // namespace lowbit

#include "lowbit/eval/kl_divergence.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxCtx = int64_t{1} << 24;

void put_float(uint16_t* at, float v) { std::memcpy(at, &v, sizeof v); }
float get_float(const uint16_t* at) {
  float v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// llama.cpp's mean and its standard error over `count` values.
std::pair<double, double> mean_and_uncertainty(double sum, double sum2, int64_t count) {
  if (count < 1) return {0.0, 0.0};
  const double f = sum / static_cast<double>(count);
  double df = sum2 / static_cast<double>(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.0;
  return {f, df};
}

double covariance(double suma, double sumb, double sumab, int64_t count) {
  if (count < 10) return 0.0;
  const double n = static_cast<double>(count);
  return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

// Linear interpolation between the sorted values, as llama.cpp.
double percentile(const std::vector<float>& sorted, float fraction) {
  if (sorted.empty()) return 0.0;
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  float p = fraction * static_cast<float>(sorted.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<float>(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

double median(const std::vector<float>& sorted) {
  if (sorted.empty()) return 0.0;
  const size_t n = sorted.size();
  return n % 2 == 0 ? 0.5f * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
}

}  // namespace

double encode_log_probs(const float* logits, int64_t n_vocab, int32_t target, uint16_t* row) {
  float max_logit = logits[0], min_logit = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  // Only the 16 nats below the top are kept; lower ones are coded as 0.
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  put_float(row, scale);
  put_float(row + 2, min_log_prob);
  uint16_t* q = row + 4;
  if (scale != 0) {
    const float inv_scale = 1 / scale;
    for (int64_t i = 0; i < n_vocab; ++i) {
      // Round to nearest even (llama.cpp's nearest_int trick does the same).
      q[i] = logits[i] > min_logit ? static_cast<uint16_t>(std::nearbyint(inv_scale * (logits[i] - min_logit))) : 0;
    }
  } else {
    std::fill(q, q + n_vocab, uint16_t{0});
  }
  std::fill(q + n_vocab, row + kld_row_size(n_vocab), uint16_t{0});  // the padding
  return static_cast<double>(max_logit) + log_sum_exp - logits[target];
}

TokenKld compare_log_probs(const float* logits, int64_t n_vocab, const uint16_t* base_row, int32_t target) {
  float max_logit = logits[0];
  int64_t imax = 0;
  for (int64_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float scale = get_float(base_row), min_log_prob = get_float(base_row + 2);
  const uint16_t* q = base_row + 4;

  TokenKld t;
  t.nll = max_logit + log_sum_exp - logits[target];
  t.nll_base = -(scale * q[target] + min_log_prob);
  const float log_norm = max_logit + log_sum_exp;
  double sum = 0;
  int64_t imax_base = -1;
  float p_log_base_max = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const float p_log_base = scale * q[i] + min_log_prob;
    if (i == 0 || p_log_base > p_log_base_max) {
      p_log_base_max = p_log_base;
      imax_base = i;
    }
    // Terms below -16 nats are below the base row's resolution: left out.
    if (p_log_base > -16.f) {
      const float p_base = std::exp(p_log_base);
      sum += p_base * (p_log_base - logits[i] + log_norm);
    }
  }
  t.kld = sum;
  t.same_top = imax == imax_base;
  t.p_diff = std::exp(-t.nll) - std::exp(-t.nll_base);
  return t;
}

void KldStats::add(const TokenKld& t) {
  sum_nll += t.nll;
  sum_nll2 += t.nll * t.nll;
  sum_nll_base += t.nll_base;
  sum_nll_base2 += t.nll_base * t.nll_base;
  sum_nll_nll_base += t.nll * t.nll_base;
  sum_kld += t.kld;
  sum_kld2 += t.kld * t.kld;
  sum_p_diff += t.p_diff;
  const double p_diff2 = t.p_diff * t.p_diff;
  sum_p_diff2 += p_diff2;
  sum_p_diff4 += p_diff2 * p_diff2;
  max_p_diff = std::max(max_p_diff, std::fabs(t.p_diff));
  same_top += t.same_top;
  ++count;
  kld_values.push_back(static_cast<float>(t.kld));
  p_diff_values.push_back(t.p_diff);
}

KldSummary summarize(const KldStats& s) {
  KldSummary r;
  r.tokens = s.count;
  const auto log_ppl = mean_and_uncertainty(s.sum_nll, s.sum_nll2, s.count);
  r.ppl = std::exp(log_ppl.first);
  r.ppl_error = r.ppl * log_ppl.second;
  const auto log_ppl_base = mean_and_uncertainty(s.sum_nll_base, s.sum_nll_base2, s.count);
  r.ppl_base = std::exp(log_ppl_base.first);
  r.ppl_base_error = r.ppl_base * log_ppl_base.second;
  const double cov = covariance(s.sum_nll, s.sum_nll_base, s.sum_nll_nll_base, s.count);
  r.ln_ppl_ratio = log_ppl.first - log_ppl_base.first;
  r.ln_ppl_ratio_error =
      std::sqrt(std::max(0.0, log_ppl.second * log_ppl.second + log_ppl_base.second * log_ppl_base.second - 2 * cov));
  const double ppl_cov = r.ppl * r.ppl_base * cov;
  r.ppl_diff = r.ppl - r.ppl_base;
  r.ppl_diff_error =
      std::sqrt(std::max(0.0, r.ppl_error * r.ppl_error + r.ppl_base_error * r.ppl_base_error - 2 * ppl_cov));
  const auto kld = mean_and_uncertainty(s.sum_kld, s.sum_kld2, s.count);
  r.kld_mean = kld.first;
  r.kld_mean_error = kld.second;
  std::vector<float> sorted = s.kld_values;
  std::sort(sorted.begin(), sorted.end());
  r.kld_median = median(sorted);
  r.kld_p90 = percentile(sorted, 0.90f);
  r.kld_p95 = percentile(sorted, 0.95f);
  r.kld_p99 = percentile(sorted, 0.99f);
  r.kld_p999 = percentile(sorted, 0.999f);
  r.kld_max = sorted.empty() ? 0.0 : sorted.back();
  r.kld_min = sorted.empty() ? 0.0 : sorted.front();
  if (s.count > 0) {
    r.same_top = static_cast<double>(s.same_top) / static_cast<double>(s.count);
    r.same_top_error = s.count > 1 ? std::sqrt(r.same_top * (1 - r.same_top) / static_cast<double>(s.count - 1)) : 0.0;
  }
  r.p_diff_mean = mean_and_uncertainty(s.sum_p_diff, s.sum_p_diff2, s.count).first;
  r.p_diff_rms = std::sqrt(std::max(0.0, mean_and_uncertainty(s.sum_p_diff2, s.sum_p_diff4, s.count).first));
  r.p_diff_max = s.max_p_diff;
  return r;
}

// ------------------------------------------------------------ base files

KldBaseReader::KldBaseReader(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) fail_io(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  const auto bad = [&](const std::string& why) -> Error {
    return Error(ErrorKind::kInput, fmt::format("'{}' is not a llama.cpp KL-divergence base file: {}", path, why));
  };
  char magic[8];
  uint32_t n_ctx = 0;
  int32_t n_vocab = 0, n_chunk = 0;
  if (std::fread(magic, 1, 8, f_) != 8 || std::memcmp(magic, kMagic, 8) != 0) throw bad("it does not start with _logits_");
  if (std::fread(&n_ctx, 4, 1, f_) != 1 || std::fread(&n_vocab, 4, 1, f_) != 1 || std::fread(&n_chunk, 4, 1, f_) != 1) {
    throw bad("the header is truncated");
  }
  if (n_ctx < 2 || n_ctx > kMaxCtx) throw bad(fmt::format("context {} is out of range", n_ctx));
  if (n_vocab < 1 || n_vocab > kMaxVocab) throw bad(fmt::format("vocabulary size {} is out of range", n_vocab));
  if (n_chunk < 0) throw bad(fmt::format("chunk count {} is negative", n_chunk));
  n_ctx_ = n_ctx;
  n_vocab_ = n_vocab;
  n_chunk_ = n_chunk;
  // The size is known from the header: check it before reading anything
  // large, so a truncated file fails at once and a forged count allocates
  // nothing.
  const uint64_t expected = 20 + 4 * static_cast<uint64_t>(n_ctx_) * n_chunk_ +
                            2 * static_cast<uint64_t>(rows_per_chunk()) * kld_row_size(n_vocab_) * n_chunk_;
  std::error_code ec;
  const uint64_t actual = std::filesystem::file_size(path, ec);
  if (ec) fail_io(fmt::format("cannot read '{}': {}", path, ec.message()));
  if (actual != expected) {
    throw bad(fmt::format("its header ({} chunks of {} tokens, {} in the vocabulary) needs {} bytes, the file has {}",
                          n_chunk_, n_ctx_, n_vocab_, expected, actual));
  }
  tokens_.resize(static_cast<size_t>(n_ctx_ * n_chunk_));
  if (std::fread(tokens_.data(), 4, tokens_.size(), f_) != tokens_.size()) throw bad("the tokens are truncated");
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] < 0 || tokens_[i] >= n_vocab_) {
      throw bad(fmt::format("token {} at position {} is outside the vocabulary", tokens_[i], i));
    }
  }
}

KldBaseReader::~KldBaseReader() {
  if (f_) std::fclose(f_);
}

void KldBaseReader::read_chunk(std::vector<uint16_t>& rows) {
  if (next_chunk_ >= n_chunk_) fail_internal("KldBaseReader: no chunk left");
  rows.resize(static_cast<size_t>(rows_per_chunk() * kld_row_size(n_vocab_)));
  if (std::fread(rows.data(), 2, rows.size(), f_) != rows.size()) {
    throw Error(ErrorKind::kInput, fmt::format("'{}': chunk {} is truncated", path_, next_chunk_ + 1));
  }
  ++next_chunk_;
}

struct KldBaseWriter::Impl {
  AtomicFile file;
  int64_t row_values = 0;
  int64_t chunks_left = 0;
  explicit Impl(const std::string& path) : file(path) {}
};

KldBaseWriter::KldBaseWriter(const std::string& path, int64_t n_ctx, int64_t n_vocab, std::span<const int32_t> tokens)
    : impl_(std::make_unique<Impl>(path)) {
  if (n_ctx < 2 || n_ctx > kMaxCtx || n_vocab < 1 || n_vocab > kMaxVocab || tokens.size() % n_ctx != 0) {
    fail_internal("KldBaseWriter: bad header");
  }
  const uint32_t ctx32 = static_cast<uint32_t>(n_ctx);
  const int32_t vocab32 = static_cast<int32_t>(n_vocab);
  const int32_t chunks32 = static_cast<int32_t>(tokens.size() / n_ctx);
  impl_->file.write(kMagic, 8);
  impl_->file.write(&ctx32, 4);
  impl_->file.write(&vocab32, 4);
  impl_->file.write(&chunks32, 4);
  impl_->file.write(tokens.data(), tokens.size() * 4);
  impl_->row_values = (n_ctx - 1 - n_ctx / 2) * kld_row_size(n_vocab);
  impl_->chunks_left = chunks32;
}

KldBaseWriter::~KldBaseWriter() = default;

void KldBaseWriter::write_chunk(std::span<const uint16_t> rows) {
  if (impl_->chunks_left <= 0 || static_cast<int64_t>(rows.size()) != impl_->row_values) {
    fail_internal("KldBaseWriter: chunk of the wrong size or one too many");
  }
  impl_->file.write(rows.data(), rows.size() * 2);
  --impl_->chunks_left;
}

void KldBaseWriter::commit() {
  if (impl_->chunks_left != 0) fail_internal("KldBaseWriter: chunks missing");
  impl_->file.commit();
}

}  // namespace lowbit

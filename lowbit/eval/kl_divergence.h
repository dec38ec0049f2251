// KL divergence of a model's next-token distributions to a reference
// model's, with the statistics `llama-perplexity --kl-divergence` prints,
// and llama.cpp's KL-divergence base file, so that either tool can supply
// the reference logits.
//
// The base file (written by `llama-perplexity --kl-divergence-base F`, read
// by `--kl-divergence`), little-endian:
//   "_logits_"                  8 bytes
//   n_ctx                       uint32
//   n_vocab, n_chunk            int32, int32
//   tokens                      int32[n_chunk * n_ctx]  (as tokenized; BOS not substituted)
//   per chunk, per scored row   (n_ctx - 1 - n_ctx/2 rows: positions n_ctx/2 .. n_ctx-2)
//     scale, min_log_prob       float32, float32
//     q[n_vocab]                uint16, padded to an even count
// with log p[i] = scale * q[i] + min_log_prob: the log-softmax over the
// 16 nats below the top logit quantized to 16 bits (q = 0 also for every
// logit below that range). Row size nv = 2*((n_vocab+1)/2) + 4 uint16s.
//
// The per-token computation follows llama.cpp's (float for the
// log-probabilities, the exp sum in double; the base row's terms below
// -16 nats left out), so lowbit's numbers match llama.cpp's on the same
// logits; see docs/evaluation.md. Statistics are sums over tokens added in
// token order: the same for every thread count.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

// uint16s per row of the base file.
inline int64_t kld_row_size(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

// Encodes one row of logits as llama.cpp does (row holds kld_row_size
// uint16s), returning the NLL of `target` (as llama.cpp's ppl accumulates).
double encode_log_probs(const float* logits, int64_t n_vocab, int32_t target, uint16_t* row);

// One token's comparison: KL(base || model) and the probability change of
// the target token, and whether the two argmaxes agree.
struct TokenKld {
  double kld = 0;
  float p_diff = 0;
  float nll = 0, nll_base = 0;
  bool same_top = false;
};
TokenKld compare_log_probs(const float* logits, int64_t n_vocab, const uint16_t* base_row, int32_t target);

// Sums over tokens (mergeable), and the values for the percentiles.
struct KldStats {
  double sum_nll = 0, sum_nll2 = 0, sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_nll_base = 0;
  double sum_kld = 0, sum_kld2 = 0, sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
  float max_p_diff = 0;
  int64_t same_top = 0, count = 0;
  std::vector<float> kld_values, p_diff_values;

  void add(const TokenKld& t);
};

// What llama-perplexity prints, computed from the sums as it does.
struct KldSummary {
  int64_t tokens = 0;
  double ppl = 0, ppl_error = 0, ppl_base = 0, ppl_base_error = 0;
  double ln_ppl_ratio = 0, ln_ppl_ratio_error = 0;
  double ppl_diff = 0, ppl_diff_error = 0;  // PPL(Q) - PPL(base) and its standard error (95%: ×1.96)
  double kld_mean = 0, kld_mean_error = 0;
  double kld_median = 0, kld_p90 = 0, kld_p95 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0, kld_min = 0;
  double same_top = 0, same_top_error = 0;  // fraction
  double p_diff_mean = 0, p_diff_rms = 0, p_diff_max = 0;
};
KldSummary summarize(const KldStats& s);

// A base file being read, chunk by chunk (it can be large: 8k scored
// tokens of a 49k-token vocabulary are 800 MB).
class KldBaseReader {
 public:
  // kInput for a file that is not a base file or is truncated; kIo if it
  // cannot be opened.
  explicit KldBaseReader(const std::string& path);
  ~KldBaseReader();
  KldBaseReader(const KldBaseReader&) = delete;
  KldBaseReader& operator=(const KldBaseReader&) = delete;

  int64_t n_ctx() const noexcept { return n_ctx_; }
  int64_t n_vocab() const noexcept { return n_vocab_; }
  int64_t n_chunk() const noexcept { return n_chunk_; }
  const std::vector<int32_t>& tokens() const noexcept { return tokens_; }
  int64_t rows_per_chunk() const noexcept { return n_ctx_ - 1 - n_ctx_ / 2; }
  // The next chunk's rows (rows_per_chunk() * kld_row_size(n_vocab)).
  void read_chunk(std::vector<uint16_t>& rows);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t n_ctx_ = 0, n_vocab_ = 0, n_chunk_ = 0, next_chunk_ = 0;
  std::vector<int32_t> tokens_;
};

// Writes a base file: the header at construction, then one chunk of rows
// at a time; commit() makes it visible (atomic rename), and a writer
// destroyed before commit() leaves nothing.
class KldBaseWriter {
 public:
  KldBaseWriter(const std::string& path, int64_t n_ctx, int64_t n_vocab, std::span<const int32_t> tokens);
  ~KldBaseWriter();
  KldBaseWriter(const KldBaseWriter&) = delete;
  KldBaseWriter& operator=(const KldBaseWriter&) = delete;
  void write_chunk(std::span<const uint16_t> rows);
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit

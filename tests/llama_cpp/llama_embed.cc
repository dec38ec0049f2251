// lowbit-llama-embed: sentence embeddings from llama.cpp, the peer that
// tests/python/test_bert_gguf.py compares `lowbit embed` against. The
// vendored llama.cpp source has no llama-embedding (no examples/ folder),
// so this small driver uses llama.h's public API only:
//
//   lowbit-llama-embed -m model.gguf -f lines.txt -o out.f32 [-t threads] [-b batch]
//                      [--max-tokens N] [--no-normalize]
//
// Each line is tokenized with llama_tokenize (add_special: [CLS] ... [SEP]),
// cut to --max-tokens as sentence-transformers cuts to max_seq_length (the
// first N-1 tokens and the final [SEP]), and encoded in batches of up to
// `batch` sentences, one sequence id each, pooled as the file's
// bert.pooling_type says. The Normalize module of a sentence-transformers
// pipeline has no GGUF key, so the driver L2-normalizes unless told not to
// (llama-embedding's default, --embd-normalize 2, does the same).
//
// Output: raw little-endian float32, one row of n_embd per line, in order.
// stderr gets "lines dim seconds" where seconds covers tokenizing and
// encoding (not loading), for the speed comparison in docs/embeddings.md.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "lowbit-llama-embed: %s\n", msg.c_str());
  std::exit(1);
}

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, input_path, output_path;
  int threads = 2, batch = 32, max_tokens = 0;
  bool normalize = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "-m") model_path = value();
    else if (a == "-f") input_path = value();
    else if (a == "-o") output_path = value();
    else if (a == "-t") threads = std::atoi(value().c_str());
    else if (a == "-b") batch = std::atoi(value().c_str());
    else if (a == "--max-tokens") max_tokens = std::atoi(value().c_str());
    else if (a == "--no-normalize") normalize = false;
    else die("unknown argument " + a);
  }
  if (model_path.empty() || input_path.empty() || output_path.empty()) {
    die("usage: lowbit-llama-embed -m model.gguf -f lines.txt -o out.f32 [-t N] [-b N] [--max-tokens N] [--no-normalize]");
  }
  if (threads < 1 || batch < 1 || batch > 256) die("-t must be >= 1 and -b in 1..256");

  std::vector<std::string> lines;
  {
    std::ifstream in(input_path);
    if (!in) die("cannot read " + input_path);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
  }

  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
  if (!model) die("cannot load " + model_path);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_embd = llama_model_n_embd(model);

  // One physical batch holds a whole logical batch: an encoder sees all of
  // a sequence's tokens at once.
  constexpr uint32_t kMaxBatchTokens = 16384;
  llama_context_params cp = llama_context_default_params();
  cp.embeddings = true;
  cp.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED;  // the file's
  cp.n_ctx = kMaxBatchTokens;
  cp.n_batch = kMaxBatchTokens;
  cp.n_ubatch = kMaxBatchTokens;
  cp.n_seq_max = static_cast<uint32_t>(batch);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) die("cannot create a context");
  if (llama_pooling_type(ctx) == LLAMA_POOLING_TYPE_NONE) die("the model has no pooling type");

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<llama_token>> tokens(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& s = lines[i];
    std::vector<llama_token> t(s.size() + 8);
    int n = llama_tokenize(vocab, s.data(), static_cast<int32_t>(s.size()), t.data(), static_cast<int32_t>(t.size()),
                           /*add_special=*/true, /*parse_special=*/false);
    if (n < 0) {
      t.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab, s.data(), static_cast<int32_t>(s.size()), t.data(), static_cast<int32_t>(t.size()),
                         true, false);
    }
    if (n < 0) die("tokenizing line " + std::to_string(i + 1) + " failed");
    t.resize(static_cast<size_t>(n));
    if (max_tokens >= 2 && static_cast<int>(t.size()) > max_tokens) {
      const llama_token last = t.back();
      t.resize(static_cast<size_t>(max_tokens));
      t.back() = last;
    }
    if (t.size() > kMaxBatchTokens) die("line " + std::to_string(i + 1) + " has too many tokens");
    tokens[i] = std::move(t);
  }

  std::vector<float> out(lines.size() * static_cast<size_t>(n_embd));
  llama_batch b = llama_batch_init(static_cast<int32_t>(kMaxBatchTokens), 0, batch);
  for (size_t start = 0; start < lines.size();) {
    b.n_tokens = 0;
    size_t end = start;
    while (end < lines.size() && end - start < static_cast<size_t>(batch) &&
           b.n_tokens + tokens[end].size() <= kMaxBatchTokens) {
      const llama_seq_id seq = static_cast<llama_seq_id>(end - start);
      for (size_t p = 0; p < tokens[end].size(); ++p) {
        const int k = b.n_tokens++;
        b.token[k] = tokens[end][p];
        b.pos[k] = static_cast<llama_pos>(p);
        b.n_seq_id[k] = 1;
        b.seq_id[k][0] = seq;
        b.logits[k] = true;
      }
      ++end;
    }
    if (llama_encode(ctx, b) != 0) die("llama_encode failed");
    for (size_t i = start; i < end; ++i) {
      const float* e = llama_get_embeddings_seq(ctx, static_cast<llama_seq_id>(i - start));
      if (!e) die("no embedding for line " + std::to_string(i + 1));
      double norm = 0;
      for (int j = 0; j < n_embd; ++j) norm += static_cast<double>(e[j]) * e[j];
      const double scale = normalize && norm > 0 ? 1.0 / std::sqrt(norm) : 1.0;
      for (int j = 0; j < n_embd; ++j) out[i * n_embd + j] = static_cast<float>(e[j] * scale);
    }
    start = end;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  llama_batch_free(b);

  std::ofstream o(output_path, std::ios::binary);
  o.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  if (!o) die("cannot write " + output_path);
  std::fprintf(stderr, "%zu %d %.6f\n", lines.size(), n_embd, seconds);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}

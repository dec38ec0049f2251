#include "tools/lowbit/quantize_eval.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string_view>

#include "lowbit/core/error.h"
#include "lowbit/eval/corpus.h"
#include "lowbit/eval/embedding_eval.h"
#include "lowbit/eval/kld_eval.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "tools/lowbit/embedding_model.h"

namespace lowbit::cli {
namespace fs = std::filesystem;

nlohmann::ordered_json ModelQuality::to_json() const {
  if (kind == "language") {
    return {{"kind", kind},       {"corpus", "kjv"},           {"scored_tokens", tokens}, {"ppl", ppl},
            {"ppl_base", ppl_base}, {"kld_mean", kld_mean},    {"same_top", same_top},   {"seconds", seconds}};
  }
  return {{"kind", kind},
          {"corpus", "kjv-web"},
          {"sentences", sentences},
          {"cosine_mean", cosine_mean},
          {"cosine_worst", cosine_worst},
          {"recall_at_1", recall_at_1},
          {"recall_at_1_base", recall_at_1_base},
          {"seconds", seconds}};
}

namespace {

// "language", "embedding" or "" from the input's own description.
std::string model_kind(const Checkpoint& in) {
  if (in.container() == Container::kGguf) {
    const GgufFile& g = *in.gguf();
    return g.find("general.architecture") && g.get_string("general.architecture") == "llama" ? "language" : "";
  }
  std::ifstream f(fs::path(in.directory()) / "config.json");
  if (!f) return "";
  nlohmann::json cfg;
  try {
    f >> cfg;
  } catch (const nlohmann::json::exception&) {
    return "";
  }
  const std::string type = cfg.value("model_type", "");
  if (type == "llama") return "language";
  if (type == "bert") return "embedding";
  return "";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct QuantizeEvaluator::Impl {
  std::string in_path, kind;
  QuantizeEvalSettings settings;
  int threads = 1;
  // Language models.
  std::optional<LlamaModel> base_lm;
  std::vector<int32_t> tokens;
  int32_t bos = -1;
  // Embedding models.
  std::vector<VersePair> pairs;
  std::vector<std::string_view> sentences;  // the KJV verses, then the WEB ones
  std::vector<float> base_embeddings;
  int64_t dim = 0;
  double recall_base = -1;
};

QuantizeEvaluator::QuantizeEvaluator(const std::string& in_path, const Checkpoint& in, bool gguf_output,
                                     const QuantizeEvalSettings& settings, int threads)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.in_path = in_path;
  m.settings = settings;
  m.threads = threads;
  m.kind = model_kind(in);
  if (m.kind.empty()) {
    fail_usage(fmt::format("--eval runs Llama decoders (GGUF or a Hugging Face directory) and BERT sentence "
                           "encoders; '{}' is neither",
                           in_path));
  }
  if (m.kind == "language" && in.container() == Container::kGguf && !gguf_output) {
    fail_usage("--eval of a GGUF language model needs GGUF output: lowbit runs a compressed-tensors checkpoint "
               "only with a Hugging Face config.json");
  }
  if (m.kind == "embedding" && gguf_output) {
    fail_usage("--eval of an embedding model needs safetensors output: lowbit runs BERT from safetensors");
  }
  // The corpora are checked now, before any quantization.
  if (m.kind == "language") {
    (void)find_corpus("kjv");
    const std::string text = read_corpus("kjv");
    const std::unique_ptr<Tokenizer> tok = load_tokenizer(in_path);
    // Only the chunks used are needed: a prefix of the text that surely
    // holds them (a token is at least one byte, at most ~20 here).
    const size_t need = static_cast<size_t>(settings.ctx * settings.chunks);
    const std::string_view prefix(text.data(), std::min(text.size(), need * 32));
    m.tokens = tok->encode(prefix, /*add_special=*/true);
    m.bos = tok->adds_bos() ? tok->bos_id() : -1;
    if (m.tokens.size() < need) fail_internal("quantize --eval: the kjv prefix is too short");
    m.tokens.resize(need);
  } else {
    m.pairs = read_verse_pairs();
    if (static_cast<int64_t>(m.pairs.size()) < settings.pairs) fail_input("the kjv-web corpus is shorter than expected");
    m.pairs.resize(static_cast<size_t>(settings.pairs));
    for (const VersePair& p : m.pairs) m.sentences.push_back(p.kjv);
    for (const VersePair& p : m.pairs) m.sentences.push_back(p.web);
  }
}

QuantizeEvaluator::~QuantizeEvaluator() = default;

const std::string& QuantizeEvaluator::kind() const noexcept { return impl_->kind; }

ModelQuality QuantizeEvaluator::evaluate(const std::string& out_path) {
  Impl& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  ModelQuality q;
  q.kind = m.kind;
  if (m.kind == "language") {
    if (!m.base_lm) m.base_lm.emplace(LlamaModel::load(m.in_path, m.threads));
    const LlamaModel out = LlamaModel::load(out_path, m.threads);
    const LlamaModel* models[] = {&out};
    KldEvalOptions o;
    o.ctx = m.settings.ctx;
    o.bos = m.bos;
    o.threads = m.threads;
    const KldEvalResult r = kl_divergence(*m.base_lm, models, m.tokens, o, nullptr);
    const KldSummary s = summarize(r.models[0]);
    q.ppl = s.ppl;
    q.ppl_base = s.ppl_base;
    q.kld_mean = s.kld_mean;
    q.same_top = s.same_top;
    q.tokens = s.tokens;
  } else {
    const int64_t n = static_cast<int64_t>(m.pairs.size());
    if (m.base_embeddings.empty()) {
      const Checkpoint ck = open_embedding_checkpoint(m.in_path, "lowbit quantize --eval");
      const EmbeddingModel base(ck, m.in_path, m.threads);
      m.dim = base.dim();
      m.base_embeddings = base.embed(m.sentences, 32, m.threads);
      const std::vector<int64_t> ranks =
          retrieval_ranks(m.base_embeddings.data() + n * m.dim, m.base_embeddings.data(), n, m.dim, m.threads);
      m.recall_base = retrieval_stats(ranks).recall_at_1;
    }
    const Checkpoint ck = open_embedding_checkpoint(out_path, "lowbit quantize --eval");
    const EmbeddingModel model(ck, out_path, m.threads);
    const std::vector<float> e = model.embed(m.sentences, 32, m.threads);
    const CosineStats c = row_cosines(e.data(), m.base_embeddings.data(), 2 * n, m.dim);
    const std::vector<int64_t> ranks = retrieval_ranks(e.data() + n * m.dim, e.data(), n, m.dim, m.threads);
    q.cosine_mean = c.mean();
    q.cosine_worst = c.min;
    q.recall_at_1 = retrieval_stats(ranks).recall_at_1;
    q.recall_at_1_base = m.recall_base;
    q.sentences = 2 * n;
  }
  q.seconds = seconds_since(t0);
  return q;
}

}  // namespace lowbit::cli

// `lowbit eval embed BASE [MODEL...] [--pairs N|all] [--threads N]
//  [--batch N] [--json]`: how faithfully each MODEL (a quantized copy of
// BASE, say) reproduces BASE's sentence embeddings, and how well each one
// finds paraphrases, on the KJV/WEB verse pairs (lowbit/eval/corpus.h).
//
// The sentences: the first N pairs of the kjv-web corpus (a fixed prefix,
// Genesis 1:1 onward; default 2000), each pair a King James verse and the
// same verse in the World English Bible. Every model embeds the N KJV
// verses and the N WEB verses with its own pipeline, as two inputs, each in
// batches of --batch from its start: exactly the bytes `lowbit embed --file`
// gives for the same lines and --batch.
//
// Fidelity (MODEL rows): the cosine of MODEL's and BASE's embedding of the
// same sentence over all 2N sentences, its mean and its worst, named.
// Retrieval (every row): each WEB verse is a query, all N KJV verses the
// candidates, ranked by cosine (ties toward the lower index); recall@1,
// recall@10 and MRR (lowbit/eval/embedding_eval.h). All in double with a
// fixed order: the numbers are bit-identical for every thread count.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/eval/corpus.h"
#include "lowbit/eval/embedding_eval.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/embedding_model.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

constexpr const char* kCommand = "lowbit eval embed";

struct EvalEmbedArgs {
  std::string base;
  std::vector<std::string> models;
  std::string pairs = "2000";
  int64_t batch = 32;
  bool json = false;
  ThreadsFlag threads;
};

// --pairs: "all" or a whole number from 1 to the corpus's count.
size_t parse_pairs(const std::string& text, size_t available) {
  if (text == "all") return available;
  size_t n = 0;
  bool ok = !text.empty() && text.size() <= 9;
  for (const char c : text) ok = ok && c >= '0' && c <= '9';
  if (ok) n = std::stoul(text);
  if (!ok || n == 0) fail_usage(fmt::format("--pairs {}: give a positive count or 'all'", quote_untrusted(text)));
  if (n > available) {
    fail_usage(fmt::format("--pairs {}: the kjv-web corpus has {} verse pairs (--pairs all takes them all)", n,
                           available));
  }
  return n;
}

// Progress on stderr while a model embeds: redrawn in place on a terminal,
// a plain line every 10 seconds otherwise, and one summary line per model.
class EmbedProgress {
 public:
  EmbedProgress(std::string label, size_t total)
      : label_(std::move(label)), total_(total), tty_(::isatty(2) != 0),
        start_(std::chrono::steady_clock::now()), last_(start_) {}
  void update(size_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(tty_ ? 500 : 10000)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "%s%s: %s: %zu/%zu sentences, %.0f sentences/s%s", tty_ ? "\r\033[K" : "", kCommand,
                 label_.c_str(), done, total_, secs > 0 ? done / secs : 0.0, tty_ ? "" : "\n");
  }
  double finish() {
    const double secs = seconds();
    std::fprintf(stderr, "%s%s: %s: %zu sentences embedded in %.2f s (%.1f sentences/s)\n", tty_ ? "\r\033[K" : "",
                 kCommand, label_.c_str(), total_, secs, secs > 0 ? total_ / secs : 0.0);
    return secs;
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string label_;
  size_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

// One model's results; fidelity only for the models compared with BASE.
struct ModelResult {
  std::string name, path;
  int64_t dim = 0;
  bool normalized = false;
  std::optional<CosineStats> fidelity;
  RetrievalStats retrieval;
  double seconds = 0;
};

// The embeddings of the 2N sentences, [2N, dim]: the N KJV verses, then the
// N WEB verses, each list embedded as its own input.
std::vector<float> embed_pairs(const EmbeddingModel& model, const std::string& label,
                               const std::vector<std::string_view>& kjv, const std::vector<std::string_view>& web,
                               size_t batch, int threads, double& seconds) {
  const size_t n = kjv.size();
  EmbedProgress progress(label, 2 * n);
  std::vector<float> all = model.embed(kjv, batch, threads, [&](size_t done) { progress.update(done); });
  const std::vector<float> w = model.embed(web, batch, threads, [&](size_t done) { progress.update(n + done); });
  all.insert(all.end(), w.begin(), w.end());
  seconds = progress.finish();
  return all;
}

ModelResult evaluate(const EmbeddingModel& model, const std::string& name, const std::vector<float>& emb,
                     const std::vector<float>* base, size_t n, int threads, double seconds) {
  ModelResult r;
  r.name = name;
  r.path = model.path();
  r.dim = model.dim();
  r.normalized = model.pipeline().normalize;
  r.seconds = seconds;
  const int64_t rows = static_cast<int64_t>(n);
  if (base) r.fidelity = row_cosines(emb.data(), base->data(), 2 * rows, r.dim);
  // Queries: the WEB rows; candidates: the KJV rows.
  const std::vector<int64_t> ranks = retrieval_ranks(emb.data() + rows * r.dim, emb.data(), rows, r.dim, threads);
  r.retrieval = retrieval_stats(ranks);
  return r;
}

// The sentence at index i of the 2N: "Genesis 3:4 (WEB)".
std::string sentence_name(const std::vector<VersePair>& pairs, size_t n, int64_t i) {
  const size_t k = static_cast<size_t>(i);
  return k < n ? pairs[k].reference + " (KJV)" : pairs[k - n].reference + " (WEB)";
}

void print(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

std::string report_json(const std::vector<ModelResult>& results, const std::vector<VersePair>& pairs, size_t n,
                        int64_t batch, int threads) {
  auto retrieval = [](nlohmann::ordered_json& j, const RetrievalStats& s) {
    j["recall_at_1"] = s.recall_at_1;
    j["recall_at_10"] = s.recall_at_10;
    j["mrr"] = s.mrr;
  };
  const ModelResult& b = results.front();
  nlohmann::ordered_json base = {{"model", b.name}, {"path", b.path}, {"dim", b.dim}, {"normalized", b.normalized}};
  retrieval(base, b.retrieval);
  base["seconds"] = b.seconds;
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  for (size_t m = 1; m < results.size(); ++m) {
    const ModelResult& r = results[m];
    const CosineStats& f = *r.fidelity;
    const size_t w = static_cast<size_t>(f.argmin);
    const VersePair& wp = pairs[w < n ? w : w - n];
    nlohmann::ordered_json j = {{"model", r.name},
                                {"path", r.path},
                                {"dim", r.dim},
                                {"normalized", r.normalized},
                                {"mean_cosine", f.mean()},
                                {"min_cosine", f.min},
                                {"worst_sentence",
                                 {{"index", f.argmin},
                                  {"reference", wp.reference},
                                  {"translation", w < n ? "kjv" : "web"},
                                  {"text", w < n ? wp.kjv : wp.web}}}};
    retrieval(j, r.retrieval);
    j["delta_recall_at_1"] = r.retrieval.recall_at_1 - b.retrieval.recall_at_1;
    j["delta_mrr"] = r.retrieval.mrr - b.retrieval.mrr;
    j["seconds"] = r.seconds;
    models.push_back(std::move(j));
  }
  nlohmann::ordered_json j = {{"corpus", "kjv-web"},
                              {"pairs", n},
                              {"first", pairs.front().reference},
                              {"last", pairs[n - 1].reference},
                              {"sentences", 2 * n},
                              {"queries", "web"},
                              {"candidates", "kjv"},
                              {"ties", "lower index first"},
                              {"batch", batch},
                              {"threads", threads},
                              {"base", std::move(base)},
                              {"models", std::move(models)}};
  return j.dump() + "\n";
}

std::string report_table(const std::vector<ModelResult>& results, const std::vector<VersePair>& pairs, size_t n) {
  size_t width = 5;
  for (const ModelResult& r : results) width = std::max(width, r.name.size());
  std::string out = fmt::format("{} verse pairs (kjv-web, {} to {}): WEB verses query the KJV verses\n", n,
                                pairs.front().reference, pairs[n - 1].reference);
  out += fmt::format("{:<{}}  {:>5}  {:>10}  {:>10}  {:>8}  {:>9}  {:>8}  {:>9}\n", "model", width, "dim",
                     "mean cos", "worst cos", "recall@1", "recall@10", "MRR", "Δrecall@1");
  const RetrievalStats& b = results.front().retrieval;
  for (size_t m = 0; m < results.size(); ++m) {
    const ModelResult& r = results[m];
    const RetrievalStats& s = r.retrieval;
    if (m == 0) {
      out += fmt::format("{:<{}}  {:>5}  {:>10}  {:>10}  {:>8.4f}  {:>9.4f}  {:>8.4f}  {:>9}\n", r.name, width,
                         r.dim, "(base)", "", s.recall_at_1, s.recall_at_10, s.mrr, "");
    } else {
      out += fmt::format("{:<{}}  {:>5}  {:>10.8f}  {:>10.6f}  {:>8.4f}  {:>9.4f}  {:>8.4f}  {:>+9.4f}\n", r.name,
                         width, r.dim, r.fidelity->mean(), r.fidelity->min, s.recall_at_1, s.recall_at_10, s.mrr,
                         s.recall_at_1 - b.recall_at_1);
    }
  }
  for (size_t m = 1; m < results.size(); ++m) {
    const ModelResult& r = results[m];
    out += fmt::format("worst sentence of {}: {}, cosine {:.6f}\n", r.name,
                       sentence_name(pairs, n, r.fidelity->argmin), r.fidelity->min);
  }
  return out;
}

void run_eval_embed(const EvalEmbedArgs& a) {
  if (a.batch < 1) fail_usage(fmt::format("--batch must be at least 1, not {}", a.batch));
  const int threads = a.threads.resolve();
  std::vector<VersePair> pairs = read_verse_pairs();
  if (pairs.empty()) fail_input("the kjv-web corpus holds no verse pairs");
  const size_t n = parse_pairs(a.pairs, pairs.size());
  pairs.resize(n);
  const VerseLines lines = verse_lines(pairs);
  const std::vector<std::string_view>& kjv = lines.kjv;
  const std::vector<std::string_view>& web = lines.web;

  // Every model is opened and its config and pipeline read before any is
  // run, so that a GGUF, a non-BERT model or a width other than BASE's is
  // refused at once, not after BASE's minutes of embedding.
  std::vector<std::string> names{a.base};
  names.insert(names.end(), a.models.begin(), a.models.end());
  std::vector<std::string> paths;
  std::vector<Checkpoint> checkpoints;
  int64_t base_dim = 0;
  for (const std::string& name : names) {
    paths.push_back(resolve_installed_model(name).value_or(name));
    checkpoints.push_back(open_embedding_checkpoint(paths.back(), kCommand));
    const std::string& dir = checkpoints.back().directory();
    const BertConfig config = load_bert_config(dir);
    const int64_t dim = load_sentence_pipeline(dir, config).pooling.count() * config.hidden_size;
    if (paths.size() == 1) base_dim = dim;
    if (dim != base_dim) {
      fail_input(fmt::format("'{}' gives embeddings of {} dimensions, BASE '{}' of {}: there is nothing to compare",
                             paths.back(), dim, paths[0], base_dim));
    }
  }

  const size_t batch = static_cast<size_t>(a.batch);
  std::vector<ModelResult> results;
  std::vector<float> base;
  for (size_t m = 0; m < names.size(); ++m) {
    const EmbeddingModel model(checkpoints[m], paths[m], threads);
    double seconds = 0;
    std::vector<float> emb = embed_pairs(model, names[m], kjv, web, batch, threads, seconds);
    results.push_back(evaluate(model, names[m], emb, m == 0 ? nullptr : &base, n, threads, seconds));
    if (m == 0) base = std::move(emb);
  }
  print(a.json ? report_json(results, pairs, n, a.batch, threads) : report_table(results, pairs, n));
}

}  // namespace

Action add_eval_embed_subcommand(CLI::App& eval) {
  auto a = std::make_shared<EvalEmbedArgs>();
  auto* cmd = eval.add_subcommand(
      "embed", "Embedding fidelity to a base model and paraphrase retrieval on the KJV/WEB verse pairs");
  cmd->add_option("BASE", a->base, "the reference model: an installed model (minilm) or a BERT model directory")
      ->required();
  cmd->add_option("MODEL", a->models, "models to compare with BASE (quantized copies of it, say)");
  cmd->add_option("--pairs", a->pairs,
                  "use the first N verse pairs, Genesis 1:1 onward (default 2000), or 'all' (31,094)")
      ->type_name("N|all");
  a->threads.add_to(cmd);
  cmd->add_option("--batch", a->batch, "sentences per forward pass (default 32, as lowbit embed)");
  cmd->add_flag("--json", a->json, "print one JSON object with full-precision numbers");
  cmd->footer(
      "Example: lowbit eval embed minilm minilm-int4/ --pairs 2000\n"
      "Fidelity: cosine of MODEL's and BASE's embedding of each of the 2N sentences (mean, worst). Retrieval: "
      "each WEB verse queries the N KJV verses by cosine, ties to the lower index; recall@1, recall@10, MRR "
      "(docs/embeddings.md).");
  return [a] { run_eval_embed(*a); };
}

}  // namespace lowbit::cli

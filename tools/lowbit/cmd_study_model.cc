// `lowbit study model MODEL --weights A,B,... --acts A,B,... --kv A,B,...
//  (--corpus NAME | --text FILE) [--ctx N] [--chunks N] [--calib FILE]
//  [--plot FILE.svg] [--json] [--threads N]`: every combination of a
// weight scheme, an activation setting and a KV-cache setting, measured by
// the KL divergence to the model as loaded, its perplexity and top-1
// agreement (lowbit/pipeline/model_study.h).
//
// Settings are checked against the model before any forward runs. An
// activation setting "<scheme>@static" takes per-tensor scales from
// --calib (a file of lowbit calibrate). KV specs are split on commas like
// the other lists; the parts of one spec (k=...,v=...,window=N,reorder)
// stay together. The SVG plots mean KLD against bits per weight, each
// combination a labelled point, with the Pareto front drawn as a line.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/calib/imatrix_file.h"
#include "lowbit/calib/static_scale.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/eval/corpus.h"
#include "lowbit/eval/svg_plot.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/pipeline/model_study.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/embedding_model.h"
#include "tools/lowbit/eval_inputs.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {
namespace {

struct StudyModelArgs {
  std::string model, weights = "none", acts = "none", kv = "none", attn = "none", text_file, corpus, calib, plot;
  int64_t ctx = 512, chunks = -1, pairs = 1000, batch = 32;
  bool json = false;
  ThreadsFlag threads;
};

std::vector<std::string> split_list(const std::string& s, const char* flag, bool kv) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? s.size() + 1 : comma + 1;
    if (item.empty()) fail_usage(fmt::format("{} has an empty entry in '{}'", flag, s));
    // The later parts of a KV spec belong to the k= before them.
    const bool continues = kv && !out.empty() && out.back().starts_with("k=") &&
                           (item.starts_with("v=") || item.starts_with("window=") || item == "reorder");
    if (continues) {
      out.back() += "," + item;
    } else {
      out.push_back(item);
    }
  }
  return out;
}

std::string short_label(const ModelStudyRow& r) {
  std::string label = r.weights == "none" ? "W-" : "W:" + r.weights;
  if (r.acts != "none") label += " A:" + r.acts;
  if (r.kv != "none") label += " KV:" + r.kv;
  return label;
}

void run_study_decoder(const StudyModelArgs& a, const std::string& path, ModelStudySpec spec);

void write_stdout(const std::string& out) {
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

// The plot both kinds of model draw: one labelled point per combination,
// the Pareto front as a line.
void write_plot(const std::string& path, PlotSpec p, const ModelStudyResult& r, const std::vector<double>& xs,
                const std::vector<double>& ys, const std::vector<size_t>& front) {
  for (size_t i = 0; i < r.rows.size(); ++i) {
    PlotSeries s;
    s.label = short_label(r.rows[i]);
    s.x = {xs[i]};
    s.y = {ys[i]};
    p.series.push_back(std::move(s));
  }
  PlotSeries f;
  f.label = "Pareto front";
  f.line = true;
  for (size_t i : front) {
    f.x.push_back(xs[i]);
    f.y.push_back(ys[i]);
  }
  p.series.push_back(std::move(f));
  const std::string svg = render_svg_plot(p);
  write_file_atomic(path, svg.data(), svg.size());
}

// An embedding model on the kjv-web verse pairs: fidelity to the model as
// loaded and paraphrase retrieval (WEB verse -> its KJV verse).
void run_study_encoder(const StudyModelArgs& a, const std::string& path, ModelStudySpec spec) {
  if (!a.text_file.empty() || !a.corpus.empty()) {
    fail_usage(fmt::format("'{}' is an embedding model: it is studied on the kjv-web verse pairs (--pairs N), "
                           "not on --text or --corpus",
                           a.model));
  }
  if (a.pairs < 1) fail_usage(fmt::format("--pairs {}: give a positive count", a.pairs));
  if (a.batch < 1) fail_usage(fmt::format("--batch {}: give a positive count", a.batch));
  std::vector<VersePair> pairs = read_verse_pairs();
  if (static_cast<int64_t>(pairs.size()) < a.pairs) {
    fail_usage(fmt::format("--pairs {}: the kjv-web corpus has {} verse pairs", a.pairs, pairs.size()));
  }
  pairs.resize(static_cast<size_t>(a.pairs));
  const VerseLines lines = verse_lines(pairs);
  const std::vector<std::string_view>& kjv = lines.kjv;
  const std::vector<std::string_view>& web = lines.web;
  const Checkpoint ck = open_embedding_checkpoint(path, "lowbit study model");
  const EmbeddingModel em(ck, path, spec.threads);
  const std::vector<std::vector<int32_t>> candidates = em.tokenize(kjv, spec.threads);
  const std::vector<std::vector<int32_t>> queries = em.tokenize(web, spec.threads);
  std::fprintf(stderr, "%zu combinations over %zu verse pairs\n", spec.weights.size() * spec.acts.size(), kjv.size());
  const ModelStudyResult r =
      study_encoder(em.model(), em.pipeline(), queries, candidates, static_cast<size_t>(a.batch), spec);

  std::vector<double> xs, ys;
  for (const ModelStudyRow& row : r.rows) {
    xs.push_back(row.bits_per_weight);
    ys.push_back(1.0 - row.cosine_mean);
  }
  const std::vector<size_t> front = pareto_front(xs, ys);
  std::vector<bool> on_front(r.rows.size());
  for (size_t i : front) on_front[i] = true;
  if (!a.plot.empty()) {
    PlotSpec p;
    p.title = fmt::format("{}: embedding fidelity to the model as loaded ({} kjv-web pairs)", a.model, a.pairs);
    p.x_label = "bits per weight (encoder layers, with scales)";
    p.y_label = "1 - mean cosine";
    write_plot(a.plot, p, r, xs, ys, front);
  }
  if (a.json) {
    nlohmann::ordered_json j = {{"study", "model"}, {"model", path}, {"attn", a.attn}, {"kind", "embedding"},
                                {"pairs", a.pairs}, {"threads", spec.threads}, {"seconds", r.seconds},
                                {"rows", nlohmann::ordered_json::array()}};
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const ModelStudyRow& row = r.rows[i];
      j["rows"].push_back({{"weights", row.weights},
                           {"acts", row.acts},
                           {"bits_per_weight", row.bits_per_weight},
                           {"bits_per_act", row.bits_per_act},
                           {"cosine_mean", row.cosine_mean},
                           {"cosine_min", row.cosine_min},
                           {"recall_at_1", row.recall_at_1},
                           {"mrr", row.mrr},
                           {"pareto", static_cast<bool>(on_front[i])}});
    }
    write_stdout(j.dump() + "\n");
    return;
  }
  std::string out = fmt::format("{} on {} kjv-web pairs, {:.1f} s\n", path, a.pairs, r.seconds);
  out += fmt::format("{:<16} {:<20} {:>6} {:>6} {:>12} {:>12} {:>9} {:>8}  {}\n", "weights", "acts", "b/w", "b/a",
                     "mean cos", "worst cos", "recall@1", "MRR", "pareto");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const ModelStudyRow& row = r.rows[i];
    out += fmt::format("{:<16} {:<20} {:>6.3f} {:>6.2f} {:>12.6f} {:>12.6f} {:>8.2f}% {:>8.4f}  {}\n", row.weights,
                       row.acts, row.bits_per_weight, row.bits_per_act, row.cosine_mean, row.cosine_min,
                       100 * row.recall_at_1, row.mrr, on_front[i] ? "*" : "");
  }
  write_stdout(out);
}

void run_study_model(const StudyModelArgs& a) {
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  if (!a.plot.empty()) {
    std::vector<NamedPath> inputs{{"MODEL", path}};
    if (!a.text_file.empty()) inputs.push_back({"--text", a.text_file});
    if (!a.calib.empty()) inputs.push_back({"--calib", a.calib});
    check_paths(inputs, {{"--plot", a.plot}});
    check_output_file("--plot", a.plot);
  }
  ModelStudySpec spec;
  spec.weights = split_list(a.weights, "--weights", false);
  spec.acts = split_list(a.acts, "--acts", false);
  spec.kv = split_list(a.kv, "--kv", true);
  spec.attn = a.attn;
  spec.ctx = a.ctx;
  spec.max_chunks = a.chunks;
  spec.threads = a.threads.resolve();
  if (!a.calib.empty()) spec.static_amax = static_amax_from(std::make_shared<const Imatrix>(read_imatrix(a.calib)), a.calib);
  spec.on_chunk = [](int64_t done, int64_t chunks, double seconds) {
    std::fprintf(stderr, "\r[%lld/%lld] %.1f s, ETA %.0f s  ", static_cast<long long>(done),
                 static_cast<long long>(chunks), seconds, seconds / static_cast<double>(done) * static_cast<double>(chunks - done));
    if (done == chunks) std::fputc('\n', stderr);
  };
  if (is_bert_directory(path)) return run_study_encoder(a, path, std::move(spec));
  run_study_decoder(a, path, std::move(spec));
}

void run_study_decoder(const StudyModelArgs& a, const std::string& path, ModelStudySpec spec) {
  if (a.text_file.empty() == a.corpus.empty()) fail_usage("give the text with --text FILE or --corpus NAME (one of them)");
  if (a.ctx < 2) fail_usage(fmt::format("--ctx {}: give at least 2 tokens", a.ctx));
  if (a.chunks == 0 || a.chunks < -1) fail_usage(fmt::format("--chunks {}: give a positive count", a.chunks));
  const std::string text = evaluation_text(a.text_file, a.corpus);
  const LlamaWithTokenizer loaded = load_llama_with_tokenizer(path, spec.threads);
  const std::vector<int32_t> tokens = loaded.tokenizer->encode(text, /*add_special=*/true);
  spec.bos = loaded.tokenizer->adds_bos() ? loaded.tokenizer->bos_id() : -1;
  const size_t combos = spec.weights.size() * spec.acts.size() * spec.kv.size();
  int64_t chunks = static_cast<int64_t>(tokens.size()) / a.ctx;
  if (a.chunks > 0) chunks = std::min(chunks, a.chunks);
  std::fprintf(stderr, "%zu combinations over %lld chunks of %lld tokens (of %zu in the text)\n", combos,
               static_cast<long long>(chunks), static_cast<long long>(a.ctx), tokens.size());
  const ModelStudyResult r = study_model(loaded.model, tokens, spec);

  std::vector<double> xs, ys;
  for (const ModelStudyRow& row : r.rows) {
    xs.push_back(row.bits_per_weight);
    ys.push_back(row.quality.kld_mean);
  }
  const std::vector<size_t> front = pareto_front(xs, ys);
  std::vector<bool> on_front(r.rows.size());
  for (size_t i : front) on_front[i] = true;

  if (!a.plot.empty()) {
    PlotSpec p;
    p.title = fmt::format("{}: KL divergence to the model as loaded ({} chunks of {})", a.model, r.chunks, r.ctx);
    p.x_label = "bits per weight (decoder blocks, with scales)";
    p.y_label = "mean KLD";
    write_plot(a.plot, p, r, xs, ys, front);
  }

  std::string out;
  if (a.json) {
    nlohmann::ordered_json j = {{"study", "model"}, {"model", path}, {"attn", a.attn}, {"ctx", r.ctx},
                                {"chunks", r.chunks}, {"threads", spec.threads}, {"seconds", r.seconds},
                                {"rows", nlohmann::ordered_json::array()}};
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const ModelStudyRow& row = r.rows[i];
      j["rows"].push_back({{"weights", row.weights},
                           {"acts", row.acts},
                           {"kv", row.kv},
                           {"bits_per_weight", row.bits_per_weight},
                           {"bits_per_act", row.bits_per_act},
                           {"kv_bytes_per_token", row.kv_bytes_per_token},
                           {"kld_mean", row.quality.kld_mean},
                           {"kld_mean_error", row.quality.kld_mean_error},
                           {"kld_p99", row.quality.kld_p99},
                           {"ppl", row.quality.ppl},
                           {"ppl_base", row.quality.ppl_base},
                           {"same_top", row.quality.same_top},
                           {"pareto", static_cast<bool>(on_front[i])}});
    }
    out = j.dump() + "\n";
  } else {
    out = fmt::format("{} over {} chunks of {} tokens, {:.1f} s; reference PPL {:.4f}{}\n", path, r.chunks, r.ctx,
                      r.seconds, r.rows.empty() ? 0.0 : r.rows.front().quality.ppl_base,
                      a.attn == "none" ? std::string() : "; attention operands " + a.attn);
    out += fmt::format("{:<16} {:<20} {:<18} {:>6} {:>6} {:>9} {:>18} {:>10} {:>8}  {}\n", "weights", "acts", "kv",
                       "b/w", "b/a", "KV B/tok", "mean KLD", "PPL", "top-1", "pareto");
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const ModelStudyRow& row = r.rows[i];
      out += fmt::format("{:<16} {:<20} {:<18} {:>6.3f} {:>6.2f} {:>9.1f} {:>18} {:>10.4f} {:>7.2f}%  {}\n",
                         row.weights, row.acts, row.kv, row.bits_per_weight, row.bits_per_act,
                         row.kv_bytes_per_token,
                         fmt::format("{:.6f}±{:.6f}", row.quality.kld_mean, row.quality.kld_mean_error),
                         row.quality.ppl, 100 * row.quality.same_top, on_front[i] ? "*" : "");
    }
  }
  write_stdout(out);
}

}  // namespace

Action add_study_model_subcommand(CLI::App& study) {
  auto a = std::make_shared<StudyModelArgs>();
  auto* m = study.add_subcommand("model", "Every weight x activation x KV-cache setting on a language model: KLD, PPL, "
                                          "top-1 against the model as loaded");
  m->add_option("MODEL", a->model, "an installed model (smollm2), a .gguf or a Hugging Face Llama")->required();
  m->add_option("--weights", a->weights, "comma-separated weight schemes for the decoder blocks, or none (default none)");
  m->add_option("--acts", a->acts,
                "comma-separated Linear-input settings: none, a scheme (dynamic scales), or <scheme>@static[:rule] "
                "(per-tensor scale from --calib; rule absmax (default), percentile:<p>, mse or kl) (default none)");
  m->add_option("--kv", a->kv, "comma-separated KV-cache specs: none, int8, fp8, kivi4, kivi2, bfp8, bfp4, or "
                               "k=<scheme>[@<group>],v=<scheme>[,window=<n>][,reorder] (default none)");
  m->add_option("--attn", a->attn,
                "one scheme for every attention operand (Q, K, the softmax output P, V; rows are tokens, or query "
                "rows for P) in all combinations, e.g. e4m3fn/channel (default none)");
  m->add_option("--text", a->text_file, "evaluation text file");
  m->add_option("--corpus", a->corpus, corpus_option_help());
  m->add_option("--ctx", a->ctx, "tokens per chunk (default 512)");
  m->add_option("--chunks", a->chunks, "evaluate at most N chunks (default: all)");
  m->add_option("--pairs", a->pairs, "embedding models: kjv-web verse pairs to embed (default 1000)");
  m->add_option("--batch", a->batch, "embedding models: sentences per batch (default 32)");
  m->add_option("--calib", a->calib, "calibration file of lowbit calibrate, for @static settings");
  m->add_option("--plot", a->plot, "write an SVG: mean KLD against bits per weight, with the Pareto front");
  m->add_flag("--json", a->json, "print one JSON object");
  a->threads.add_to(m);
  m->footer("Example: lowbit study model smollm2 --corpus kjv --chunks 16 --weights int4/g128,mxfp4,nvfp4 "
            "--acts none,int8/channel,mxfp8_e4m3 --kv none,kivi2 --plot smollm2.svg");
  return [a] { run_study_model(*a); };
}

}  // namespace lowbit::cli

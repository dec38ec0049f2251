// `lowbit eval kld BASE [MODEL...] (--text F | --corpus NAME) [--ctx N]
//  [--chunks N] [--save-base F] [--threads N] [--json] [--plan P.json
//  [--calib F]]`: the KL divergence
// of each MODEL's next-token distributions to BASE's, with the statistics
// `llama-perplexity --kl-divergence` prints (lowbit/eval/kld_eval.h).
//
// BASE is a model (run here next to the others, chunk by chunk) or a
// llama.cpp KL-divergence base file (`llama-perplexity
// --kl-divergence-base`, or lowbit's --save-base), which carries its own
// tokens and context: --text, --corpus and --ctx are then refused.
// --save-base writes BASE's base file, readable by llama-perplexity
// --kl-divergence; with it, no MODEL is needed. --plan runs every MODEL
// (not BASE) with a quantization plan (plan_flags.h).
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/eval/kld_eval.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/eval_inputs.h"
#include "tools/lowbit/installed_models.h"
#include "tools/lowbit/plan_flags.h"

namespace lowbit::cli {
namespace {

struct KldArgs {
  std::string base;
  std::vector<std::string> models;
  std::string text_file, corpus, save_base;
  int64_t ctx = -1;  // -1: 512, or the base file's
  int64_t chunks = -1;
  bool json = false;
  ThreadsFlag threads;
  PlanFlags plan;  // applied to every MODEL, not to BASE
};

bool is_base_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[8] = {};
  const bool yes = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "_logits_", 8) == 0;
  std::fclose(f);
  return yes;
}

std::string format_table(const std::vector<std::string>& names, const std::vector<KldSummary>& s) {
  std::string out = fmt::format("{:<32} {:>16} {:>10} {:>10} {:>10} {:>9} {:>10} {:>10} {:>22}\n", "model",
                                "mean KLD", "median", "99%", "max", "same top", "PPL", "PPL base",
                                "dPPL (95%)");
  for (size_t i = 0; i < names.size(); ++i) {
    const KldSummary& r = s[i];
    std::string name = names[i];
    if (name.size() > 32) name = "..." + name.substr(name.size() - 29);
    out += fmt::format("{:<32} {:>16} {:>10.6f} {:>10.6f} {:>10.6f} {:>8.3f}% {:>10.4f} {:>10.4f} {:>22}\n", name,
                       fmt::format("{:.6f}±{:.6f}", r.kld_mean, r.kld_mean_error), r.kld_median, r.kld_p99, r.kld_max,
                       100 * r.same_top, r.ppl, r.ppl_base,
                       fmt::format("{:+.4f}±{:.4f}", r.ppl_diff, 1.96 * r.ppl_diff_error));
  }
  return out;
}

nlohmann::ordered_json summary_json(const std::string& name, const KldSummary& r) {
  return {{"model", name},
          {"tokens", r.tokens},
          {"kld_mean", r.kld_mean},
          {"kld_mean_error", r.kld_mean_error},
          {"kld_median", r.kld_median},
          {"kld_p90", r.kld_p90},
          {"kld_p95", r.kld_p95},
          {"kld_p99", r.kld_p99},
          {"kld_p999", r.kld_p999},
          {"kld_max", r.kld_max},
          {"kld_min", r.kld_min},
          {"same_top", r.same_top},
          {"same_top_error", r.same_top_error},
          {"ppl", r.ppl},
          {"ppl_error", r.ppl_error},
          {"ppl_base", r.ppl_base},
          {"ppl_base_error", r.ppl_base_error},
          {"ln_ppl_ratio", r.ln_ppl_ratio},
          {"ln_ppl_ratio_error", r.ln_ppl_ratio_error},
          {"ppl_diff", r.ppl_diff},
          {"ppl_diff_ci95", 1.96 * r.ppl_diff_error},
          {"p_diff_mean", r.p_diff_mean},
          {"p_diff_rms", r.p_diff_rms},
          {"p_diff_max", r.p_diff_max}};
}

void run_kld(const KldArgs& a) {
  const std::string base_path = resolve_installed_model(a.base).value_or(a.base);
  const bool base_is_file = is_base_file(base_path);
  if (a.models.empty() && a.save_base.empty()) {
    fail_usage("give at least one MODEL to compare with BASE, or --save-base F to write BASE's base file");
  }
  if (base_is_file) {
    if (!a.text_file.empty() || !a.corpus.empty()) {
      fail_usage(fmt::format("'{}' is a KL-divergence base file: it holds its own tokens, so --text and --corpus "
                             "do not apply",
                             a.base));
    }
    if (!a.save_base.empty()) fail_usage("--save-base needs BASE to be a model, not a base file");
  } else if (a.text_file.empty() == a.corpus.empty()) {
    fail_usage("give the text with --text FILE or --corpus NAME (one of them)");
  }
  if (a.chunks == 0 || a.chunks < -1) fail_usage(fmt::format("--chunks {}: give a positive count", a.chunks));
  std::vector<std::string> paths;
  for (const std::string& m : a.models) paths.push_back(resolve_installed_model(m).value_or(m));
  std::vector<NamedPath> inputs{{"BASE", base_path}};
  for (const std::string& p : paths) inputs.push_back({"MODEL", p});
  if (!a.text_file.empty()) inputs.push_back({"--text", a.text_file});
  a.plan.check(inputs);
  if (a.plan.given() && paths.empty()) fail_usage("--plan applies to the MODELs: give at least one");
  if (!a.save_base.empty()) {
    check_paths(inputs, {{"--save-base", a.save_base}});
    check_output_file("--save-base", a.save_base);
  }
  const int threads = a.threads.resolve();

  std::vector<LlamaModel> models;
  models.reserve(paths.size());
  // Each MODEL with the plan, resolved before any forward.
  for (const std::string& p : paths) models.push_back(a.plan.apply(LlamaModel::load(p, threads)));
  std::vector<const LlamaModel*> model_ptrs;
  for (const LlamaModel& m : models) model_ptrs.push_back(&m);

  KldEvalOptions opt;
  opt.max_chunks = a.chunks;
  opt.threads = threads;
  opt.on_chunk = [](int64_t done, int64_t chunks, double seconds) {
    std::fprintf(stderr, "\r[%lld/%lld] %.1f s, ETA %.0f s  ", static_cast<long long>(done),
                 static_cast<long long>(chunks), seconds, seconds / done * (chunks - done));
    if (done == chunks) std::fputc('\n', stderr);
  };
  KldEvalResult r;
  if (base_is_file) {
    if (a.ctx != -1) fail_usage("--ctx does not apply to a base file: it was computed with its own context");
    // The models decide BOS as llama.cpp does (the evaluated model's vocabulary).
    if (!paths.empty()) {
      const std::unique_ptr<Tokenizer> tok = load_tokenizer(paths.front());
      opt.bos = tok->adds_bos() ? tok->bos_id() : -1;
    }
    KldBaseReader reader(base_path);
    r = kl_divergence(reader, model_ptrs, opt);
  } else {
    const std::string text = evaluation_text(a.text_file, a.corpus);
    const LlamaModel base = LlamaModel::load(base_path, threads);
    const std::unique_ptr<Tokenizer> tok = load_tokenizer(base_path);
    const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true);
    opt.ctx = a.ctx == -1 ? 512 : a.ctx;
    opt.bos = tok->adds_bos() ? tok->bos_id() : -1;
    std::unique_ptr<KldBaseWriter> writer;
    if (!a.save_base.empty()) {
      const int64_t n_chunk = std::min<int64_t>(a.chunks < 0 ? INT64_MAX : a.chunks,
                                                static_cast<int64_t>(tokens.size()) / opt.ctx);
      writer = std::make_unique<KldBaseWriter>(
          a.save_base, opt.ctx, base.config().vocab_size,
          std::span<const int32_t>(tokens.data(), static_cast<size_t>(std::max<int64_t>(n_chunk, 0) * opt.ctx)));
    }
    r = kl_divergence(base, model_ptrs, tokens, opt, writer.get());
    if (writer) writer->commit();
  }

  std::vector<KldSummary> sums;
  for (const KldStats& s : r.models) sums.push_back(summarize(s));
  std::string out;
  if (a.json) {
    nlohmann::ordered_json j = {{"base", base_path},
                                {"base_is_file", base_is_file},
                                {"ctx", r.ctx},
                                {"chunks", r.chunks},
                                {"threads", threads},
                                {"seconds", r.seconds},
                                {"models", nlohmann::ordered_json::array()}};
    for (size_t i = 0; i < sums.size(); ++i) j["models"].push_back(summary_json(paths[i], sums[i]));
    if (!a.save_base.empty()) j["saved_base"] = a.save_base;
    if (a.plan.given()) j["plan"] = a.plan.describe(models.front());
    out = j.dump() + "\n";
  } else {
    out = fmt::format("KL divergence to {} over {} chunks of {} tokens ({} scored each), {:.1f} s\n", base_path,
                      r.chunks, r.ctx, r.ctx - 1 - r.ctx / 2, r.seconds);
    if (!sums.empty()) out += format_table(paths, sums);
    if (!a.save_base.empty()) out += fmt::format("base file written to {}\n", a.save_base);
    if (a.plan.given()) out += fmt::format("the models ran with plan {}\n", a.plan.plan);
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

}  // namespace

Action add_eval_kld_subcommand(CLI::App& eval) {
  auto a = std::make_shared<KldArgs>();
  auto* kld = eval.add_subcommand("kld", "KL divergence of models to a reference model or base file, as llama-perplexity");
  kld->add_option("BASE", a->base,
                  "the reference: an installed model (smollm2), a .gguf or Hugging Face Llama, or a llama.cpp "
                  "KL-divergence base file")
      ->required();
  kld->add_option("MODEL", a->models, "the models to compare with BASE");
  kld->add_option("--text", a->text_file, "the text file (one final newline is dropped, as llama.cpp does)");
  kld->add_option("--corpus", a->corpus, corpus_option_help());
  kld->add_option("--ctx", a->ctx, "tokens per chunk; the second half of each is compared (default 512)");
  kld->add_option("--chunks", a->chunks, "evaluate at most this many chunks (default: all)");
  kld->add_option("--save-base", a->save_base,
                  "write BASE's log-probabilities as a llama.cpp base file (llama-perplexity --kl-divergence reads it)");
  a->threads.add_to(kld);
  a->plan.add_to(kld);
  kld->add_flag("--json", a->json, "print one JSON object with full-precision numbers");
  kld->footer(
      "Examples:\n"
      "  lowbit eval kld smollm2 smol-q4_k.gguf --corpus kjv --chunks 32\n"
      "  lowbit eval kld smollm2 --corpus kjv --chunks 32 --save-base smol.kld   # then: llama-perplexity -m Q.gguf "
      "--kl-divergence-base smol.kld --kl-divergence\n"
      "  lowbit eval kld smol.kld smol-q4_k.gguf                                  # a base file from either tool\n"
      "Statistics and conventions: docs/evaluation.md.");
  return [a] { run_kld(*a); };
}

}  // namespace lowbit::cli

// `lowbit eval ppl MODEL (--text FILE | --corpus kjv) [--ctx N] [--chunks N]
//  [--threads N] [--json] [--save-logits F.npy] [--plan P.json [--calib F]]`: the perplexity of a Llama
// model over a text, by llama.cpp's convention (lowbit/eval/perplexity.h),
// so that the number compares with llama-perplexity's on the same file.
//
// The text is the bytes of FILE with one final '\n' removed (llama.cpp's
// -f does the same), or a named corpus: `kjv` is the King James Bible as
// the `bible` program (Debian's bible-kjv) prints it, gen1:1-rev22:21.
// A progress line per chunk goes to stderr; the result to stdout, as a
// line of text or, with --json, one JSON object with full-precision
// numbers. --save-logits writes the scored logits of every chunk as one
// float32 .npy [chunks * (ctx - 1 - ctx/2), vocab], in order: threads 1
// and threads N write the same bytes.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/npy.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/eval_inputs.h"
#include "tools/lowbit/installed_models.h"
#include "tools/lowbit/plan_flags.h"

namespace lowbit::cli {

namespace {

struct EvalArgs {
  std::string model;
  std::string text_file;
  std::string corpus;
  int64_t ctx = 512;
  int64_t chunks = -1;
  bool json = false;
  std::string save_logits;
  ThreadsFlag threads;
  PlanFlags plan;
};

void run_ppl(const EvalArgs& a) {
  if (a.text_file.empty() == a.corpus.empty()) fail_usage("give the text with --text FILE or --corpus NAME (one of them)");
  if (a.ctx < 4) fail_usage(fmt::format("--ctx {}: at least 4 tokens are needed (the second half is scored)", a.ctx));
  if (a.chunks == 0 || a.chunks < -1) fail_usage(fmt::format("--chunks {}: give a positive count", a.chunks));
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  std::vector<NamedPath> inputs{{"MODEL", path}};
  if (!a.text_file.empty()) inputs.push_back({"--text", a.text_file});
  a.plan.check(inputs);
  if (!a.save_logits.empty()) {
    if (!has_extension(a.save_logits, ".npy")) fail_usage("--save-logits writes a .npy file: give a name ending in .npy");
    check_paths(inputs, {{"--save-logits", a.save_logits}});
    check_output_file("--save-logits", a.save_logits);
  }
  const int threads = a.threads.resolve();

  const std::string text = evaluation_text(a.text_file, a.corpus);

  const auto t_load = std::chrono::steady_clock::now();
  const LlamaWithTokenizer loaded = load_llama_with_tokenizer(path, threads);
  const LlamaModel model = a.plan.apply(loaded.model);  // the plan resolved before any forward
  const Tokenizer* tok = loaded.tokenizer.get();
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true);

  PerplexityOptions opt;
  opt.ctx = a.ctx;
  opt.max_chunks = a.chunks;
  opt.bos = tok->adds_bos() ? tok->bos_id() : -1;
  opt.threads = threads;
  opt.on_chunk = [&](const PerplexityProgress& p) {
    std::fprintf(stderr, "[%lld/%lld] ppl %.4f, %.2f s, %.1f tokens/s\n", static_cast<long long>(p.chunk),
                 static_cast<long long>(p.chunks), p.so_far.perplexity(), p.seconds,
                 static_cast<double>(p.chunk * a.ctx) / p.seconds);
  };
  std::vector<float> saved;
  if (!a.save_logits.empty()) {
    opt.on_logits = [&](int64_t, const float* logits, int64_t rows, int64_t vocab) {
      saved.insert(saved.end(), logits, logits + rows * vocab);
    };
  }
  const PerplexityResult r = perplexity(model, tokens, opt);
  const double tps = static_cast<double>(r.evaluated_tokens) / r.seconds;
  if (!a.save_logits.empty()) {
    const uint64_t vocab = static_cast<uint64_t>(model.config().vocab_size);
    const std::vector<uint64_t> shape{saved.size() / vocab, vocab};
    npy_write_atomic(a.save_logits, "<f4", shape, saved.data(), saved.size() * sizeof(float));
  }

  std::string out;
  if (a.json) {
    nlohmann::ordered_json j = {
        {"model", path},
        {"ctx", a.ctx},
        {"chunks", r.chunks},
        {"text_tokens", r.text_tokens},
        {"evaluated_tokens", r.evaluated_tokens},
        {"scored_tokens", r.nll.count},
        {"add_bos", opt.bos >= 0},
        {"ppl", r.ppl},
        {"ppl_error", r.ppl_error},
        {"mean_nll", r.nll.mean()},
        {"nll_sum", r.nll.sum},
        {"threads", threads},
        {"load_seconds", load_seconds},
        {"seconds", r.seconds},
        {"tokens_per_second", tps},
    };
    if (a.plan.given()) j["plan"] = a.plan.describe(model);
    out = j.dump() + "\n";
  } else {
    out = fmt::format(
        "perplexity: {:.4f} +/- {:.5f} ({} chunks of {} tokens, {} scored; {} tokens in {:.2f} s, {:.1f} tokens/s, "
        "{} threads)\n",
        r.ppl, r.ppl_error, r.chunks, a.ctx, r.nll.count, r.evaluated_tokens, r.seconds, tps, threads);
    if (a.plan.given()) out += fmt::format("with plan {}\n", a.plan.plan);
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

}  // namespace

Action add_eval_ppl_subcommand(CLI::App& eval) {
  auto a = std::make_shared<EvalArgs>();
  auto* ppl = eval.add_subcommand("ppl", "Perplexity of a Llama model over a text, as llama-perplexity computes it");
  ppl->add_option("MODEL", a->model, "an installed model (smollm2), a .gguf file, or a Hugging Face Llama directory")
      ->required();
  ppl->add_option("--text", a->text_file, "the text file (one final newline is dropped, as llama.cpp does)");
  ppl->add_option("--corpus", a->corpus, corpus_option_help());
  ppl->add_option("--ctx", a->ctx, "tokens per chunk; the second half of each is scored (default 512)");
  ppl->add_option("--chunks", a->chunks, "evaluate at most this many chunks (default: all)");
  a->threads.add_to(ppl);
  a->plan.add_to(ppl);
  ppl->add_flag("--json", a->json, "print one JSON object with full-precision numbers");
  ppl->add_option("--save-logits", a->save_logits,
                  "write the scored logits, float32 [chunks * (ctx - 1 - ctx/2), vocab], to this .npy");
  ppl->footer(
      "Example: lowbit eval ppl smollm2 --corpus kjv --ctx 512 --chunks 20\n"
      "Chunks of ctx tokens, BOS first where the model adds BOS, the second half of each scored; the text must "
      "hold at least 2 * ctx tokens (docs/evaluation.md).");
  return [a] { run_ppl(*a); };
}

Action add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate models: perplexity, KL divergence to a reference, embeddings");
  cmd->require_subcommand(1);
  std::vector<std::pair<CLI::App*, Action>> subs;
  for (Action (*add)(CLI::App&) : {add_eval_ppl_subcommand, add_eval_kld_subcommand, add_eval_embed_subcommand}) {
    Action act = add(*cmd);
    subs.emplace_back(cmd->get_subcommands({}).back(), std::move(act));
  }
  return [subs] {
    for (const auto& [sub, act] : subs) {
      if (sub->parsed()) act();
    }
  };
}

}  // namespace lowbit::cli

// `lowbit train --config C.json -o DIR [--resume]`: train a Llama decoder
// from scratch on text files (lowbit/train/trainer.h).
//
// DIR receives checkpoint.safetensors, log.json and loss.svg, each
// replaced atomically at every checkpoint, and model.gguf (the model and
// its tokenizer, float32) at the end. A DIR that already holds any of
// them is refused unless --resume continues that run: a new run never
// writes over an old one. DIR is created if missing (its parent must
// exist). A progress line per step goes to stderr (redrawn in place on a
// terminal, one line per evaluation otherwise); the summary goes to
// stdout, one JSON object with --json.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/model/bpe_tokenizer.h"
#include "lowbit/train/bpe_trainer.h"
#include "lowbit/train/model_export.h"
#include "lowbit/train/prepared_corpus.h"
#include "lowbit/train/train_config.h"
#include "lowbit/train/trainer.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct TrainArgs {
  std::string config, out, dump_gradients;
  bool resume = false, json = false, quiet = false;
  int64_t stop_after = 0;
  ThreadsFlag threads;
};

constexpr const char* kOutputs[] = {"checkpoint.safetensors", "log.json", "loss.svg", "model.gguf"};

std::string duration_text(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

void prepare_output(const TrainArgs& a) {
  std::error_code ec;
  const fs::path out(a.out);
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    fail_usage(fmt::format("-o '{}' exists and is not a directory", a.out));
  }
  if (a.resume) {
    if (!fs::exists(out / "checkpoint.safetensors", ec)) {
      fail_usage(fmt::format("--resume: '{}' holds no checkpoint.safetensors to continue", a.out));
    }
    return;
  }
  for (const char* f : kOutputs) {
    if (fs::exists(out / f, ec)) {
      fail_usage(fmt::format("'{}' already holds {} of an earlier run; --resume continues it, or choose another "
                             "directory (lowbit never writes over a run)",
                             a.out, f));
    }
  }
  if (!fs::exists(out, ec)) {
    const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(parent, ec)) fail_io(fmt::format("cannot create '{}': its parent directory is missing", a.out));
    if (!fs::create_directory(out, ec) && ec) fail_io(fmt::format("cannot create '{}': {}", a.out, ec.message()));
  }
}

// The initial parameters, the first micro-batch, its mean loss and the
// gradient of that loss, for checking the backward pass against another
// implementation (tests/python/test_train.py does, in numpy).
void dump_gradients(Trainer& trainer, const std::string& path, int threads) {
  const TrainConfig& c = trainer.config();
  TrainableLlama& m = trainer.model();
  std::vector<int32_t> in, tg;
  training_batch(trainer.corpus().train, c.seed, 0, 0, c.batch, c.seq, in, tg);
  const double loss = m.forward(in, tg, c.batch, c.seq, threads) / static_cast<double>(c.batch * c.seq);
  std::fill(m.grads().begin(), m.grads().end(), 0.0f);
  m.backward(static_cast<float>(1.0 / static_cast<double>(c.batch * c.seq)), threads);
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> names;
  names.reserve(m.layout().tensors().size());
  for (const ParamTensor& t : m.layout().tensors()) names.push_back("grad." + t.name);
  size_t k = 0;
  for (const ParamTensor& t : m.layout().tensors()) {
    const std::vector<uint64_t> shape(t.shape.begin(), t.shape.end());
    tensors.push_back({t.name, DType::kF32, shape, m.params().data() + t.offset});
    tensors.push_back({names[k++], DType::kF32, shape, m.grads().data() + t.offset});
  }
  const std::vector<uint64_t> bshape{static_cast<uint64_t>(c.batch), static_cast<uint64_t>(c.seq)};
  tensors.push_back({"batch.inputs", DType::kI32, bshape, in.data()});
  tensors.push_back({"batch.targets", DType::kI32, bshape, tg.data()});
  write_safetensors(path, {{"loss", fmt::format("{:.17g}", loss)}, {"config", c.identity_json()}}, tensors);
  std::printf("wrote the first batch's loss %.6f and gradients to %s\n", loss, path.c_str());
}

void run_train(const TrainArgs& a) {
  if (a.out.empty() == a.dump_gradients.empty()) {
    fail_usage("give the run's directory (-o DIR), or --dump-gradients FILE to check the backward pass");
  }
  if (!a.dump_gradients.empty()) {
    check_output_file("--dump-gradients", a.dump_gradients);
    check_paths({{"--config", a.config}}, {{"--dump-gradients", a.dump_gradients}});
  }
  const int threads = a.threads.resolve();
  const std::vector<std::byte> bytes = read_file(a.config);
  const fs::path config_path(a.config);
  TrainConfig config = parse_train_config(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                          a.config, fs::absolute(config_path).parent_path().string());
  PreparedCorpus prepared = prepare_corpus(config, [&](const std::string& note) {
    if (!a.quiet) std::fprintf(stderr, "%s...\n", note.c_str());
  });
  const TrainedBpe& bpe = prepared.tokenizer;
  const size_t train_tokens = prepared.corpus.train.size(), heldout_tokens = prepared.corpus.heldout.size();
  Trainer trainer(config, std::move(prepared.corpus), threads);
  if (!a.dump_gradients.empty()) {
    dump_gradients(trainer, a.dump_gradients, threads);
    return;
  }
  prepare_output(a);
  if (!a.quiet) {
    std::fprintf(stderr, "%lld parameters; %zu training and %zu held-out tokens; %lld steps of %lld tokens\n",
                 static_cast<long long>(trainer.model().layout().count()), train_tokens, heldout_tokens,
                 static_cast<long long>(config.steps), static_cast<long long>(config.batch * config.seq * config.accum));
  }
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  trainer.run(a.out, a.resume, [&](const TrainProgress& p) {
    if (a.quiet || (!tty && !std::isfinite(p.heldout))) return;
    const std::string held = std::isfinite(p.heldout) ? fmt::format("  held-out {:.4f}", p.heldout) : "";
    std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f%s  %.0f tokens/s  ETA %s   %s", tty ? "\r" : "",
                 static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, held.c_str(),
                 p.tokens_per_second, duration_text(p.eta_seconds).c_str(), tty && p.step < p.steps ? "" : "\n");
  }, a.stop_after);
  if (trainer.log().empty()) fail_usage(fmt::format("the run in '{}' has already taken {} steps", a.out, a.stop_after));
  // The model for llama.cpp and lowbit's runtime, with its tokenizer, once
  // the run is complete.
  if (trainer.finished()) {
    export_llama_gguf((fs::path(a.out) / "model.gguf").string(), trainer.model(), bpe,
                      {{"general.name", "lowbit-lm"}, {"lowbit.train.config", config.identity_json()}});
  }
  const TrainLogRow& last = trainer.log().back();
  const double tokens_per_s = static_cast<double>(config.batch * config.seq * config.accum) *
                              static_cast<double>(trainer.log().size()) / std::max(last.seconds, 1e-9);
  if (a.json) {
    const nlohmann::json j = {{"parameters", trainer.model().layout().count()},
                              {"vocab_size", trainer.model().config().vocab_size},
                              {"steps", last.step},
                              {"train_tokens", train_tokens},
                              {"heldout_tokens", heldout_tokens},
                              {"finished", trainer.finished()},
                              {"final_loss", last.loss},
                              {"heldout_loss", last.heldout},
                              {"heldout_ppl", std::exp(last.heldout)},
                              {"output", a.out}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("trained %lld of %lld steps: held-out loss %.4f nats/token (perplexity %.2f); %s in %s%s\n",
                static_cast<long long>(last.step), static_cast<long long>(config.steps), last.heldout,
                std::exp(last.heldout), a.out.c_str(), duration_text(last.seconds).c_str(),
                trainer.finished() ? "" : " (--resume continues)");
    (void)tokens_per_s;
  }
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a Llama decoder from scratch on text files (docs/training.md)");
  cmd->add_option("--config", a->config, "the training config (JSON: model, data, train; docs/training.md)")
      ->required();
  cmd->add_option("-o,--output", a->out,
                  "the run's directory: checkpoint.safetensors, log.json, loss.svg, model.gguf (created if missing)");
  cmd->add_flag("--resume", a->resume, "continue the run in the output directory from its checkpoint");
  cmd->add_option("--stop-after", a->stop_after,
                  "stop after this many steps of the run in all (a checkpoint there; --resume continues)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dump-gradients", a->dump_gradients,
                  "instead of training, write the initial parameters, the first batch, its loss and gradients to "
                  "this safetensors file (to check the backward pass elsewhere)");
  a->threads.add_to(cmd);
  cmd->add_flag("--json", a->json, "print the summary as one JSON object");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  cmd->footer(
      "Example: lowbit train --config configs/lowbit-lm.json -o runs/lm\n"
      "A run's losses are the same bits at every thread count, and a resumed run continues exactly as the "
      "uninterrupted one would have.");
  return [a] { run_train(*a); };
}

}  // namespace lowbit::cli

// `lowbit embed MODEL (TEXT | --file F) -o OUT.npy [--threads N]
//  [--batch N] [--quiet]`: sentence embeddings from a BERT
// sentence-transformers model (lowbit/model/bert_model.h), one float32 row
// per input line, written as a .npy array of shape [lines, dim].
//
// MODEL is an installed model name (minilm) or a model directory (or its
// .safetensors file) with config.json and tokenizer.json beside it; the
// sentence-transformers files (modules.json, the pooling config,
// sentence_bert_config.json) say how to pool, whether to normalize and
// where to truncate (docs/embeddings.md).
//
// Input: TEXT is one sentence, taken as is (a newline inside it is white
// space to BERT's tokenizer). F ("-": standard input) is split at '\n', a
// final '\n' ending the last line; every line is one sentence, an empty
// line included (it embeds as [CLS] [SEP], as sentence-transformers embeds
// ""); an empty file gives a [0, dim] array. Invalid UTF-8 is refused with
// the line number: BERT's tokenizer would drop the bytes silently.
//
// Sentences run in batches of --batch lines, in input order; results are
// bit-identical for every thread count. The output is written once,
// atomically, after the last batch.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/npy.h"
#include "lowbit/core/text.h"
#include "lowbit/model/unicode.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/embedding_model.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

struct EmbedArgs {
  std::string model;
  std::string text;
  std::string file;
  std::string out;
  CLI::Option* text_option = nullptr;
  CLI::Option* file_option = nullptr;
  ThreadsFlag threads;
  int64_t batch = 32;
  bool quiet = false;
};

std::string read_input(const std::string& file) {
  if (file == "-") {
    std::string out;
    char buf[65536];
    while (size_t n = std::fread(buf, 1, sizeof buf, stdin)) out.append(buf, n);
    if (std::ferror(stdin)) fail_io("cannot read standard input");
    return out;
  }
  const std::vector<std::byte> bytes = read_file(file);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The lines of a file: split at '\n', a final '\n' ending the last line;
// no bytes, no lines.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

// Progress on stderr for long inputs: redrawn in place on a terminal,
// a plain line every 10 seconds otherwise (logs stay readable).
class Progress {
 public:
  Progress(size_t total, bool enabled)
      : total_(total), enabled_(enabled && total >= 1000), tty_(::isatty(2) != 0),
        start_(std::chrono::steady_clock::now()), last_(start_) {}
  void update(size_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(tty_ ? 500 : 10000)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "%slowbit embed: %zu/%zu lines, %.0f sentences/s%s", tty_ ? "\r\033[K" : "", done, total_,
                 secs > 0 ? done / secs : 0.0, tty_ ? "" : "\n");
  }
  void finish() {
    if (enabled_ && tty_) std::fprintf(stderr, "\r\033[K");
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  size_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

void run_embed(const EmbedArgs& a) {
  const bool has_text = a.text_option->count() > 0, has_file = a.file_option->count() > 0;
  if (has_text && has_file) fail_usage("give the text as TEXT or with --file, not both");
  if (!has_text && !has_file) fail_usage("no text: give TEXT or --file F");
  if (a.batch < 1) fail_usage(fmt::format("--batch must be at least 1, not {}", a.batch));
  check_output_file("-o", a.out);
  const int threads = a.threads.resolve();

  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  const Checkpoint ck = open_embedding_checkpoint(path, "lowbit embed");
  std::vector<NamedPath> inputs;
  for (const std::string& f : ck.files()) inputs.push_back({"MODEL", f});
  if (has_file && a.file != "-") inputs.push_back({"--file", a.file});
  check_paths(inputs, {{"-o", a.out}});

  const EmbeddingModel model(ck, path, threads);
  const SentencePipeline& pipeline = model.pipeline();
  const int64_t dim = model.dim();

  const std::string text = has_file ? read_input(a.file) : a.text;
  std::vector<std::string_view> lines;
  if (has_file) {
    lines = lines_of(text);
  } else {
    lines.push_back(text);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!unicode::is_valid_utf8(lines[i])) {
      fail_input(has_file ? fmt::format("line {} of {} is not valid UTF-8", i + 1,
                                        a.file == "-" ? std::string("standard input") : quote_untrusted(a.file))
                          : std::string("TEXT is not valid UTF-8"));
    }
  }

  Progress progress(lines.size(), !a.quiet);
  size_t truncated = 0;
  const std::vector<float> out = model.embed(lines, static_cast<size_t>(a.batch), threads,
                                             [&](size_t done) { progress.update(done); }, &truncated);
  progress.finish();
  const uint64_t shape[2] = {lines.size(), static_cast<uint64_t>(dim)};
  npy_write_atomic(a.out, "<f4", shape, out.data(), out.size() * sizeof(float));
  if (!a.quiet) {
    const double secs = progress.seconds();
    std::fprintf(stderr,
                 "lowbit embed: %zu lines -> [%zu, %lld] float32 (%s pooling%s, max_seq_length %lld%s), "
                 "%.2f s, %.1f sentences/s at %d thread%s\n",
                 lines.size(), lines.size(), static_cast<long long>(dim), pipeline.pooling.describe(),
                 pipeline.normalize ? ", normalized" : "", static_cast<long long>(pipeline.max_seq_length),
                 truncated ? fmt::format(", {} lines at the limit", truncated).c_str() : "", secs,
                 secs > 0 ? lines.size() / secs : 0.0, threads, threads == 1 ? "" : "s");
  }
}

}  // namespace

Action add_embed_command(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  auto* cmd = app.add_subcommand("embed", "Sentence embeddings from a BERT sentence-transformers model");
  cmd->add_option("MODEL", a->model,
                  "an installed model (minilm) or a model directory with config.json and tokenizer.json")
      ->required();
  a->text_option = cmd->add_option("TEXT", a->text, "one sentence, taken as is (or use --file)");
  a->file_option = cmd->add_option("--file", a->file, "one sentence per line of this file ('-': standard input)");
  cmd->add_option("-o,--output", a->out, "the .npy file to write: float32 [lines, dim]")->required();
  a->threads.add_to(cmd);
  cmd->add_option("--batch", a->batch, "sentences per forward pass (default 32)");
  cmd->add_flag("--quiet", a->quiet, "no progress and no summary on stderr");
  cmd->footer(
      "Empty lines embed as [CLS] [SEP]; lines longer than the model's max_seq_length are truncated as "
      "sentence-transformers truncates them (docs/embeddings.md).\n"
      "Examples: lowbit embed minilm \"In the beginning\" -o e.npy\n"
      "          lowbit embed minilm --file verses.txt -o verses.npy --threads 2");
  return [a] { run_embed(*a); };
}

}  // namespace lowbit::cli

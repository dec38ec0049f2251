// `lowbit calibrate MODEL (--corpus NAME | --text FILE) [--ctx N | --batch N]
//  [--tokens N | --chunks N] -o FILE [--gram] [--col-percentiles]
//  [--threads N] [--json]`: runs
// a calibration text through a Llama model (chunks of --ctx tokens) or a
// BERT encoder (one sentence per line) and writes the statistics of its
// Linears' inputs (lowbit/calib/calibrate.h) as llama.cpp's importance
// matrix file, which `llama-quantize --imatrix FILE` and lowbit's recipes
// ("importance": FILE) both read.
//
// A corpus name without a split means its calibration split (linux-doc is
// linux-doc:calib, docs/corpora.md). A progress line per chunk goes to
// stderr; the summary to stdout (one JSON object with --json). FILE is
// written whole or not at all.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/calib/calibrate.h"
#include "lowbit/core/error.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/embedding_model.h"
#include "tools/lowbit/eval_inputs.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

struct CalibrateArgs {
  std::string model, text_file, corpus, out;
  int64_t ctx = -1;    // decoders: 512 unless given; encoders take sentences
  int64_t batch = -1;  // encoders: 32 unless given
  int64_t tokens = -1, chunks = -1;
  bool json = false, gram = false, col_percentiles = false;
  ThreadsFlag threads;
};

void write_stdout(const std::string& out) {
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

void progress(int64_t done, int64_t chunks, double seconds, int64_t tokens) {
  std::fprintf(stderr, "\r[%lld/%lld] %.1f s, %.1f tokens/s, ETA %.0f s  ", static_cast<long long>(done),
               static_cast<long long>(chunks), seconds, static_cast<double>(tokens) / seconds,
               seconds / static_cast<double>(done) * static_cast<double>(chunks - done));
  if (done == chunks) std::fputc('\n', stderr);
}

// An embedding model: each non-blank line of the text is a sentence
// ([CLS] ... [SEP], truncated to the model's max_seq_length), run in
// batches of --batch sentences.
void run_calibrate_encoder(const CalibrateArgs& a, const std::string& path, const std::string& text, int threads) {
  if (a.ctx != -1) {
    fail_usage(fmt::format("'{}' is an embedding model: each line of the text is a sentence, so --ctx does not "
                           "apply (limit the text with --tokens or --chunks, batches of --batch sentences)",
                           a.model));
  }
  const int64_t batch = a.batch == -1 ? 32 : a.batch;
  const Checkpoint ck = open_embedding_checkpoint(path, "lowbit calibrate");
  const EmbeddingModel em(ck, path, threads);
  std::vector<std::string_view> lines;
  for (std::string_view rest = text; !rest.empty();) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) lines.push_back(line);
  }
  if (lines.empty()) fail_input("the calibration text has no non-blank line (an embedding model takes a sentence per line)");
  size_t truncated = 0;  // over the whole text
  std::vector<std::vector<int32_t>> sentences = em.tokenize(lines, threads, &truncated);
  if (a.tokens != -1) {
    // Whole sentences while they fit in --tokens.
    size_t keep = 0;
    for (int64_t used = 0; keep < sentences.size(); ++keep) {
      used += static_cast<int64_t>(sentences[keep].size());
      if (used > a.tokens) break;
    }
    if (keep == 0) {
      fail_usage(fmt::format("--tokens {}: the first sentence alone has {} tokens", a.tokens,
                             sentences.empty() ? 0 : sentences[0].size()));
    }
    sentences.resize(keep);
  }
  CalibrateOptions opt;
  opt.batch = batch;
  opt.max_chunks = a.chunks;
  opt.threads = threads;
  int64_t seen = 0;  // tokens of the first `next` sentences
  size_t next = 0;
  opt.on_chunk = [&](int64_t done, int64_t chunks, double seconds) {
    for (; next < std::min(static_cast<size_t>(done * batch), sentences.size()); ++next) {
      seen += static_cast<int64_t>(sentences[next].size());
    }
    progress(done, chunks, seconds, seen);
  };
  ActivationRecorder recorder({}, {.gram = a.gram, .threads = threads, .column_percentiles = a.col_percentiles});
  const CalibrateResult r = calibrate(em.model(), sentences, opt, recorder);
  const int64_t used = std::min(r.chunks * batch, static_cast<int64_t>(sentences.size()));

  const std::string dataset = a.text_file.empty() ? a.corpus : a.text_file;
  // In the imatrix metadata a chunk is a batch: chunk_size is sentences.
  const Imatrix m = to_imatrix(recorder, {dataset}, static_cast<uint32_t>(r.chunks), static_cast<uint32_t>(batch));
  write_imatrix(m, a.out);

  const double tps = static_cast<double>(r.tokens) / r.seconds;
  if (a.json) {
    nlohmann::ordered_json j = {{"model", path},        {"kind", "embedding"},     {"dataset", dataset},
                                {"output", a.out},      {"batch", batch},          {"chunks", r.chunks},
                                {"sentences", used},    {"tokens", r.tokens},      {"text_sentences", lines.size()},
                                {"text_sentences_truncated", truncated},
                                {"entries", m.entries.size()}, {"gram", a.gram},   {"column_percentiles", m.column_percentile_levels},
                                {"threads", threads},
                                {"seconds", r.seconds}, {"tokens_per_second", tps}};
    return write_stdout(j.dump() + "\n");
  }
  write_stdout(fmt::format("{}: statistics of {} Linears from {} sentences ({} tokens) of {} in {} batches ({:.1f} "
                           "s, {:.1f} tokens/s, {} threads)\n",
                           a.out, m.entries.size(), used, r.tokens, dataset, r.chunks, r.seconds, tps, threads));
}

void run_calibrate(const CalibrateArgs& a_in) {
  CalibrateArgs a = a_in;
  if (a.text_file.empty() == a.corpus.empty()) fail_usage("give the text with --text FILE or --corpus NAME (one of them)");
  if (a.ctx != -1 && a.ctx < 1) fail_usage(fmt::format("--ctx {}: give a positive number of tokens", a.ctx));
  if (a.batch != -1 && a.batch < 1) fail_usage(fmt::format("--batch {}: give a positive count", a.batch));
  if (a.tokens != -1 && a.chunks != -1) fail_usage("--tokens and --chunks both limit the text: give one of them");
  if (a.chunks == 0 || a.chunks < -1) fail_usage(fmt::format("--chunks {}: give a positive count", a.chunks));
  if (a.tokens == 0 || a.tokens < -1) fail_usage(fmt::format("--tokens {}: give a positive count", a.tokens));
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  std::vector<NamedPath> inputs{{"MODEL", path}};
  if (!a.text_file.empty()) inputs.push_back({"--text", a.text_file});
  check_paths(inputs, {{"-o", a.out}});
  check_output_file("-o", a.out);
  const int threads = a.threads.resolve();
  const bool encoder = is_bert_directory(path);
  if (!encoder) {
    if (a.batch != -1) fail_usage("--batch is for embedding models; a decoder runs chunks of --ctx tokens");
    if (a.ctx == -1) a.ctx = 512;
    if (a.tokens != -1 && a.tokens < a.ctx) {
      fail_usage(fmt::format("--tokens {}: at least one chunk of --ctx {} tokens is needed", a.tokens, a.ctx));
    }
  }

  const std::string text = calibration_text(a.text_file, a.corpus);
  if (encoder) return run_calibrate_encoder(a, path, text, threads);
  const LlamaWithTokenizer loaded = load_llama_with_tokenizer(path, threads);
  const LlamaModel& model = loaded.model;
  const Tokenizer* tok = loaded.tokenizer.get();
  const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true);

  CalibrateOptions opt;
  opt.ctx = a.ctx;
  opt.max_chunks = a.tokens != -1 ? a.tokens / a.ctx : a.chunks;
  opt.bos = tok->adds_bos() ? tok->bos_id() : -1;
  opt.threads = threads;
  opt.on_chunk = [&](int64_t done, int64_t chunks, double seconds) { progress(done, chunks, seconds, done * a.ctx); };
  ActivationRecorder recorder(ActivationRecorder::decoder_blocks(),
                              {.gram = a.gram, .threads = threads, .column_percentiles = a.col_percentiles});
  const CalibrateResult r = calibrate(model, tokens, opt, recorder);

  const std::string dataset = a.text_file.empty() ? a.corpus : a.text_file;
  const Imatrix m = to_imatrix(recorder, {dataset}, static_cast<uint32_t>(r.chunks), static_cast<uint32_t>(a.ctx));
  write_imatrix(m, a.out);

  const double tps = static_cast<double>(r.tokens) / r.seconds;
  std::string out;
  if (a.json) {
    nlohmann::ordered_json j = {{"model", path},       {"dataset", dataset},      {"output", a.out},
                                {"ctx", a.ctx},        {"chunks", r.chunks},      {"tokens", r.tokens},
                                {"text_tokens", tokens.size()}, {"entries", m.entries.size()}, {"gram", a.gram},
                                {"column_percentiles", m.column_percentile_levels},
                                {"add_bos", opt.bos >= 0}, {"threads", threads}, {"seconds", r.seconds},
                                {"tokens_per_second", tps}};
    out = j.dump() + "\n";
  } else {
    out = fmt::format("{}: importance matrix of {} Linears from {} chunks of {} tokens of {} ({:.1f} s, {:.1f} "
                      "tokens/s, {} threads)\n",
                      a.out, m.entries.size(), r.chunks, a.ctx, dataset, r.seconds, tps, threads);
  }
  write_stdout(out);
}

}  // namespace

Action add_calibrate_command(CLI::App& app) {
  auto a = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Run calibration text through a model and write the statistics of its Linears' inputs (llama.cpp's "
      "importance matrix format)");
  cmd->add_option("MODEL", a->model,
                  "an installed model (smollm2, minilm), a .gguf file, or a Hugging Face Llama or BERT directory")
      ->required();
  cmd->add_option("--text", a->text_file, "the calibration text file (one final newline is dropped)");
  cmd->add_option("--corpus", a->corpus,
                  "a named corpus instead of --text (docs/corpora.md); a name without a split means its "
                  "calibration split (linux-doc is linux-doc:calib)");
  cmd->add_option("--ctx", a->ctx, "decoders: tokens per chunk, each run from an empty cache (default 512)");
  cmd->add_option("--batch", a->batch,
                  "embedding models: sentences (non-blank lines of the text) per forward, a chunk (default 32)");
  cmd->add_option("--tokens", a->tokens, "use at most this many tokens of the text (whole chunks or sentences)");
  cmd->add_option("--chunks", a->chunks, "use at most this many chunks (default: every whole chunk)");
  cmd->add_option("-o,--output", a->out, "the importance matrix file to write (GGUF, llama.cpp's imatrix layout)")
      ->required();
  a->threads.add_to(cmd);
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_flag("--gram", a->gram,
                "also record each Linear input's Gram matrix X^T X (float64 sums, written as F32 <w>.in_gram; "
                "SmolLM2-135M: about 0.8 GB while running, 0.5 GB in the file)");
  cmd->add_flag("--col-percentiles", a->col_percentiles,
                "also record per column of each input the 99, 99.9, 99.99 and 99.999th percentiles of |x| (F32 "
                "<w>.in_pct; histograms of 8 bins per octave, about 2 KB per input column while running: 200 MB for "
                "SmolLM2-135M)");
  cmd->footer(
      "Example: lowbit calibrate smollm2 --corpus linux-doc --tokens 65536 -o smol.imatrix.gguf\n"
      "then:    llama-quantize --imatrix smol.imatrix.gguf in.gguf out.gguf Q4_K_M\n"
      "    or:  lowbit quantize smollm2 out.gguf --recipe R.json   (R.json: \"importance\": \"smol.imatrix.gguf\")\n"
      "Every position of every chunk counts; the decoder blocks' Linears are recorded, not the output head "
      "(as llama-imatrix does by default). An embedding model (minilm) takes each non-blank line as a "
      "sentence and records every encoder Linear. docs/calibration.md.");
  return [a] { run_calibrate(*a); };
}

}  // namespace lowbit::cli

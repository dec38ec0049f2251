// `lowbit generate MODEL (-p TEXT | --ids IDS) [-n N] [--temp T] [--top-k K]
//  [--seed S] [--threads N] [--json] [--timing]`: text from a Llama model.
//
// The prompt is tokenized with the model's add_special (SmolLM2 adds
// nothing), run in one batched prefill, and then one token at a time is
// chosen and run through the KV cache, N times or until the end-of-text
// token. Each new token's bytes go to stdout as soon as it is chosen
// (flushed), the prompt not repeated; the EOS token is not printed.
//
// Choice: --temp 0 (the default) is greedy, the lowest id among the
// largest logits; --temp T > 0 samples from softmax(logits / T) over the
// top K tokens (--top-k, 0 = all), with a generator that is a pure
// function of --seed and the step, so a seed gives the same text on every
// machine and at every thread count.
//
// --ids takes the prompt as token ids (as `lowbit tokenize` prints them),
// which lets a test run exactly the tokens another run produced. --json
// prints, instead of the stream, one object at the end: {"prompt_ids",
// "ids", "text"}.
//
// --timing prints to stderr the prefill rate (prompt tokens over the batched
// forward's time) and the decode rate (one-token forward passes over the
// time of the token loop, choice and output included; the last chosen token
// is not run, so -n N makes N - 1 of them), the rates bench/peer_runtime.py
// compares with llama-bench. The hidden --ignore-eos keeps generating past
// the end-of-text token, so a benchmark always runs N tokens.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/model/unicode.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string ids;
  CLI::Option* prompt_option = nullptr;
  CLI::Option* ids_option = nullptr;
  int64_t n = 64;
  double temp = 0.0;
  int64_t top_k = 0;
  bool json = false;
  bool timing = false;
  bool ignore_eos = false;
  SeedFlag seed;
  ThreadsFlag threads;
};

// SplitMix64: a uniform double in [0, 1) from the seed and the step, the
// same on every platform (std:: distributions are not).
double uniform(uint64_t seed, uint64_t step) {
  uint64_t z = seed + (step + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t argmax(const float* logits, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

int32_t sample(const float* logits, int64_t vocab, double temp, int64_t top_k, uint64_t seed, uint64_t step) {
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) order[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  // Largest first, ties by the lower id: one defined order.
  const auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const int64_t k = top_k > 0 && top_k < vocab ? top_k : vocab;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  std::vector<double> p(static_cast<size_t>(k));
  const double max = static_cast<double>(logits[order[0]]) / temp;
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    p[static_cast<size_t>(i)] = std::exp(static_cast<double>(logits[order[static_cast<size_t>(i)]]) / temp - max);
    sum += p[static_cast<size_t>(i)];
  }
  double u = uniform(seed, step) * sum;
  for (int64_t i = 0; i < k; ++i) {
    u -= p[static_cast<size_t>(i)];
    if (u < 0) return order[static_cast<size_t>(i)];
  }
  return order[static_cast<size_t>(k - 1)];
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::string word;
  const auto flush = [&] {
    if (word.empty()) return;
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) fail_usage(fmt::format("--ids: '{}' is not a token id", word));
    ids.push_back(static_cast<int32_t>(v));
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '[' || c == ']') {
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  return ids;
}

void write_out(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

void run_generate(const GenerateArgs& a) {
  const bool has_prompt = a.prompt_option->count() > 0, has_ids = a.ids_option->count() > 0;
  if (has_prompt == has_ids) fail_usage("give the prompt with -p TEXT or --ids IDS (one of them)");
  if (a.n < 1) fail_usage(fmt::format("-n {}: generate at least 1 token", a.n));
  if (!(a.temp >= 0) || !std::isfinite(a.temp)) fail_usage(fmt::format("--temp {}: give 0 (greedy) or more", a.temp));
  if (a.top_k < 0) fail_usage(fmt::format("--top-k {}: give 0 (all tokens) or more", a.top_k));
  if (has_prompt && !unicode::is_valid_utf8(a.prompt)) {
    fail_input("the prompt is not valid UTF-8 (check the terminal's or the script's encoding)");
  }
  const int threads = a.threads.resolve();
  const uint64_t seed = a.seed.value();
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  const LlamaModel model = LlamaModel::load(path, threads);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(path);
  const std::vector<int32_t> prompt = has_ids ? parse_id_list(a.ids) : tok->encode(a.prompt, /*add_special=*/true);
  if (prompt.empty()) fail_input("the prompt is empty: give at least one token to continue");
  const int64_t vocab = model.config().vocab_size;
  const int64_t want = static_cast<int64_t>(prompt.size()) + a.n;
  if (static_cast<int64_t>(prompt.size()) >= model.config().context_length) {
    fail_input(fmt::format("the prompt has {} tokens, the model's context only {}", prompt.size(),
                           model.config().context_length));
  }
  // Generation stops at the context's end.
  KvCache cache = model.new_cache(std::min(want, model.config().context_length));
  std::vector<float> logits(static_cast<size_t>(vocab));

  const auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, cache, static_cast<int64_t>(prompt.size()) - 1, logits.data(), threads);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> out_ids;
  std::string text;
  int64_t decode_forwards = 0;
  for (int64_t step = 0; step < a.n; ++step) {
    const int32_t id = a.temp == 0 ? argmax(logits.data(), vocab)
                                   : sample(logits.data(), vocab, a.temp, a.top_k, seed, static_cast<uint64_t>(step));
    if (id == tok->eos_id() && !a.ignore_eos) break;
    out_ids.push_back(id);
    const std::string piece = id < tok->vocab_size() ? tok->decode(std::span<const int32_t>(&id, 1)) : std::string();
    text += piece;
    if (!a.json) write_out(piece);
    if (step + 1 == a.n || cache.size() == cache.capacity()) break;
    model.forward(std::span<const int32_t>(&id, 1), cache, 0, logits.data(), threads);
    ++decode_forwards;
  }
  const auto t2 = std::chrono::steady_clock::now();
  if (a.json) {
    nlohmann::ordered_json j = {{"prompt_ids", prompt}, {"ids", out_ids}, {"text", text}};
    write_out(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    write_out("\n");
  }
  if (a.timing) {
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double dec = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tokens/s); decode: %lld tokens in %.3f s (%.1f tokens/s)\n",
                 prompt.size(), pre, static_cast<double>(prompt.size()) / pre,
                 static_cast<long long>(decode_forwards), dec, static_cast<double>(decode_forwards) / dec);
  }
}

}  // namespace

Action add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a Llama model, token by token");
  cmd->add_option("MODEL", a->model, "an installed model (smollm2), a .gguf file, or a Hugging Face Llama directory")
      ->required();
  a->prompt_option = cmd->add_option("-p,--prompt", a->prompt, "the prompt text (UTF-8)");
  a->ids_option = cmd->add_option("--ids", a->ids, "the prompt as token ids, separated by spaces or commas");
  cmd->add_option("-n", a->n, "tokens to generate at most (default 64)");
  cmd->add_option("--temp", a->temp, "sampling temperature; 0 (default) is greedy");
  cmd->add_option("--top-k", a->top_k, "sample among the K most likely tokens (default 0: all)");
  a->seed.add_to(cmd, "seed of the sampler (default 0)");
  a->threads.add_to(cmd);
  cmd->add_flag("--json", a->json, "print {\"prompt_ids\", \"ids\", \"text\"} at the end instead of streaming");
  cmd->add_flag("--timing", a->timing, "print prefill and decode rates to stderr");
  // For benchmarks (bench/peer_runtime.py): a fixed number of tokens.
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past the end-of-text token")->group("");
  cmd->footer("Example: lowbit generate smollm2 -p \"The capital of France is\" -n 16");
  return [a] { run_generate(*a); };
}

}  // namespace lowbit::cli

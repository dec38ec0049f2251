#include "tools/lowbit/eval_inputs.h"

#include <fmt/format.h>

#include <cstddef>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/eval/corpus.h"

namespace lowbit::cli {

namespace {

std::string input_text(const std::string& text_file, const std::string& corpus, std::string_view split) {
  std::string text;
  if (!text_file.empty()) {
    const std::vector<std::byte> bytes = read_file(text_file);
    text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    text = read_corpus(corpus, split);
  }
  // As llama.cpp's -f: one final newline is not part of the text.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.empty()) fail_input(fmt::format("the text is empty: there is nothing to {}", split == "eval" ? "evaluate" : "calibrate on"));
  return text;
}

}  // namespace

std::string evaluation_text(const std::string& text_file, const std::string& corpus) {
  return input_text(text_file, corpus, "eval");
}

std::string calibration_text(const std::string& text_file, const std::string& corpus) {
  return input_text(text_file, corpus, "calib");
}

LlamaWithTokenizer load_llama_with_tokenizer(const std::string& path, int threads) {
  LlamaWithTokenizer r{LlamaModel::load(path, threads), load_tokenizer(path)};
  if (r.tokenizer->vocab_size() > r.model.config().vocab_size) {
    fail_input(fmt::format("'{}': the tokenizer has {} tokens, the model's embeddings only {}", path,
                           r.tokenizer->vocab_size(), r.model.config().vocab_size));
  }
  return r;
}

std::string corpus_option_help() {
  std::string names;
  for (const CorpusInfo& c : corpora()) names += (names.empty() ? "" : ", ") + c.name;
  return "a named corpus instead of --text (docs/corpora.md): " + names + "; linux-doc means linux-doc:eval";
}

}  // namespace lowbit::cli

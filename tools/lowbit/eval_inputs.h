// What the `lowbit eval` subcommands share: the text to evaluate, from
// --text FILE or --corpus NAME.
#pragma once

#include <memory>
#include <string>

#include "lowbit/model/llama_model.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit::cli {

// The bytes of text_file, or the corpus's evaluation split (one of the two
// is empty), with one final newline dropped as llama.cpp's -f does.
// kInput for an empty text.
std::string evaluation_text(const std::string& text_file, const std::string& corpus);

// The same for calibration: a corpus name without a split means its
// calibration split ("linux-doc" is linux-doc:calib).
std::string calibration_text(const std::string& text_file, const std::string& corpus);

// A Llama model and its tokenizer from one path; kInput when the
// tokenizer has more tokens than the model has embeddings.
struct LlamaWithTokenizer {
  LlamaModel model;
  std::unique_ptr<Tokenizer> tokenizer;
};
LlamaWithTokenizer load_llama_with_tokenizer(const std::string& path, int threads);

// The help of --corpus, listing the corpora.
std::string corpus_option_help();

}  // namespace lowbit::cli

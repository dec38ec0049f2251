#include "tools/lowbit/eval_inputs.h"

#include <cstddef>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/eval/corpus.h"

namespace lowbit::cli {

std::string evaluation_text(const std::string& text_file, const std::string& corpus) {
  std::string text;
  if (!text_file.empty()) {
    const std::vector<std::byte> bytes = read_file(text_file);
    text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    text = read_corpus(corpus, "eval");
  }
  // As llama.cpp's -f: one final newline is not part of the text.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.empty()) fail_input("the text is empty: there is nothing to evaluate");
  return text;
}

std::string corpus_option_help() {
  std::string names;
  for (const CorpusInfo& c : corpora()) names += (names.empty() ? "" : ", ") + c.name;
  return "a named corpus instead of --text (docs/corpora.md): " + names + "; linux-doc means linux-doc:eval";
}

}  // namespace lowbit::cli

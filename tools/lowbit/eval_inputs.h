// What the `lowbit eval` subcommands share: the text to evaluate, from
// --text FILE or --corpus NAME.
#pragma once

#include <string>

namespace lowbit::cli {

// The bytes of text_file, or the corpus's evaluation split (one of the two
// is empty), with one final newline dropped as llama.cpp's -f does.
// kInput for an empty text.
std::string evaluation_text(const std::string& text_file, const std::string& corpus);

// The help of --corpus, listing the corpora.
std::string corpus_option_help();

}  // namespace lowbit::cli

// BERT's pre-tokenizer (BertPreTokenizer in a tokenizer.json): words are
// the runs between White_Space characters, and every punctuation
// character is a word of its own. Punctuation is what Hugging Face's
// `tokenizers` calls so: ASCII punctuation (which includes $ + < = > ^ `
// | ~, symbols in Unicode) or a character of General Category P*.
#pragma once

#include <string_view>
#include <vector>

namespace lowbit {

bool is_bert_punctuation(char32_t cp) noexcept;

// Appends the words of `text` (views into it), in order. A byte that is
// not valid UTF-8 counts as a word character.
void split_bert_words(std::string_view text, std::vector<std::string_view>& words);

}  // namespace lowbit

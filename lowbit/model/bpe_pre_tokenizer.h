// The pre-tokenizers of byte-level BPE: how a text is cut into words
// before BPE merges inside each word. GGUF names one in tokenizer.ggml.pre;
// lowbit implements the two regular expressions that llama.cpp (b10605)
// gives those names:
//
//   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   digits   \p{N} first, each digit its own word, then gpt2 inside the
//            text between digits (SmolLM, StarCoder...: Hugging Face's
//            Split(\p{N}, isolated) before ByteLevel)
//
// The splitter is written by hand, not run by a regex engine: RE2 (the
// project's engine) has \p{L} and \p{N} but no lookahead, which
// \s+(?!\S) needs; std::regex has neither Unicode classes nor linear time.
// Each branch below is one alternative of the expression, tried in order
// at each position, which is what a leftmost-first engine does.
//
// Character classes come from unicode.h: \p{L} and \p{N} are the General
// Categories L* and N*, \s is White_Space. A byte that is not valid UTF-8
// is one character of its own, in the class of U+FFFD ([^\s\p{L}\p{N}]),
// and keeps its byte: llama.cpp replaces it by U+FFFD before splitting, so
// the word boundaries are the same and only that word's bytes differ.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

enum class BpePreTokenizer { kGpt2, kDigitsThenGpt2 };

// The pre-tokenizer llama.cpp uses for a tokenizer.ggml.pre value, among
// those lowbit implements; nullopt otherwise.
std::optional<BpePreTokenizer> find_bpe_pre_tokenizer(std::string_view name);
// The names find_bpe_pre_tokenizer accepts, comma-separated, for messages.
std::string supported_bpe_pre_tokenizers();

// Appends the end offset of each word of `text` to `word_ends`: the words
// cover the text in order, none empty.
void split_bpe_words(std::string_view text, BpePreTokenizer kind, std::vector<size_t>& word_ends);

}  // namespace lowbit

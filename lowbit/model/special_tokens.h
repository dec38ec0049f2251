// Finding special tokens written in a text: the step before any
// pre-tokenization, which cuts the text into raw fragments and tokens.
//
// The two peers cut differently when candidates overlap, so each
// tokenizer uses its peer's rule:
//   - split_longest_first (llama.cpp, GGUF tokenizers): the candidates are
//     taken longest first (ties: lower id first; llama.cpp's unstable sort
//     leaves that order unspecified), and each one cuts every occurrence,
//     left to right, out of the raw fragments the earlier ones left;
//   - split_leftmost_longest (Hugging Face's added vocabulary): one scan
//     from the left; at each position the longest candidate that matches
//     there wins. `lstrip`/`rstrip` candidates also swallow the White_Space
//     around them.
// Both return the fragments in text order, covering the text exactly
// (except swallowed white space), with no empty raw fragments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct SpecialPattern {
  std::string text;  // empty patterns never match
  int32_t id = -1;
  bool lstrip = false, rstrip = false;  // split_leftmost_longest only
};

struct TextFragment {
  size_t begin = 0, end = 0;  // raw text: text.substr(begin, end - begin)
  int32_t token = -1;         // >= 0: a matched special token
  bool is_token() const noexcept { return token >= 0; }
};

std::vector<TextFragment> split_longest_first(std::string_view text, std::span<const SpecialPattern> patterns);
std::vector<TextFragment> split_leftmost_longest(std::string_view text, std::span<const SpecialPattern> patterns);

}  // namespace lowbit

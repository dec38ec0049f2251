#include "lowbit/model/bert_pre_tokenizer.h"

#include "lowbit/model/unicode.h"

namespace lowbit {

bool is_bert_punctuation(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                        (cp >= 123 && cp <= 126);
  return unicode::is_punctuation(unicode::category(cp));
}

void split_bert_words(std::string_view text, std::vector<std::string_view>& words) {
  size_t word = 0;  // start of the current word
  for (size_t pos = 0; pos < text.size();) {
    const unicode::Utf8Unit u = unicode::decode_utf8(text, pos);
    const size_t next = pos + u.length;
    const bool space = u.valid && unicode::is_white_space(u.code_point);
    const bool punct = u.valid && is_bert_punctuation(u.code_point);
    if (space || punct) {
      if (pos > word) words.push_back(text.substr(word, pos - word));
      if (punct) words.push_back(text.substr(pos, u.length));
      word = next;
    }
    pos = next;
  }
  if (text.size() > word) words.push_back(text.substr(word));
}

}  // namespace lowbit

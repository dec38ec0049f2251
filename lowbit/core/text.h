// Small string helpers shared by the spec parsers (formats, schemes) and
// the file readers.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// The pieces of s between separators, empty pieces included:
// split("a::b", ':') is {"a", "", "b"}; split("", ':') is {""}.
inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

// A name as it appears in messages: in single quotes, control characters
// escaped (a name can hold a newline), and cut short if very long, since
// names come from untrusted files.
inline std::string quote_untrusted(std::string_view text) {
  constexpr size_t kMaxShown = 200;
  std::string out("'");
  const size_t shown = std::min(text.size(), kMaxShown);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += "...";
  out += '\'';
  return out;
}

}  // namespace lowbit

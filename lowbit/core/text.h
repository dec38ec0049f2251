// Small string helpers shared by the spec parsers (formats, schemes).
#pragma once

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

}  // namespace lowbit

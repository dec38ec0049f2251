// A regular expression over tensor and module names: recipe rules and
// compressed-tensors "re:" targets.
//
// Both come from files a user hands lowbit, and the names they are matched
// against come from checkpoint headers, so neither is trusted. A
// backtracking engine (std::regex, Python's re) takes exponential time on
// patterns such as "(a*)*b" or ".*+x" and recurses once per character of
// the name; the ct_config fuzzer found such a hang. RE2 matches in time
// linear in the name with bounded memory, and its syntax is Python's for
// everything a name pattern uses (classes, \d \w \s, groups, alternation,
// counted repeats, anchors). Lookaround and backreferences, which no linear
// engine supports, are refused when the pattern is compiled.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lowbit/core/error.h"

namespace re2 {
class RE2;
}

namespace lowbit {

class NamePattern {
 public:
  // Throws Error(kind): "<where>: '<pattern>' is not a valid regular
  // expression: <why>".
  static NamePattern compile(std::string_view pattern, ErrorKind kind, std::string_view where);

  // Somewhere in the name (std::regex_search, Python re.search).
  bool search(std::string_view name) const;
  // From the name's first character on (Python re.match): what vLLM and
  // compressed-tensors do with "re:" targets.
  bool match_prefix(std::string_view name) const;

  const std::string& pattern() const noexcept { return pattern_; }

 private:
  NamePattern() = default;
  std::string pattern_;
  std::shared_ptr<const re2::RE2> re_;  // shared: RE2 cannot be copied, and matching is thread-safe
};

}  // namespace lowbit

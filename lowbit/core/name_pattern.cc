#include "lowbit/core/name_pattern.h"

#include <re2/re2.h>

namespace lowbit {

NamePattern NamePattern::compile(std::string_view pattern, ErrorKind kind, std::string_view where) {
  RE2::Options o;
  o.set_log_errors(false);  // the error goes into the exception, not to stderr
  auto re = std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), o);
  if (!re->ok()) {
    std::string why = re->error();
    if (pattern.find("(?=") != std::string_view::npos || pattern.find("(?!") != std::string_view::npos ||
        pattern.find("(?<=") != std::string_view::npos || pattern.find("(?<!") != std::string_view::npos) {
      why += " (lookaround is not supported: names are matched in linear time)";
    }
    throw Error(kind, std::string(where) + ": '" + std::string(pattern) + "' is not a valid regular expression: " + why);
  }
  NamePattern p;
  p.pattern_ = std::string(pattern);
  p.re_ = std::move(re);
  return p;
}

bool NamePattern::search(std::string_view name) const {
  return re2::RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *re_);
}

bool NamePattern::match_prefix(std::string_view name) const {
  re2::StringPiece input(name.data(), name.size());
  return re_->Match(input, 0, input.size(), re2::RE2::ANCHOR_START, nullptr, 0);
}

}  // namespace lowbit

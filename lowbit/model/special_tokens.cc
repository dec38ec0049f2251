#include "lowbit/model/special_tokens.h"

#include <algorithm>
#include <array>

#include "lowbit/model/unicode.h"

namespace lowbit {

std::vector<TextFragment> split_longest_first(std::string_view text, std::span<const SpecialPattern> patterns) {
  std::vector<const SpecialPattern*> order;
  for (const SpecialPattern& p : patterns) {
    if (!p.text.empty()) order.push_back(&p);
  }
  std::stable_sort(order.begin(), order.end(), [](const SpecialPattern* a, const SpecialPattern* b) {
    return a->text.size() != b->text.size() ? a->text.size() > b->text.size() : a->id < b->id;
  });
  std::vector<TextFragment> fragments;
  if (!text.empty()) fragments.push_back({0, text.size(), -1});
  std::vector<TextFragment> next;
  for (const SpecialPattern* p : order) {
    next.clear();
    for (const TextFragment& f : fragments) {
      if (f.is_token()) {
        next.push_back(f);
        continue;
      }
      size_t from = f.begin;
      while (true) {
        const size_t at = text.substr(0, f.end).find(p->text, from);
        if (at == std::string_view::npos) break;
        if (at > from) next.push_back({from, at, -1});
        next.push_back({at, at + p->text.size(), p->id});
        from = at + p->text.size();
      }
      if (from < f.end) next.push_back({from, f.end, -1});
    }
    fragments.swap(next);
  }
  return fragments;
}

namespace {

// The end of the White_Space run that starts at `pos`.
size_t skip_white_space(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    const unicode::Utf8Unit u = unicode::decode_utf8(text, pos);
    if (!u.valid || !unicode::is_white_space(u.code_point)) break;
    pos += u.length;
  }
  return pos;
}

// The start of the White_Space run that ends at `end`, not before `floor`:
// the end of the last other unit in [floor, end).
size_t back_over_white_space(std::string_view text, size_t floor, size_t end) {
  size_t start = floor;
  for (size_t pos = floor; pos < end;) {
    const unicode::Utf8Unit u = unicode::decode_utf8(text, pos);
    pos += u.length;
    if (!u.valid || !unicode::is_white_space(u.code_point)) start = pos;
  }
  return start;
}

}  // namespace

std::vector<TextFragment> split_leftmost_longest(std::string_view text, std::span<const SpecialPattern> patterns) {
  // Candidates by first byte, longest first: the first one that matches at
  // a position is the longest there.
  std::array<std::vector<const SpecialPattern*>, 256> by_first{};
  for (const SpecialPattern& p : patterns) {
    if (!p.text.empty()) by_first[static_cast<uint8_t>(p.text[0])].push_back(&p);
  }
  for (auto& list : by_first) {
    std::stable_sort(list.begin(), list.end(), [](const SpecialPattern* a, const SpecialPattern* b) {
      return a->text.size() > b->text.size();
    });
  }
  std::vector<TextFragment> fragments;
  size_t raw_begin = 0;  // start of the raw text not yet emitted
  for (size_t pos = 0; pos < text.size();) {
    const SpecialPattern* hit = nullptr;
    for (const SpecialPattern* p : by_first[static_cast<uint8_t>(text[pos])]) {
      if (text.substr(pos, p->text.size()) == p->text) {
        hit = p;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + hit->text.size();
    if (hit->lstrip) begin = back_over_white_space(text, raw_begin, begin);
    if (hit->rstrip) end = skip_white_space(text, end);
    if (begin > raw_begin) fragments.push_back({raw_begin, begin, -1});
    fragments.push_back({begin, end, hit->id});
    raw_begin = pos = end;
  }
  if (raw_begin < text.size()) fragments.push_back({raw_begin, text.size(), -1});
  return fragments;
}

}  // namespace lowbit

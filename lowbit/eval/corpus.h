// The text corpora lowbit evaluates and calibrates on, addressed by name
// with fixed, disjoint splits (docs/corpora.md lists every selection).
//
// scripts/corpora.py (run by scripts/setup.sh) writes them once from their
// Debian packages into the corpora directory, with a manifest of their
// sizes and SHA-256; lowbit reads those files and never runs the packages'
// programs itself, so a number measured on "kjv" names exactly one text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct CorpusInfo {
  std::string name;         // "kjv", "linux-doc:calib"
  std::string file;         // under corpora_dir()
  std::string description;  // the selection, in a few words
  std::string use;          // "evaluation", "calibration", "training", ...
};

// Every corpus, in a fixed order.
const std::vector<CorpusInfo>& corpora();

// The corpora directory: $LOWBIT_CORPORA if set, else build-corpora/ in
// lowbit's source tree (where scripts/setup.sh puts them).
std::string corpora_dir();

// The corpus called `name`. A name without a split ("linux-doc") takes
// `default_split` ("eval" for the eval commands, "calib" for calibration)
// when the corpus has splits. kUsage for an unknown name (with the list).
const CorpusInfo& find_corpus(std::string_view name, std::string_view default_split = "eval");

// The corpus's text (UTF-8). kInput if it is not installed, saying how to
// install it.
std::string read_corpus(std::string_view name, std::string_view default_split = "eval");

// The verse-aligned King James / World English Bible pairs (31,094 verses
// both translations have): paraphrase pairs for embedding retrieval.
struct VersePair {
  std::string reference;  // "Genesis 1:1" (the KJV's book names)
  std::string kjv, web;
};
std::vector<VersePair> read_verse_pairs();

}  // namespace lowbit

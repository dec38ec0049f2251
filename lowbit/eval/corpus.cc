#include "lowbit/eval/corpus.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace fs = std::filesystem;

const std::vector<CorpusInfo>& corpora() {
  static const std::vector<CorpusInfo> list = {
      {"kjv", "kjv.txt", "King James Bible, all 31,102 verses, one per line", "evaluation (never calibration)"},
      {"web", "web.txt", "World English Bible, its 66 books, one verse per line", "training; paraphrases of kjv"},
      {"kjv-web", "kjv-web.tsv", "the 31,094 verses both Bibles have: reference, KJV, WEB", "embedding retrieval"},
      {"linux-doc:calib", "linux-doc.calib.txt", "linux-doc 6.1 admin-guide/ and filesystems/", "calibration"},
      {"linux-doc:eval", "linux-doc.eval.txt", "linux-doc 6.1 process/, core-api/ and RCU/", "evaluation"},
      {"linux-doc:train", "linux-doc.train.txt", "linux-doc 6.1, every other folder but translations/", "training"},
      {"fortunes", "fortunes.txt", "the fortunes package's English files", "training"},
      {"jargon", "jargon.txt", "the Jargon File 4.4.7 (jargon-text)", "training"},
  };
  return list;
}

std::string corpora_dir() {
  if (const char* env = std::getenv("LOWBIT_CORPORA"); env && *env) return env;
  return (fs::path(LOWBIT_SOURCE_DIR) / "build-corpora").string();
}

const CorpusInfo& find_corpus(std::string_view name, std::string_view default_split) {
  const std::vector<CorpusInfo>& list = corpora();
  for (const std::string& candidate : {std::string(name), fmt::format("{}:{}", name, default_split)}) {
    for (const CorpusInfo& c : list) {
      if (c.name == candidate) return c;
    }
  }
  std::string names;
  for (const CorpusInfo& c : list) names += (names.empty() ? "" : ", ") + c.name;
  throw Error(ErrorKind::kUsage, fmt::format("unknown corpus '{}' (corpora: {})", name, names));
}

namespace {

std::string read_installed(const CorpusInfo& c) {
  const fs::path p = fs::path(corpora_dir()) / c.file;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) {
    throw Error(ErrorKind::kInput, fmt::format("corpus '{}' is not installed: {} is missing (run bash scripts/setup.sh, "
                                               "or python3 scripts/corpora.py; LOWBIT_CORPORA names another directory)",
                                               c.name, p.string()));
  }
  const std::vector<std::byte> bytes = read_file(p.string());
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

std::string read_corpus(std::string_view name, std::string_view default_split) {
  return read_installed(find_corpus(name, default_split));
}

std::vector<VersePair> read_verse_pairs() {
  const std::string text = read_installed(find_corpus("kjv-web"));
  std::vector<VersePair> pairs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    const size_t t1 = line.find('\t');
    const size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string_view::npos) {
      throw Error(ErrorKind::kInput, fmt::format("corpus 'kjv-web': line {} is not reference TAB kjv TAB web",
                                                 pairs.size() + 1));
    }
    pairs.push_back({std::string(line.substr(0, t1)), std::string(line.substr(t1 + 1, t2 - t1 - 1)),
                     std::string(line.substr(t2 + 1))});
    pos = end + 1;
  }
  return pairs;
}

}  // namespace lowbit

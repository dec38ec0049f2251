#include "lowbit/eval/corpus.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(Corpus, NamesAndSplits) {
  EXPECT_EQ(find_corpus("kjv").file, "kjv.txt");
  EXPECT_EQ(find_corpus("linux-doc").name, "linux-doc:eval");
  EXPECT_EQ(find_corpus("linux-doc", "calib").name, "linux-doc:calib");
  EXPECT_EQ(find_corpus("linux-doc:train", "calib").name, "linux-doc:train");
  const Error e = catch_error([] { find_corpus("shakespeare"); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("kjv, web"), std::string::npos) << e.what();
}

class CorpusFiles : public testing_support::TempDirTest {};

TEST_F(CorpusFiles, ReadsFromLowbitCorporaAndSaysHowToInstall) {
  ::setenv("LOWBIT_CORPORA", path("").c_str(), 1);
  const Error e = catch_error([] { read_corpus("kjv"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("scripts/setup.sh"), std::string::npos) << e.what();
  std::ofstream(path("kjv.txt")) << "In the beginning\n";
  std::ofstream(path("kjv-web.tsv")) << "Genesis 1:1\tIn the beginning God\tIn the beginning, God\nJohn 11:35\tJesus wept.\tJesus wept.\n";
  EXPECT_EQ(read_corpus("kjv"), "In the beginning\n");
  const auto pairs = read_verse_pairs();
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].reference, "John 11:35");
  EXPECT_EQ(pairs[0].web, "In the beginning, God");
  std::ofstream(path("kjv-web.tsv")) << "Genesis 1:1 no tabs\n";
  EXPECT_EQ(catch_error([] { read_verse_pairs(); }).kind(), ErrorKind::kInput);
  ::unsetenv("LOWBIT_CORPORA");
}

}  // namespace
}  // namespace lowbit

#include "lowbit/core/name_pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace lowbit {
namespace {

NamePattern re(const char* p) { return NamePattern::compile(p, ErrorKind::kUsage, "test"); }

TEST(NamePatternTest, SearchFindsTheMatchAnywhere) {
  EXPECT_TRUE(re(R"(mlp\.down_proj)").search("model.layers.3.mlp.down_proj.weight"));
  EXPECT_TRUE(re(R"(\.weight$)").search("a.weight"));
  EXPECT_FALSE(re(R"(\.weight$)").search("a.weight_scale"));
  EXPECT_TRUE(re(R"(layers\.\d+\.(q|k|v)_proj)").search("model.layers.12.k_proj"));
  EXPECT_FALSE(re(R"(layers\.\d+\.(q|k|v)_proj)").search("model.layers.x.k_proj"));
  EXPECT_TRUE(re("^lm_head").search("lm_head.weight"));
  EXPECT_FALSE(re("^lm_head").search("model.lm_head.weight"));
}

// Python's re.match: anchored at the start, not at the end.
TEST(NamePatternTest, MatchPrefixIsAnchoredAtTheStartOnly) {
  EXPECT_TRUE(re(R"(.*q_proj)").match_prefix("model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(re("model").match_prefix("model.layers.0"));       // a prefix is enough
  EXPECT_FALSE(re("layers").match_prefix("model.layers.0"));     // but it must start there
  EXPECT_FALSE(re(R"(.*mlp\.gate$)").match_prefix("model.layers.0.mlp.gate_proj"));
  EXPECT_TRUE(re(R"(.*mlp\.gate$)").match_prefix("model.layers.0.mlp.gate"));
  EXPECT_TRUE(re("").match_prefix("anything"));
  EXPECT_TRUE(re("a|b").match_prefix("bc"));  // alternation binds loosest, as in Python
}

TEST(NamePatternTest, BadPatternsNameThemselvesAndTheCaller) {
  for (const char* bad : {"(", "[a-", "a{2,1}", "(?=lookahead)", "(?<!behind)x", R"((a)\1)"}) {
    try {
      (void)NamePattern::compile(bad, ErrorKind::kInput, "rule 3");
      ADD_FAILURE() << bad << " compiled";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInput);
      const std::string m = e.what();
      EXPECT_NE(m.find("rule 3: '"), std::string::npos) << m;
      EXPECT_NE(m.find(bad), std::string::npos) << m;
      EXPECT_NE(m.find("not a valid regular expression"), std::string::npos) << m;
    }
  }
  try {
    (void)NamePattern::compile("(?=x)", ErrorKind::kUsage, "w");
    ADD_FAILURE() << "(?=x) compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lookaround is not supported"), std::string::npos) << e.what();
  }
}

// Patterns on which a backtracking engine takes exponential (or high
// polynomial) time in the name's length. Linear matching answers at once;
// were it to backtrack, this test would not finish (CTest's timeout).
TEST(NamePatternTest, NoBacktrackingBlowUp) {
  const std::string as(100000, 'a');
  EXPECT_FALSE(re("(a*)*b").search(as));
  EXPECT_FALSE(re("(a|aa)+$b").match_prefix(as));
  EXPECT_FALSE(re(".*.*.*.*.*.*.*x").match_prefix(as));
  EXPECT_TRUE(re("(a|a)*").match_prefix(as));
  // What the ct_config fuzzer found hanging std::regex: the same shape,
  // one repetition nested in another over a long name.
  EXPECT_FALSE(re(R"((.*)+elf_attn\.(q|k|v)_pro*$)").match_prefix(std::string(5000, '.') + "elf_attn.q_prx"));
}

TEST(NamePatternTest, CopiesShareTheCompiledPattern) {
  const NamePattern a = re("x+y");
  const NamePattern b = a;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(b.pattern(), "x+y");
  EXPECT_TRUE(b.search("axxy"));
}

}  // namespace
}  // namespace lowbit

// The layers of ../shared/DESIGN.md, checked: a file under lowbit/<layer>/
// includes lowbit headers of its own layer and the layers before it in the
// list, never one after it. Reads every source and header of the tree.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// DESIGN.md's order: each uses only those above it.
const std::vector<std::string> kLayers = {"core",  "format", "kernels", "quant",   "ggml",     "io",
                                          "model", "eval",   "calib",   "methods", "pipeline", "train"};

// Known exceptions, each with the reason; remove a line when its cause goes.
const std::set<std::pair<std::string, std::string>> kAllowed = {
    // A property test of the scalar model that compares against the SIMD
    // kernels (test-only).
    {"lowbit/format/format_properties_test.cc", "lowbit/kernels/array_ops.h"},
};

int layer_of(const std::string& rel) {
  // "lowbit/<layer>/..."
  const size_t a = rel.find('/'), b = rel.find('/', a + 1);
  if (a == std::string::npos || b == std::string::npos) return -1;
  const std::string name = rel.substr(a + 1, b - a - 1);
  const auto it = std::find(kLayers.begin(), kLayers.end(), name);
  return it == kLayers.end() ? -1 : static_cast<int>(it - kLayers.begin());
}

TEST(Layering, NoFileIncludesALaterLayer) {
  const fs::path root = LOWBIT_SOURCE_DIR;
  const std::regex include(R"re(^\s*#\s*include\s+"(lowbit/[^"]+)")re");
  size_t files = 0;
  std::vector<std::string> problems;
  for (const auto& e : fs::recursive_directory_iterator(root / "lowbit")) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
    const std::string rel = e.path().lexically_relative(root).string();
    const int from = layer_of(rel);
    if (from < 0) {
      if (rel != "lowbit/layering_test.cc") problems.push_back(rel + " is in no layer of DESIGN.md");
      continue;
    }
    ++files;
    std::ifstream in(e.path());
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
      if (!std::regex_search(line, m, include)) continue;
      const std::string target = m[1];
      const int to = layer_of(target);
      if (to > from && !kAllowed.count({rel, target})) {
        problems.push_back(rel + " (" + kLayers[from] + ") includes " + target + " (" + kLayers[to] + ")");
      }
    }
  }
  EXPECT_GT(files, 100u);
  for (const std::string& p : problems) ADD_FAILURE() << p;
}

TEST(Layering, TheCheckSeesAnUpwardInclude) {
  // The rule itself: what it would report for a quant file including io.
  EXPECT_LT(layer_of("lowbit/quant/x.cc"), layer_of("lowbit/io/y.h"));
  EXPECT_EQ(layer_of("lowbit/pipeline/sinks/x.cc"), layer_of("lowbit/pipeline/y.h"));
  EXPECT_EQ(layer_of("lowbit/nowhere/x.cc"), -1);
}

}  // namespace

// Replays every fuzz seed and every input a fuzzer once crashed on
// (fuzz/regressions/<target>/), so a fixed parser bug stays fixed in the
// ordinary test suite, sanitizer build included.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/fuzz_targets.h"

namespace lowbit::fuzz {
namespace {

namespace fs = std::filesystem;

size_t replay(const std::string& folder, const Target& t) {
  const fs::path dir = fs::path(LOWBIT_SOURCE_DIR) / "fuzz" / folder / t.name;
  size_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().string());
    t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

TEST(FuzzRegressions, SeedsAndPastCrashesAreHandled) {
  for (const Target& t : targets()) {
    EXPECT_GT(replay("seeds", t), 0u) << "no seeds for fuzz target " << t.name;
    replay("regressions", t);
  }
}

}  // namespace
}  // namespace lowbit::fuzz

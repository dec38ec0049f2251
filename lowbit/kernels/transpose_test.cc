#include "lowbit/kernels/transpose.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace lowbit {
namespace {

// Every shape class: full tiles only, ragged edges on either axis, fewer
// rows or columns than a tile, one row, one column; at 1 and 3 threads.
TEST(Transpose, MatchesTheDefinitionForEveryShapeClass) {
  const int64_t shapes[][2] = {{128, 32}, {130, 33}, {64, 17}, {5, 300}, {1, 40}, {40, 1}, {4096 + 3, 20}, {7, 7}};
  for (const auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1];
    std::vector<float> in(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i) * 0.5f - 3.0f;
    for (int threads : {1, 3}) {
      std::vector<float> out(in.size(), -1.0f);
      transpose(in.data(), rows, cols, out.data(), threads);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          ASSERT_EQ(out[static_cast<size_t>(c * rows + r)], in[static_cast<size_t>(r * cols + c)])
              << rows << "x" << cols << " at " << r << "," << c << ", " << threads << " threads";
        }
      }
    }
  }
}

}  // namespace
}  // namespace lowbit

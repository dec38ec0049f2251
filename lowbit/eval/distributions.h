// Synthetic data for format studies: normal, Laplace, Student-t and uniform
// samples that are a pure function of (distribution, seed, index), so a
// study is reproducible on any machine and thread count (no libstdc++
// distribution objects, whose algorithms are not specified).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct Distribution {
  enum class Kind : uint8_t { kNormal, kLaplace, kStudentT, kUniform };
  Kind kind = Kind::kNormal;
  double nu = 0;  // Student-t degrees of freedom
  std::string name() const;
};

// "normal" | "laplace" | "student-t:<nu>" | "uniform"; nullopt-like: throws
// Error(kUsage) for anything else.
Distribution parse_distribution(std::string_view s);
bool is_distribution_name(std::string_view s);

// n samples: normal N(0, 1), Laplace with scale 1, Student-t with nu degrees
// of freedom, uniform on [-1, 1].
std::vector<float> draw_samples(const Distribution& d, uint64_t n, uint64_t seed, int threads = 0);

}  // namespace lowbit

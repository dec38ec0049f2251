#include "lowbit/train/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

// Three AdamW steps against the update written out in double (PyTorch's
// formula), for a decayed matrix and an undecayed norm.
TEST(AdamW, MatchesTheFormulaInDouble) {
  ParameterSet layout;
  layout.add("w", {3, 5}, true);
  layout.add("n", {7}, false);
  const AdamWOptions opt{0.9, 0.95, 1e-8, 0.1};
  AdamW adam(layout, opt);
  std::vector<float> p = testing_support::normal_values(static_cast<size_t>(layout.size()), 1);
  std::vector<double> ref(p.begin(), p.end()), m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 1; t <= 3; ++t) {
    const std::vector<float> g = testing_support::normal_values(p.size(), 10 + t);
    const double lr = 0.01 * t;
    adam.step(p, g, lr, 2);
    for (const ParamTensor& pt : layout.tensors()) {
      for (int64_t i = pt.offset; i < pt.offset + pt.size; ++i) {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * double{g[i]} * g[i];
        const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.95, t));
        if (pt.decay) ref[i] *= 1 - lr * 0.1;
        ref[i] -= lr * mh / (std::sqrt(vh) + 1e-8);
      }
    }
  }
  EXPECT_EQ(adam.steps(), 3);
  for (const ParamTensor& pt : layout.tensors()) {
    for (int64_t i = pt.offset; i < pt.offset + pt.size; ++i) ASSERT_NEAR(p[i], ref[i], 2e-6) << pt.name << i;
  }
}

TEST(AdamW, GradientNormIsExactEnoughAndThreadInvariant) {
  ParameterSet layout;
  layout.add("a", {40000}, true);  // several chunks
  layout.add("b", {3}, false);
  std::vector<float> g = testing_support::normal_values(static_cast<size_t>(layout.size()), 3);
  double want = 0;
  for (const ParamTensor& t : layout.tensors()) {
    for (int64_t i = t.offset; i < t.offset + t.size; ++i) want += double{g[i]} * g[i];
  }
  const double n1 = gradient_norm(layout, g, 1), n3 = gradient_norm(layout, g, 3);
  EXPECT_NEAR(n1, std::sqrt(want), 1e-9 * std::sqrt(want));
  EXPECT_EQ(std::memcmp(&n1, &n3, sizeof n1), 0);
  EXPECT_EQ(first_non_finite_gradient(layout, g), nullptr);
  g[static_cast<size_t>(layout.find("b")->offset + 1)] = NAN;
  ASSERT_NE(first_non_finite_gradient(layout, g), nullptr);
  EXPECT_EQ(first_non_finite_gradient(layout, g)->name, "b");
}

}  // namespace
}  // namespace lowbit

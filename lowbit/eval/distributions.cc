#include "lowbit/eval/distributions.h"

#include <charconv>
#include <cmath>
#include <numbers>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {

// SplitMix64 of a counter: independent 64-bit words per (seed, index, draw).
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Stream {
  uint64_t key;
  uint64_t k = 0;
  // Uniform on (0, 1): 53 random bits, never 0.
  double uniform() { return (static_cast<double>(mix64(key + 0x632be59bd9b4e019ull * ++k) >> 11) + 0.5) * 0x1p-53; }
  double normal() {
    // Box-Muller, one value per pair of uniforms (simple and exact enough).
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  // Gamma(shape a, scale 1) by Marsaglia and Tsang (a < 1 boosted).
  double gamma(double a) {
    if (a < 1.0) return gamma(a + 1.0) * std::pow(uniform(), 1.0 / a);
    const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
};

double sample(const Distribution& d, Stream& s) {
  switch (d.kind) {
    case Distribution::Kind::kNormal:
      return s.normal();
    case Distribution::Kind::kLaplace: {
      const double u = s.uniform() - 0.5;
      return (u < 0 ? 1.0 : -1.0) * std::log(1.0 - 2.0 * std::fabs(u));
    }
    case Distribution::Kind::kStudentT: {
      const double z = s.normal();
      const double v = 2.0 * s.gamma(d.nu / 2.0);  // chi-squared with nu degrees
      return z / std::sqrt(v / d.nu);
    }
    case Distribution::Kind::kUniform:
      return 2.0 * s.uniform() - 1.0;
  }
  return 0;
}

}  // namespace

std::string Distribution::name() const {
  switch (kind) {
    case Kind::kNormal: return "normal";
    case Kind::kLaplace: return "laplace";
    case Kind::kUniform: return "uniform";
    case Kind::kStudentT: {
      char buf[32];
      const auto r = std::to_chars(buf, buf + sizeof buf, nu);
      return std::string("student-t:").append(buf, r.ptr);
    }
  }
  return "?";
}

bool is_distribution_name(std::string_view s) {
  return s == "normal" || s == "laplace" || s == "uniform" || s.starts_with("student-t:");
}

Distribution parse_distribution(std::string_view s) {
  Distribution d;
  if (s == "normal") return d;
  if (s == "laplace") {
    d.kind = Distribution::Kind::kLaplace;
    return d;
  }
  if (s == "uniform") {
    d.kind = Distribution::Kind::kUniform;
    return d;
  }
  if (s.starts_with("student-t:")) {
    const std::string_view v = s.substr(10);
    double nu = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), nu);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(nu > 0) || !std::isfinite(nu)) {
      fail_usage(std::string("student-t needs degrees of freedom > 0, e.g. student-t:3 (got '").append(s) + "')");
    }
    d.kind = Distribution::Kind::kStudentT;
    d.nu = nu;
    return d;
  }
  fail_usage(std::string("unknown distribution '").append(s) +
             "': normal, laplace, student-t:<nu>, uniform, or a .npy file");
}

std::vector<float> draw_samples(const Distribution& d, uint64_t n, uint64_t seed, int threads) {
  std::vector<float> out(n);
  const uint64_t chunk = 1 << 16;
  const uint64_t base = mix64(seed ^ 0x5eed5eed5eed5eedull);
  ThreadPool::global().parallel_for((n + chunk - 1) / chunk, threads > 0 ? threads : default_thread_count(),
                                    [&](size_t c) {
                                      const uint64_t e = std::min(n, (c + 1) * chunk);
                                      for (uint64_t i = c * chunk; i < e; ++i) {
                                        Stream s{mix64(base + i * 0xd1b54a32d192ed03ull)};
                                        out[i] = static_cast<float>(sample(d, s));
                                      }
                                    });
  return out;
}

}  // namespace lowbit

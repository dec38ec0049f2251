// GPTQ's speed on one large layer (issue 17: a 4096 x 4096 weight in groups
// of 128 with a synthetic Hessian, <= 3 s at 2 threads), against the
// machine's own limit measured in the same run: one 4096 x 4096 x 4096
// float32 product by the same tiled sgemm (matmul_tiled). GPTQ's lazy
// updates are about one such product; the factorization and the sweep add
// the rest. Medians of --reps runs.
//
//   build/gptq_bench [--size 4096] [--group 128] [--threads 2] [--reps 3]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/kernels/matmul.h"
#include "lowbit/methods/gptq.h"
#include "lowbit/quant/scheme.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Fn>
double seconds(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 4096, group = 128;
  int threads = 2, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (a == "--size") n = v;
    else if (a == "--group") group = v;
    else if (a == "--threads") threads = static_cast<int>(v);
    else if (a == "--reps") reps = static_cast<int>(v);
    else {
      std::fprintf(stderr, "usage: gptq_bench [--size N] [--group G] [--threads T] [--reps R]\n");
      return 2;
    }
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> w(n * n);
  for (float& v : w) v = 0.02f * nd(rng);
  // H = D + V Vᵀ: unequal channel sizes (D, log-normal) and correlation
  // (V, rank 64), positive definite. Only its shape matters for the time.
  const int64_t rank = 64;
  std::vector<float> v(n * rank), h(n * n);
  for (float& x : v) x = nd(rng);
  lowbit::matmul_nt(v.data(), n, rank, rank, v.data(), n, nullptr, h.data(), n, threads);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] += std::exp(2 * nd(rng)) * rank;

  std::vector<float> a(n * n), c(n * n);
  for (float& x : a) x = nd(rng);
  std::vector<double> t_gemm;
  for (int r = 0; r < reps; ++r) {
    t_gemm.push_back(seconds([&] {
      lowbit::matmul_tiled(false, a.data(), n, false, w.data(), n, n, n, n, c.data(), n, false, 128, 256, threads);
    }));
  }
  const double gemm = median(t_gemm);
  std::printf("sgemm %lldx%lldx%lld (matmul_tiled): %.3f s, %.1f GFLOP/s, %d threads\n", (long long)n, (long long)n,
              (long long)n, gemm, 2.0 * n * n * n / gemm / 1e9, threads);
  const lowbit::Scheme s = lowbit::parse_scheme("int4/g" + std::to_string(group));
  for (int variant = 0; variant < 2; ++variant) {
    lowbit::GptqOptions o;
    o.threads = threads;
    o.act_order = variant == 1;
    o.measure_error = false;  // timed alone below
    std::vector<double> t, tf, ts;
    lowbit::GptqStats st;
    for (int r = 0; r < reps; ++r) {
      t.push_back(seconds([&] { lowbit::gptq_quantize({w.data(), {uint64_t(n), uint64_t(n)}}, s, h, o, &st); }));
      tf.push_back(st.factor_seconds);
      ts.push_back(st.sweep_seconds);
    }
    const double total = median(t);
    o.measure_error = true;
    const double with_error = seconds([&] { lowbit::gptq_quantize({w.data(), {uint64_t(n), uint64_t(n)}}, s, h, o, &st); });
    std::printf("gptq %lldx%lld %s%s: %.3f s (factor %.3f, sweep %.3f, the rest %.3f) = %.2fx the sgemm; "
                "measuring the output error adds %.3f s: %.4g vs rtn %.4g\n",
                (long long)n, (long long)n, s.spec().c_str(), o.act_order ? " act-order" : "", total, median(tf),
                median(ts), total - median(tf) - median(ts), total / gemm, with_error - total, st.gptq_error,
                st.rtn_error);
  }
  return 0;
}

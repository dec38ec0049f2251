// Google Benchmark view of the array kernels: each benchmark reports bytes
// per second and its ratio to the copy bandwidth (the faster of memcpy and a
// streaming-store copy) measured at start-up in the same process. `lowbit
// bench` gives the same numbers interleaved with the copy, as a table or JSON;
// this program suits benchmark's filters, repetitions and aggregates, e.g.
//   build/kernels_bench --benchmark_filter=Fakequant --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

constexpr size_t kN = size_t{1} << 24;  // 64 MB of float32: past the caches

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(kN);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0, 1);
    for (auto& e : v) e = nd(rng);
    return v;
  }();
  return x;
}

// Copy bandwidth (read + write bytes per second) at `threads` threads.
double copy_bandwidth(int threads) {
  static std::vector<float> dst(kN);
  const auto& src = input();
  const size_t chunks = (kN + kChunkElements - 1) / kChunkElements;
  double best = 0;
  for (bool stream : {false, true}) {
    std::vector<double> t;
    for (int r = 0; r < 7; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ThreadPool::global().parallel_for(chunks, threads, [&](size_t c) {
        const size_t b = c * kChunkElements, e = std::min(kN, b + kChunkElements);
        if (stream) {
          kernels::stream_copy(src.data() + b, dst.data() + b, e - b);
        } else {
          std::memcpy(dst.data() + b, src.data() + b, (e - b) * 4);
        }
      });
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    best = std::max(best, 8.0 * kN / t[t.size() / 2]);
  }
  return best;
}

void report(benchmark::State& state, double bytes_per_element, int threads) {
  static double copy[3] = {0, 0, 0};
  if (copy[threads] == 0) copy[threads] = copy_bandwidth(threads);
  const double bytes = bytes_per_element * kN * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["ratio_to_copy"] =
      benchmark::Counter(bytes / copy[threads], benchmark::Counter::kIsRate);
}

void BM_Fakequant(benchmark::State& state, const char* format, Rounding mode) {
  const Format f = parse_format(format);
  const int threads = static_cast<int>(state.range(0));
  std::vector<float> x(input()), out(kN);
  const float scale = static_cast<float>(f.max_finite() / 6.0);  // ~absmax scaling of N(0,1)
  for (auto& v : x) v *= scale;
  ArrayOptions opt;
  opt.threads = threads;
  opt.round.mode = mode;
  for (auto _ : state) {
    fakequant_array(f, x.data(), out.data(), kN, opt);
    benchmark::DoNotOptimize(out.data());
  }
  report(state, 8.0, threads);
}

void BM_EncodePacked(benchmark::State& state, const char* format) {
  const Format f = parse_format(format);
  const int threads = static_cast<int>(state.range(0));
  std::vector<float> x(input());
  for (auto& v : x) v *= static_cast<float>(f.max_finite() / 6.0);
  std::vector<uint8_t> codes(encoded_bytes(f, kN, true));
  ArrayOptions opt;
  opt.threads = threads;
  for (auto _ : state) {
    encode_array(f, x.data(), codes.data(), kN, true, opt);
    benchmark::DoNotOptimize(codes.data());
  }
  report(state, 4.0 + static_cast<double>(codes.size()) / kN, threads);
}

BENCHMARK_CAPTURE(BM_Fakequant, e4m3fn_rne, "float8_e4m3fn", Rounding::kNearestEven)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Fakequant, e4m3fn_sr, "float8_e4m3fn", Rounding::kStochastic)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Fakequant, e2m1_rne, "float4_e2m1fn", Rounding::kNearestEven)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Fakequant, posit8_1, "posit8_1", Rounding::kNearestEven)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Fakequant, hifloat8, "hifloat8", Rounding::kNearestEven)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodePacked, e2m1, "float4_e2m1fn")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
}  // namespace lowbit

BENCHMARK_MAIN();

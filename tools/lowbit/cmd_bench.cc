// `lowbit bench [--json]`: throughput of fakequant, encode and decode for
// several formats and rounding modes, and of quantize + dequantize ("qdq")
// for several schemes, at 1 thread and at all threads, each
// as a ratio to the copy bandwidth measured in the same run (the faster of
// memcpy and a streaming-store copy of the same array, split across the same
// threads the same way). Medians of
// several repetitions, because these machines are shared and noisy.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/core/host_cpu.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

struct BenchArgs {
  bool json = false;
  uint64_t elements = uint64_t{1} << 25;
  int reps = 7;
  ThreadsFlag threads;
  std::string filter;
};

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs the operation and the copy baseline alternately, so that both see the
// same machine state (these machines are shared: bandwidth drifts between
// seconds), and returns the medians {op, memcpy, streaming copy}.
struct Timing {
  double op, memcpy_copy, stream_copy;
};
Timing interleaved(int reps, const std::function<void()>& op, const std::function<void()>& mem,
                   const std::function<void()>& stream) {
  op();  // warm-up: page faults, thread start-up
  mem();
  stream();
  std::vector<double> a, b, c;
  for (int r = 0; r < reps; ++r) {
    a.push_back(seconds_of(op));
    b.push_back(seconds_of(mem));
    c.push_back(seconds_of(stream));
  }
  return {median(a), median(b), median(c)};
}

struct Case {
  const char* format;
  Rounding round;
  const char* op;  // fakequant, encode, encode-packed, decode, decode-packed
  // Input: N(0, 1) times `scale`; scale 0 means scaled so that the array's
  // largest magnitude maps to the format's largest value, as per-tensor
  // absmax scaling feeds a format.
  double scale;
};

constexpr double kAbsmax = 0;

const Case kCases[] = {
    {"float8_e4m3fn", Rounding::kNearestEven, "fakequant", kAbsmax},
    {"float8_e4m3fn", Rounding::kStochastic, "fakequant", kAbsmax},
    {"float8_e4m3fn", Rounding::kStochastic, "fakequant", 1},  // unscaled: 1.2% subnormal lanes
    {"float8_e4m3fn", Rounding::kTowardZero, "fakequant", kAbsmax},
    {"float8_e5m2", Rounding::kNearestEven, "fakequant", kAbsmax},
    {"bfloat16", Rounding::kNearestEven, "fakequant", 1},
    {"float4_e2m1fn", Rounding::kNearestEven, "fakequant", kAbsmax},
    {"int8", Rounding::kNearestEven, "fakequant", kAbsmax},
    {"posit8_0", Rounding::kNearestEven, "fakequant", 1},
    {"posit8_1", Rounding::kNearestEven, "fakequant", 1},
    {"posit16_1", Rounding::kNearestEven, "fakequant", 1},
    {"hifloat8", Rounding::kNearestEven, "fakequant", 1},
    {"nf4", Rounding::kNearestEven, "fakequant", kAbsmax},
    {"float8_e4m3fn", Rounding::kNearestEven, "encode", kAbsmax},
    {"float8_e4m3fn", Rounding::kStochastic, "encode", kAbsmax},
    {"float4_e2m1fn", Rounding::kNearestEven, "encode-packed", kAbsmax},
    {"int4", Rounding::kNearestEven, "encode-packed", kAbsmax},
    {"hifloat8", Rounding::kNearestEven, "encode", 1},
    {"float8_e4m3fn", Rounding::kNearestEven, "decode", kAbsmax},
    {"float4_e2m1fn", Rounding::kNearestEven, "decode-packed", kAbsmax},
    {"bfloat16", Rounding::kNearestEven, "decode", 1},
};

// Schemes timed as quantize (to a QuantizedTensor) followed by dequantize,
// float32 in and out, on N(0,1) data shaped as rows of 4096.
const char* const kQdqSchemes[] = {
    "mxfp4",          "nvfp4",         "int4/g128/asym", "mxfp8_e4m3",          "mxint8", "q4_0", "q8_0",
    "int8/channel",   "nvfp4/b16x16",  "int4/g128/asym/scale=mse", "int4/g32/scale=mse",
    "e2m1/g16/sf=ue4m3/scale=mse",
};

// Model quantization rates (lowbit quantize): a scheme, or a ggml type for
// GGUF output, with a method; float32 input bytes per second.
struct QuantizeCase {
  const char* scheme;
  const char* method;  // a registered method's name
  bool gguf;           // a ggml type through the ggml codecs, else a lowbit scheme
};
const QuantizeCase kQuantizeCases[] = {
    {"q4_0", "rtn", true},            {"q8_0", "rtn", true},           {"q4_k", "rtn", true},
    {"q4_k", "mse", true},            {"q6_k", "rtn", true},           {"mxfp4", "rtn", true},
    {"mxfp4", "rtn", false},          {"nvfp4", "rtn", true},          {"nvfp4", "rtn", false},
    {"q1_0", "rtn", true},            {"int4/g128/asym", "rtn", false}, {"int4/g128/asym", "mse", false},
    {"int4/g128/asym", "hqq", false},
};

std::string input_label(double scale) {
  if (scale == kAbsmax) return "absmax";
  char buf[32];
  std::snprintf(buf, sizeof buf, "N(0,1)*%g", scale);
  return buf;
}

// The text --filter matches, one per row kind.
std::string case_label(const Case& c) {
  return std::string(c.format) + " " + rounding_name(c.round) + " " + c.op + " " + input_label(c.scale);
}
std::string qdq_label(const char* spec) { return std::string(spec) + " qdq"; }
std::string quantize_label(const QuantizeCase& c) {
  return std::string(c.scheme) + " " + c.method + " quantize " + (c.gguf ? "gguf" : "safetensors");
}

// The rows a run will time, chosen before any timing so that a filter that
// matches nothing fails at once (naming what exists) instead of printing
// empty tables, and so that a table is printed only when it has rows.
struct Selection {
  std::vector<const Case*> kernels;
  std::vector<const char*> qdq;
  std::vector<const QuantizeCase*> quantize;
  size_t rows() const { return kernels.size() + qdq.size() + quantize.size(); }
};

Selection select_rows(const std::string& filter, bool matrix) {
  const auto keep = [&](const std::string& label) { return filter.empty() || label.find(filter) != std::string::npos; };
  Selection sel;
  bool quantize_needs_matrix = false;
  for (const Case& c : kCases) {
    if (keep(case_label(c))) sel.kernels.push_back(&c);
  }
  for (const char* spec : kQdqSchemes) {
    if (keep(qdq_label(spec))) sel.qdq.push_back(spec);
  }
  for (const QuantizeCase& c : kQuantizeCases) {
    if (!keep(quantize_label(c))) continue;
    if (matrix) sel.quantize.push_back(&c);
    else quantize_needs_matrix = true;
  }
  if (sel.rows() == 0) {
    std::string msg = "--filter '" + filter + "' matches no benchmark row";
    if (quantize_needs_matrix) {
      msg += " (the quantize rows it matches time matrices: --elements must be a multiple of 4096)";
    }
    msg += "; the rows are:";
    for (const Case& c : kCases) msg += "\n  " + case_label(c);
    for (const char* spec : kQdqSchemes) msg += "\n  " + qdq_label(spec);
    for (const QuantizeCase& c : kQuantizeCases) msg += "\n  " + quantize_label(c);
    fail_usage(msg);
  }
  return sel;
}

// Bytes per element the bench holds: source, destination and scaled input
// as float32, and two bytes of codes.
constexpr uint64_t kBenchBytesPerElement = 14;

void run_bench(const BenchArgs& a) {
  if (a.elements < kChunkElements) fail_usage("--elements must be at least " + std::to_string(kChunkElements));
  // A count past what any machine addresses is a typo, not an allocation
  // failure (the vectors would throw a length error naming std::vector).
  if (a.elements > std::min<uint64_t>(std::vector<float>().max_size() / 2, UINT64_MAX / kBenchBytesPerElement)) {
    fail_usage("--elements " + std::to_string(a.elements) + " is more than any machine can hold (" +
               std::to_string(kBenchBytesPerElement) + " bytes each)");
  }
  if (a.reps < 1) fail_usage("--reps must be at least 1");
  const size_t n = a.elements;
  const uint64_t cols = 4096;
  const std::vector<uint64_t> shape = n % cols == 0 ? std::vector<uint64_t>{n / cols, cols} : std::vector<uint64_t>{n};
  // Model tensors are matrices: the quantize rows run only on a 2-D shape.
  const Selection sel = select_rows(a.filter, shape.size() == 2);
  const int all = a.threads.resolve();
  std::vector<float> src(n), dst(n), x(n);
  std::vector<uint8_t> codes(n * 2);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  float absmax = 0;
  for (auto& v : src) {
    v = nd(rng);
    absmax = std::max(absmax, std::fabs(v));
  }
  std::vector<int> thread_counts = {1};
  if (all > 1) thread_counts.push_back(all);

  // The baseline is the faster of two copies of the same array, measured
  // alongside each operation: glibc's memcpy, and a copy with non-temporal
  // stores (which skips reading the destination lines first). Both split the
  // array across threads the way the kernels do.
  const size_t chunks = (n + kChunkElements - 1) / kChunkElements;
  const auto copy_fn = [&](int t, bool stream) {
    return [&, t, stream] {
      ThreadPool::global().parallel_for(chunks, t, [&](size_t c) {
        const size_t b = c * kChunkElements, e = std::min(n, b + kChunkElements);
        if (stream) {
          kernels::stream_copy(src.data() + b, dst.data() + b, e - b);
        } else {
          std::memcpy(dst.data() + b, src.data() + b, (e - b) * 4);
        }
      });
    };
  };

  nlohmann::json records = nlohmann::json::array();
  const std::string target = kernel_target_name(current_kernel_target());
  const HostCpu cpu = host_cpu();
  if (!a.json) {
    std::printf("lowbit bench: %zu elements, median of %d, SIMD target %s, CPU %s\n", n, a.reps, target.c_str(),
                cpu.describe().c_str());
    std::printf("baseline: the faster of memcpy and a streaming-store copy, read+write bytes, measured alongside each row\n");
  }
  if (!a.json && !sel.kernels.empty()) {
    std::printf("input: N(0,1) samples; 'absmax' scales them so the largest maps to the format's max\n");
    std::printf("\n%-16s %-10s %-14s %-11s %7s %10s %9s %11s %8s\n", "format", "round", "op", "input", "threads",
                "G elem/s", "GB/s", "copy GB/s", "vs copy");
  }
  for (const Case* cp : sel.kernels) {
    const Case& c = *cp;
    const Format f = parse_format(c.format);
    const float scale = static_cast<float>(c.scale == kAbsmax ? f.max_finite() / absmax : c.scale);
    for (size_t i = 0; i < n; ++i) x[i] = src[i] * scale;
    const std::string op = c.op;
    const bool packed = op.ends_with("packed");
    // Bytes one element moves: 4 read, plus what is written (or the reverse).
    const double code_bytes = static_cast<double>(encoded_bytes(f, n, packed)) / n;
    double bytes_per_elem = op == "fakequant" ? 8.0 : 4.0 + code_bytes;
    if (op.starts_with("decode")) encode_array(f, x.data(), codes.data(), n, packed, {});
    for (int t : thread_counts) {
      ArrayOptions opt;
      opt.threads = t;
      opt.round.mode = c.round;
      opt.round.seed = 1;
      std::function<void()> run;
      if (op == "fakequant") {
        run = [&] { fakequant_array(f, x.data(), dst.data(), n, opt); };
      } else if (op.starts_with("encode")) {
        run = [&] { encode_array(f, x.data(), codes.data(), n, packed, opt); };
      } else {
        run = [&] { decode_array(f, codes.data(), dst.data(), n, packed, opt); };
      }
      const Timing tm = interleaved(a.reps, run, copy_fn(t, false), copy_fn(t, true));
      const double copy_bps = 8.0 * n / std::min(tm.memcpy_copy, tm.stream_copy);
      const double s = tm.op;
      const double eps = n / s, bps = eps * bytes_per_elem, ratio = bps / copy_bps;
      records.push_back({{"format", f.name},
                         {"round", rounding_name(c.round)},
                         {"op", op},
                         {"input", input_label(c.scale)},
                         {"threads", t},
                         {"elements_per_s", eps},
                         {"bytes_per_s", bps},
                         {"ratio_to_copy", ratio},
                         {"copy_bytes_per_s", copy_bps},
                         {"memcpy_bytes_per_s", 8.0 * n / tm.memcpy_copy},
                         {"streaming_copy_bytes_per_s", 8.0 * n / tm.stream_copy}});
      if (!a.json) {
        std::printf("%-16s %-10s %-14s %-11s %7d %10.3f %9.2f %11.2f %7.0f%%\n", f.name.c_str(),
                    rounding_name(c.round), op.c_str(), input_label(c.scale).c_str(), t, eps / 1e9, bps / 1e9,
                    copy_bps / 1e9, 100 * ratio);
        std::fflush(stdout);
      }
    }
  }
  if (!a.json && !sel.qdq.empty()) {
    std::printf("\n%-30s %-6s %7s %10s %9s %11s %8s\n", "scheme", "op", "threads", "G elem/s", "GB/s", "copy GB/s",
                "vs copy");
  }
  // Built once: the timed calls allocate nothing.
  const TensorView src_view(src.data(), shape);
  for (const char* spec : sel.qdq) {
    const auto codec = parse_codec(spec);  // a scheme, or llama.cpp's q8_0 / q4_0
    for (int t : thread_counts) {
      QuantizeOptions qo;
      qo.threads = t;
      // Steady state: the QuantizedTensor's buffers are reused across
      // repetitions, as a training-emulation loop would.
      QuantizedTensor q;
      const auto run = [&] {
        codec->quantize_into(src_view, qo, q);
        dequantize(q, dst.data(), t);
      };
      const Timing tm = interleaved(a.reps, run, copy_fn(t, false), copy_fn(t, true));
      const double copy_bps = 8.0 * n / std::min(tm.memcpy_copy, tm.stream_copy);
      const double eps = n / tm.op, bps = eps * 8.0, ratio = bps / copy_bps;
      records.push_back({{"scheme", spec},
                         {"op", "qdq"},
                         {"threads", t},
                         {"elements_per_s", eps},
                         {"bytes_per_s", bps},
                         {"ratio_to_copy", ratio},
                         {"copy_bytes_per_s", copy_bps}});
      if (!a.json) {
        std::printf("%-30s %-6s %7d %10.3f %9.2f %11.2f %7.0f%%\n", spec, "qdq", t, eps / 1e9, bps / 1e9, copy_bps / 1e9,
                    100 * ratio);
        std::fflush(stdout);
      }
    }
  }
  if (!a.json && !sel.quantize.empty()) {
    std::printf("\n%-24s %-12s %-6s %-9s %7s %10s %11s %8s\n", "scheme (lowbit quantize)", "container", "method",
                "op", "threads", "MB/s in", "copy GB/s", "vs copy");
  }
  for (const QuantizeCase* cp : sel.quantize) {
    const QuantizeCase& c = *cp;
    const std::string container = c.gguf ? "gguf" : "safetensors";
    // GGUF output quantizes ggml types with the ggml codecs; --scheme
    // mxfp4 on GGUF is ggml's MXFP4, on safetensors lowbit's preset.
    const auto ggml = ggml_type_by_name(c.scheme);
    const bool is_ggml = c.gguf;
    std::vector<uint8_t> blocks(is_ggml ? ggml_row_bytes(ggml->type, n, "bench") : 0);
    std::vector<float> ones(shape[1], 1.0f);
    for (int t : thread_counts) {
      std::function<void()> run;
      if (is_ggml) {
        run = [&] {
          ggml_quantize_rows(ggml->type, src.data(), shape[0], shape[1], blocks.data(),
                             std::string_view(c.method) == "mse" ? ones.data() : nullptr, t);
        };
      } else {
        const Scheme scheme = parse_scheme(c.scheme);
        QuantizeOptions o;
        o.threads = t;
        const Method& m = find_method(c.method);
        run = [&, scheme, o] { (void)m.quantize(src_view, scheme, nullptr, o); };
      }
      const Timing tm = interleaved(a.reps, run, copy_fn(t, false), copy_fn(t, true));
      const double copy_bps = 8.0 * n / std::min(tm.memcpy_copy, tm.stream_copy);
      const double bps = 4.0 * n / tm.op;
      records.push_back({{"scheme", c.scheme},
                         {"container", container},
                         {"method", c.method},
                         {"op", "quantize"},
                         {"threads", t},
                         {"elements_per_s", n / tm.op},
                         {"bytes_per_s", bps},
                         {"ratio_to_copy", bps / copy_bps},
                         {"copy_bytes_per_s", copy_bps}});
      if (!a.json) {
        std::printf("%-24s %-12s %-6s %-9s %7d %10.1f %11.2f %7.1f%%\n", c.scheme, container.c_str(),
                    c.method, "quantize", t, bps / 1e6, copy_bps / 1e9, 100 * bps / copy_bps);
        std::fflush(stdout);
      }
    }
  }
  if (a.json) {
    const nlohmann::json doc = {{"elements", n}, {"repetitions", a.reps}, {"target", target},
                                {"cpu", {{"vendor", cpu.vendor}, {"name", cpu.name}, {"family", cpu.family},
                                         {"model", cpu.model}}},
                                {"baseline", "max(memcpy, streaming-store copy), read+write bytes, per row"},
                                {"records", records}};
    std::printf("%s\n", doc.dump(2).c_str());
  }
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure kernel and scheme (quantize + dequantize) throughput against copy bandwidth");
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->add_option("--elements", a->elements, "array length (default 2^25: larger than the caches)")
      ->check(whole_number());
  cmd->add_option("--reps", a->reps, "repetitions; the median is reported")->capture_default_str();
  a->threads.add_to(cmd, "the 'all threads' count (default: all cores, or LOWBIT_NUM_THREADS)");
  cmd->add_option("--filter", a->filter,
                  "only rows whose label ('format round op input', 'scheme qdq' or 'scheme method quantize "
                  "container') contains this text; one that matches no row is an error that lists them");
  return [a] { run_bench(*a); };
}

}  // namespace lowbit::cli

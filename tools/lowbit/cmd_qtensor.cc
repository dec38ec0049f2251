// `lowbit qtensor`: quantize a real array with a scheme, write the
// QuantizedTensor to a safetensors file, and report its exact bits per
// element and error (measured on the dequantized stored tensor).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/io/quantized_tensor_file.h"
#include "lowbit/quant/error_stats.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

struct QtensorArgs {
  std::string scheme, in, out, importance, name = "tensor";
  ThreadsFlag threads;
  bool json = false;
};

double finite_or_big(double v) { return std::isfinite(v) ? v : (v > 0 ? 1e308 : -1e308); }

void run_qtensor(const QtensorArgs& a) {
  const auto codec = parse_codec(a.scheme);  // a scheme, or llama.cpp's q8_0 / q4_0
  const Scheme& s = codec->scheme();
  if (!is_npy(a.in)) fail_usage("qtensor reads a .npy array; got '" + a.in + "'");
  if (a.name.empty()) fail_usage("--name is empty");
  const int threads = a.threads.resolve();
  check_array_paths(a.out, {a.in, a.importance});
  const FloatArray arr = read_floats(a.in);
  if (arr.size() == 0) fail_input("'" + a.in + "' holds no elements: there is nothing to quantize");
  const std::vector<float> x = to_float32(arr);
  const std::vector<uint64_t> shape = arr.shape;
  QuantizeOptions o;
  o.threads = threads;
  std::vector<float> w;
  if (!a.importance.empty()) {
    w = to_float32(read_floats(a.importance));
    const uint64_t cols = shape.empty() ? 1 : shape.back();
    if (w.size() == x.size()) {
      o.importance_per_column = false;
    } else if (w.size() == cols) {
      o.importance_per_column = true;
    } else {
      fail_input("importance weights hold " + std::to_string(w.size()) + " values; expected " +
                 std::to_string(x.size()) + " (one per element) or " + std::to_string(cols) + " (one per column)");
    }
    for (float v : w) {
      if (!std::isfinite(v) || v < 0) fail_input("importance weights must be finite and non-negative");
    }
    o.importance = w.data();
    o.importance_count = w.size();
  } else if (codec->generic() && s.rule == ScaleRule::kWmse) {
    fail_usage("scale=wmse needs --importance W.npy (one weight per element or per column)");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const QuantizedTensor q = codec->quantize({x.data(), shape}, o);
  const double qs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<float> y(x.size());
  dequantize(q, y.data(), threads);
  const ErrorStats e = error_stats(x.data(), y.data(), x.size(), threads);
  // Written last: whatever fails above leaves no file.
  save_quantized_tensors(a.out, {{a.name, &q}});
  const QuantizedTensor::Bits b = q.bits();
  const double n = static_cast<double>(std::max<uint64_t>(1, x.size()));
  if (a.json) {
    nlohmann::json j;
    j["scheme"] = a.scheme;
    j["spec"] = codec->spec();
    j["shape"] = shape;
    j["elements"] = x.size();
    j["bits_per_element"] = q.bits_per_element();
    j["bits"] = {{"codes", b.codes},
                 {"scales", b.scales},
                 {"tensor_scale", b.tensor_scale},
                 {"zeros", b.zeros},
                 {"outlier_positions", b.outlier_positions},
                 {"outlier_values", b.outlier_values},
                 {"total", b.total()}};
    j["outliers"] = q.outliers.count;
    j["qsnr_db"] = finite_or_big(e.qsnr_db());
    j["mse"] = e.mse();
    j["cosine"] = e.cosine();
    j["relative_rmse"] = e.relative_rmse();
    j["max_abs_err"] = e.max_abs_err;
    j["nonfinite"] = e.nonfinite;
    j["lost"] = e.lost;
    j["threads"] = threads;
    j["quantize_seconds"] = qs;
    j["output"] = a.out;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s -> %s\n", a.in.c_str(), a.out.c_str());
  std::printf("scheme            %s (%s)\n", a.scheme.c_str(), codec->spec().c_str());
  std::printf("elements          %zu, shape [", x.size());
  for (size_t i = 0; i < shape.size(); ++i) std::printf("%s%llu", i ? ", " : "", static_cast<unsigned long long>(shape[i]));
  std::printf("]\n");
  std::printf("bits per element  %.6f (codes %.4f, scales %.4f, zeros %.4f, tensor scale %.6f, outliers %.4f)\n",
              q.bits_per_element(), b.codes / n, b.scales / n, b.zeros / n, b.tensor_scale / n,
              (b.outlier_positions + b.outlier_values) / n);
  if (q.outliers.count) std::printf("outliers          %llu\n", static_cast<unsigned long long>(q.outliers.count));
  std::printf("QSNR              %.3f dB\n", e.qsnr_db());
  std::printf("MSE               %.6e\n", e.mse());
  std::printf("relative RMSE     %.6e\n", e.relative_rmse());
  std::printf("cosine            %.8f\n", e.cosine());
  std::printf("max |error|       %.6e\n", e.max_abs_err);
  if (e.nonfinite) {
    std::printf("non-finite pairs  %llu (%llu from finite input)\n", static_cast<unsigned long long>(e.nonfinite),
                static_cast<unsigned long long>(e.lost));
  }
  std::printf("quantize time     %.3f s, %d thread%s\n", qs, threads, threads == 1 ? "" : "s");
}

}  // namespace

Action add_qtensor_command(CLI::App& app) {
  auto a = std::make_shared<QtensorArgs>();
  auto* cmd = app.add_subcommand("qtensor", "Quantize a .npy array with a scheme and write the QuantizedTensor");
  cmd->add_option("--scheme", a->scheme, "scheme spec or preset (see docs/schemes.md)")->required();
  cmd->add_option("--importance", a->importance, "importance weights for scale=wmse (.npy, per element or column)");
  cmd->add_option("--name", a->name, "tensor name inside the output file (default 'tensor')");
  a->threads.add_to(cmd);
  cmd->add_flag("--json", a->json, "print the metrics as JSON");
  cmd->add_option("IN", a->in, "input array (.npy: float32, float16 or float64)")->required();
  cmd->add_option("OUT", a->out, "output safetensors file")->required();
  cmd->footer("Example: lowbit qtensor --scheme int4/g128/asym weights.npy weights.q.safetensors");
  return [a] { run_qtensor(*a); };
}

}  // namespace lowbit::cli

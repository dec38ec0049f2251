// `lowbit quantize IN OUT (--scheme S | --recipe R.json) [--method rtn|mse|hqq]
//   [--threads N] [--report R.json] [--to gguf|safetensors] [--nan refuse|zero|keep] [--quiet]`
//
// Quantizes a whole checkpoint tensor by tensor (lowbit/algo/model_quantizer.h)
// into GGUF (for llama.cpp) or compressed-tensors (for vLLM), and prints what
// each tensor cost and lost. IN may be an installed model's name ("minilm",
// "smollm2"). Several --scheme options compare schemes: OUT is then a
// directory that receives one output per scheme, and a comparison table
// (size, bits per weight, mean and worst-tensor QSNR) ends the run.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "lowbit/algo/compressed_tensors_model_sink.h"
#include "lowbit/algo/gguf_model_sink.h"
#include "lowbit/algo/model_quantizer.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/io/checkpoint.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/installed_models.h"
#include "tools/lowbit/progress_bar.h"

namespace lowbit::cli {
namespace {

namespace fs = std::filesystem;

struct QuantizeArgs {
  std::string in, out, recipe, method = "rtn", report, to, nan = "refuse";
  std::vector<std::string> schemes;
  int threads = 0;
  bool quiet = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string output_kind(const QuantizeArgs& a, const std::string& out) {
  if (!a.to.empty()) {
    if (a.to != "gguf" && a.to != "safetensors") fail_usage("--to must be gguf or safetensors, not '" + a.to + "'");
    return a.to;
  }
  return ends_with(out, ".gguf") ? "gguf" : "safetensors";
}

// A scheme name that is safe as a file name: int4/g128/asym -> int4_g128_asym.
std::string slug(const std::string& scheme) {
  std::string s;
  for (char c : scheme) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return s;
}

std::string fmt_shape(const std::vector<uint64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s.append(i ? "x" : "").append(std::to_string(shape[i]));
  return s.empty() ? "scalar" : s;
}

std::string fmt_db(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

void print_tensor_table(const ModelReport& r) {
  std::printf("%-52s %-12s %-6s %-18s %-4s %7s %9s %10s\n", "tensor", "shape", "in", "stored as", "meth", "bits",
              "QSNR dB", "rel RMSE");
  for (const TensorReport& t : r.tensors) {
    const std::string name = t.name.size() > 52 ? std::string("...").append(t.name.substr(t.name.size() - 49)) : t.name;
    if (t.quantized) {
      std::printf("%-52s %-12s %-6s %-18s %-4s %7.3f %9s %10.3e\n", name.c_str(), fmt_shape(t.shape).c_str(),
                  t.dtype_in.c_str(), t.scheme.c_str(), t.method.c_str(), t.bits_per_element, fmt_db(t.qsnr_db).c_str(),
                  t.relative_rmse);
    } else {
      std::printf("%-52s %-12s %-6s %-18s %-4s %7.3f %9s %10s   (kept: %s)\n", name.c_str(), fmt_shape(t.shape).c_str(),
                  t.dtype_in.c_str(), t.scheme.c_str(), "-", t.bits_per_element, "-", "-", t.reason.c_str());
    }
  }
}

void print_totals(const ModelReport& r) {
  size_t nq = 0;
  for (const TensorReport& t : r.tensors) nq += t.quantized;
  std::printf("\n%s -> %s (%s)\n", r.input.c_str(), r.output.c_str(), r.container_out.c_str());
  std::printf("tensors           %zu quantized, %zu kept", nq, r.tensors.size() - nq);
  if (!r.omitted.empty()) {
    std::printf(", %zu omitted (the input's activation/KV-cache scales, e.g. %s: the output quantizes weights only)",
                r.omitted.size(), r.omitted[0].c_str());
  }
  std::printf("\n");
  std::printf("size              %.2f MB -> %.2f MB (%.3f of the input)\n", r.input_bytes / 1e6, r.output_bytes / 1e6,
              r.input_bytes ? static_cast<double>(r.output_bytes) / r.input_bytes : 0.0);
  std::printf("bits per weight   %.3f over quantized tensors (%llu weights), %.3f over the whole file\n",
              r.avg_bits_quantized, static_cast<unsigned long long>(r.params_quantized), r.avg_bits_file);
  if (nq) {
    std::printf("QSNR              mean %s dB, worst %s dB (%s)\n", fmt_db(r.mean_qsnr_db).c_str(),
                fmt_db(r.worst_qsnr_db).c_str(), r.worst_tensor.c_str());
  }
  std::printf("time              %.2f s (%.0f MB/s of float32 input), %d threads, peak memory %.0f MB\n", r.seconds,
              r.input_mb_per_s, r.threads, r.peak_rss_bytes / 1e6);
  for (const std::string& n : r.notes) std::printf("note              %s\n", n.c_str());
}

ModelReport run_one(const QuantizeArgs& a, const Checkpoint& in, const Recipe& recipe, const std::string& out) {
  const std::string kind = output_kind(a, out);
  std::unique_ptr<ModelSink> sink;
  if (kind == "gguf") {
    sink = make_gguf_model_sink(in, out);
  } else {
    sink = make_compressed_tensors_model_sink(in, out);
  }
  ModelQuantizeOptions o;
  o.recipe = recipe;
  o.method = parse_method(a.method);
  o.nan = parse_nan_policy(a.nan);
  o.threads = a.threads > 0 ? a.threads : default_thread_count();
  uint64_t total = 0;
  for (const CheckpointTensor& t : in.tensors()) total += t.nbytes;
  ProgressBar bar(in.tensors().size(), total, a.quiet);
  o.progress = [&](size_t done, uint64_t bytes, const std::string& name) { bar.update(done, bytes, name); };
  ModelReport r = quantize_model(in, *sink, o);
  bar.finish();
  r.output = out;
  r.container_out = kind == "gguf" ? "gguf" : "compressed-tensors";
  return r;
}

void run_quantize(const QuantizeArgs& a) {
  if (a.schemes.empty() == a.recipe.empty()) fail_usage("give exactly one of --scheme S or --recipe R.json");
  const std::string in_path = resolve_installed_model(a.in).value_or(a.in);
  const Checkpoint in = Checkpoint::open(in_path);
  std::vector<ModelReport> reports;
  if (a.schemes.size() <= 1) {
    const Recipe recipe = a.recipe.empty() ? Recipe::from_scheme(a.schemes[0]) : Recipe::load(a.recipe);
    reports.push_back(run_one(a, in, recipe, a.out));
    print_tensor_table(reports.back());
    print_totals(reports.back());
  } else {
    std::error_code ec;
    fs::create_directories(a.out, ec);
    if (ec) fail_io("cannot create output directory '" + a.out + "': " + ec.message());
    for (const std::string& s : a.schemes) {
      const std::string ext = output_kind(a, a.out) == "gguf" ? ".gguf" : "";
      const std::string out = (fs::path(a.out) / (slug(s) + ext)).string();
      if (!a.quiet) std::fprintf(stderr, "quantizing %s with %s -> %s\n", in_path.c_str(), s.c_str(), out.c_str());
      reports.push_back(run_one(a, in, Recipe::from_scheme(s), out));
    }
    std::printf("%s: %llu weights in %zu tensors, %.2f MB; method %s\n\n", in_path.c_str(),
                static_cast<unsigned long long>(reports[0].params_total), reports[0].tensors.size(),
                reports[0].input_bytes / 1e6, a.method.c_str());
    std::printf("%-24s %10s %9s %9s %10s %11s  %s\n", "scheme", "size MB", "bits/w", "file b/w", "mean QSNR",
                "worst QSNR", "worst tensor");
    for (size_t i = 0; i < reports.size(); ++i) {
      const ModelReport& r = reports[i];
      std::printf("%-24s %10.2f %9.3f %9.3f %10s %11s  %s\n", a.schemes[i].c_str(), r.output_bytes / 1e6,
                  r.avg_bits_quantized, r.avg_bits_file, fmt_db(r.mean_qsnr_db).c_str(), fmt_db(r.worst_qsnr_db).c_str(),
                  r.worst_tensor.c_str());
    }
    for (size_t i = 0; i < reports.size(); ++i) {
      for (const std::string& n : reports[i].notes) std::printf("note (%s): %s\n", a.schemes[i].c_str(), n.c_str());
    }
  }
  if (!a.report.empty()) {
    nlohmann::json j;
    if (reports.size() == 1) {
      j = reports[0].to_json();
    } else {
      j = nlohmann::json::array();
      for (const ModelReport& r : reports) j.push_back(r.to_json());
    }
    const std::string text = j.dump(2) + "\n";
    write_file_atomic(a.report, text.data(), text.size());
  }
}

}  // namespace

Action add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model checkpoint (safetensors or GGUF) by a scheme or recipe");
  cmd->add_option("IN", a->in,
                  "input: a .safetensors file, a sharded checkpoint's index or directory, a .gguf file, or an "
                  "installed model's name (minilm, smollm2)")
      ->required();
  cmd->add_option("OUT", a->out,
                  "output: a .gguf file, or a compressed-tensors directory (or .safetensors file); with several "
                  "--scheme, a directory receiving one output per scheme")
      ->required();
  cmd->add_option("--scheme", a->schemes,
                  "scheme for the default targets (linear weights); repeat to compare schemes. GGUF output takes "
                  "ggml types (q4_0, q4_k, q8_0, mxfp4, ...)");
  cmd->add_option("--recipe", a->recipe,
                  "recipe JSON: ordered rules, each an RE2/Python-syntax regex over tensor names (docs/recipes.md)");
  cmd->add_option("--method", a->method, "rtn (reference rounding), mse (clipping search), hqq (asymmetric int)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (default: all cores, or LOWBIT_NUM_THREADS)");
  cmd->add_option("--report", a->report, "write the report as JSON to this file");
  cmd->add_option("--to", a->to, "container: gguf or safetensors (default: from OUT's extension)");
  cmd->add_option("--nan", a->nan, "NaN/inf weights: refuse (default), zero (replace by 0), keep")->capture_default_str();
  cmd->add_flag("--quiet", a->quiet, "no progress bar");
  cmd->footer(
      "Examples:\n"
      "  lowbit quantize minilm out/ --scheme int4/g128/asym --method mse\n"
      "  lowbit quantize smollm2 smol-q4k.gguf --scheme q4_k\n"
      "  lowbit quantize minilm cmp/ --scheme int8/channel --scheme mxfp4 --scheme nvfp4");
  return [a] { run_quantize(*a); };
}

}  // namespace lowbit::cli

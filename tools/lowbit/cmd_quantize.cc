// `lowbit quantize IN OUT (--scheme S | --recipe R.json) [--method rtn|mse|hqq|gptq]
//   [--calib FILE] [--threads N] [--report R.json] [--to gguf|safetensors] [--nan refuse|zero|keep]
//   [--overwrite] [--quiet]`
//
// Quantizes a whole checkpoint tensor by tensor (lowbit/pipeline/model_quantizer.h)
// into GGUF (for llama.cpp) or compressed-tensors (for vLLM), and prints what
// each tensor cost and lost. IN may be an installed model's name ("minilm",
// "smollm2"). Several --scheme options compare schemes: OUT is then a
// directory that receives one output per scheme, and a comparison table
// (size, bits per weight, mean and worst-tensor QSNR) ends the run.
//
// Everything that can be refused is refused before the work: paths that
// would write over an input or over files lowbit did not write, an
// unwritable report, schemes the container cannot store, recipe rules that
// match nothing. Outputs appear whole or not at all.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/output_directory.h"
#include "lowbit/core/path_identity.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/pipeline/model_quantizer.h"
#include "lowbit/pipeline/sinks/compressed_tensors_model_sink.h"
#include "lowbit/pipeline/sinks/gguf_model_sink.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/quantize_eval.h"
#include "tools/lowbit/installed_models.h"
#include "tools/lowbit/progress_bar.h"

namespace lowbit::cli {
namespace {

namespace fs = std::filesystem;

struct QuantizeArgs {
  std::string in, out, recipe, method = "rtn", report, to, nan = "refuse", calib;
  std::vector<std::string> schemes;
  ThreadsFlag threads;
  bool quiet = false, overwrite = false, eval = false;
  QuantizeEvalSettings eval_settings;
};

// The container OUT asks for. A name whose extension says the other
// container is refused: `--to safetensors out.gguf` would make a directory
// named out.gguf, `--to gguf out.safetensors` GGUF bytes under a
// safetensors name.
std::string output_kind(const QuantizeArgs& a, const std::string& out, bool comparison) {
  const bool gguf_name = has_extension(out, ".gguf"), st_name = has_extension(out, ".safetensors");
  if (!a.to.empty()) {
    if (a.to != "gguf" && a.to != "safetensors") fail_usage("--to must be gguf or safetensors, not '" + a.to + "'");
    if (!comparison && a.to == "safetensors" && gguf_name) {
      fail_usage("--to safetensors writes a compressed-tensors directory (or a .safetensors file), but '" + out +
                 "' ends in .gguf: name the output for what it holds");
    }
    if (!comparison && a.to == "gguf" && st_name) {
      fail_usage("--to gguf writes a GGUF file, but '" + out + "' ends in .safetensors: name the output for what "
                 "it holds (e.g. " + out.substr(0, out.size() - 12) + ".gguf)");
    }
    return a.to;
  }
  return gguf_name ? "gguf" : "safetensors";
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
  if (v == 0) v = 0;  // -0.00 reads as a sign that is not there
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string fmt_sci(double v) {
  if (std::isinf(v)) return "inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.3e", v);
  return b;
}

// The name a GGUF written from a safetensors input records: the installed
// model's own name, or the model directory's (a file's stem when it stands
// alone): never a path of this machine.
std::string model_name(const std::string& arg, const Checkpoint& in) {
  for (const InstalledModel& m : installed_models()) {
    if (m.name == arg) return m.description.substr(0, m.description.find(','));
  }
  std::error_code ec;
  const bool model_dir = fs::exists(fs::path(in.directory()) / "config.json", ec);
  fs::path p = model_dir ? fs::absolute(in.directory(), ec).lexically_normal() : fs::path(in.files().front());
  if (model_dir) return without_trailing_slashes(p.string()) == "/" ? "model" : p.filename().string();
  return p.stem().string();
}

void print_tensor_table(const ModelReport& r) {
  // Column widths from the contents: a long scheme spec or tensor name
  // must not push the columns after it out of line.
  size_t wname = 6, wshape = 5, win = 2, wstored = 9;
  for (const TensorReport& t : r.tensors) {
    wname = std::max(wname, std::min<size_t>(t.name.size(), 64));
    wshape = std::max(wshape, fmt_shape(t.shape).size());
    win = std::max(win, t.dtype_in.size());
    wstored = std::max(wstored, t.scheme.size());
  }
  const auto w = [](size_t n) { return static_cast<int>(n); };
  std::printf("%-*s  %-*s  %-*s  %-*s  %-4s  %7s  %8s  %10s\n", w(wname), "tensor", w(wshape), "shape", w(win), "in",
              w(wstored), "stored as", "meth", "bits", "QSNR dB", "rel RMSE");
  for (const TensorReport& t : r.tensors) {
    const std::string name = t.name.size() > 64 ? std::string("...").append(t.name.substr(t.name.size() - 61)) : t.name;
    std::string tail;
    if (!t.quantized) tail = "  (kept: " + t.reason + ")";
    if (t.all_zero) tail += "  (decodes to all zeros)";
    if (t.lost) tail += "  (" + std::to_string(t.lost) + " finite weights decode to NaN)";
    if (!t.fallback.empty()) tail += "  (fallback: see notes)";
    if (t.nonfinite) tail += "  (" + std::to_string(t.nonfinite) + " NaN/inf in the input)";
    std::printf("%-*s  %-*s  %-*s  %-*s  %-4s  %7.3f  %8s  %10s%s\n", w(wname), name.c_str(), w(wshape),
                fmt_shape(t.shape).c_str(), w(win), t.dtype_in.c_str(), w(wstored), t.scheme.c_str(),
                t.quantized ? t.method.c_str() : "-", t.bits_per_element, t.quantized ? fmt_db(t.qsnr_db).c_str() : "-",
                t.quantized ? fmt_sci(t.relative_rmse).c_str() : "-", tail.c_str());
  }
  std::printf("\n");
}

void print_totals(const ModelReport& r) {
  size_t nq = 0;
  for (const TensorReport& t : r.tensors) nq += t.quantized;
  std::printf("%s -> %s (%s)\n", r.input.c_str(), r.output.c_str(), r.container_out.c_str());
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
  std::printf("time              %.2f s (%.0f float32 MB/s quantized), %d threads, peak memory %.0f MB\n", r.seconds,
              r.input_mb_per_s, r.threads, r.peak_rss_bytes / 1e6);
  for (const std::string& n : r.notes) std::printf("note              %s\n", n.c_str());
}

// --eval's columns in the comparison table, and its lines for one output.
std::string quality_header(const std::string& kind) {
  return kind == "language" ? fmt::format("  {:>9}  {:>9}  {:>8}", "PPL", "mean KLD", "same top")
                            : fmt::format("  {:>9}  {:>9}  {:>9}", "mean cos", "worst cos", "recall@1");
}

std::string quality_cells(const ModelQuality& q) {
  return q.kind == "language" ? fmt::format("  {:>9.4f}  {:>9.5f}  {:>7.2f}%", q.ppl, q.kld_mean, 100 * q.same_top)
                              : fmt::format("  {:>9.6f}  {:>9.6f}  {:>8.2f}%", q.cosine_mean, q.cosine_worst,
                                            100 * q.recall_at_1);
}

void print_quality_legend(const ModelQuality& q) {
  if (q.kind == "language") {
    std::printf("(--eval: against the input on the first %lld scored tokens of kjv, llama.cpp's KLD convention; the "
                "input's PPL %.4f)\n",
                static_cast<long long>(q.tokens), q.ppl_base);
  } else {
    std::printf("(--eval: cosine to the input's embeddings of %lld sentences; recall@1 of WEB verses retrieving their "
                "KJV verse, the input's %.2f%%)\n",
                static_cast<long long>(q.sentences), 100 * q.recall_at_1_base);
  }
}

void print_quality(const ModelQuality& q) {
  if (q.kind == "language") {
    std::printf("quality           PPL %.4f (input %.4f), mean KLD %.5f, same top %.2f%% on %lld tokens of kjv (%.1f s)\n",
                q.ppl, q.ppl_base, q.kld_mean, 100 * q.same_top, static_cast<long long>(q.tokens), q.seconds);
  } else {
    std::printf("quality           cosine mean %.6f, worst %.6f; recall@1 %.2f%% (input %.2f%%) on %lld sentences "
                "(%.1f s)\n",
                q.cosine_mean, q.cosine_worst, 100 * q.recall_at_1, 100 * q.recall_at_1_base,
                static_cast<long long>(q.sentences), q.seconds);
  }
}

struct Run {
  std::string in_arg;
  const Checkpoint* in;
  const Method* method = nullptr;
  NanPolicy nan;
  int threads;
  SinkOptions sink;
};

ModelReport run_one(const QuantizeArgs& a, const Run& run, const Recipe& recipe, const std::string& out,
                    const std::string& kind, const std::string& shown_out) {
  std::unique_ptr<ModelSink> sink = kind == "gguf" ? make_gguf_model_sink(*run.in, out, run.sink)
                                                   : make_compressed_tensors_model_sink(*run.in, out, run.sink);
  ModelQuantizeOptions o;
  o.recipe = recipe;
  o.method = run.method;
  o.nan = run.nan;
  o.threads = run.threads;
  std::optional<ProgressBar> sized;  // sized by the first report, once the plan knows the work
  o.progress = [&](const ModelProgress& p) {
    if (!sized) sized.emplace(p.tensors_total, p.work_total, a.quiet, "float32 MB/s");
    sized->update(p.tensors_done, p.work_done, p.current);
  };
  ModelReport r = quantize_model(*run.in, *sink, o);
  if (sized) sized->finish();
  r.output = shown_out;
  r.container_out = kind == "gguf" ? "gguf" : "compressed-tensors";
  return r;
}

void run_quantize(const QuantizeArgs& a) {
  if (a.schemes.empty() == a.recipe.empty()) fail_usage("give exactly one of --scheme S or --recipe R.json");
  if (a.in.empty()) fail_usage("IN is an empty path");
  if (a.out.empty()) fail_usage("OUT is an empty path");
  for (const std::string& s : a.schemes) {
    if (s.empty()) fail_usage("--scheme is empty");
  }
  const bool comparison = a.schemes.size() > 1;
  Run run;
  run.method = &find_method(a.method);
  run.nan = parse_nan_policy(a.nan);
  run.threads = a.threads.resolve();
  run.sink.overwrite = a.overwrite;
  run.in_arg = a.in;
  // A trailing slash says "a directory", which a GGUF file is not.
  const std::string out = without_trailing_slashes(a.out);
  const std::string kind = output_kind(a, out, comparison);
  if (!comparison && kind == "gguf") check_output_file("OUT", a.out);

  const std::string in_path = resolve_installed_model(a.in).value_or(a.in);
  const Checkpoint in = Checkpoint::open(in_path);
  run.in = &in;
  run.sink.model_name = model_name(a.in, in);
  Recipe recipe = a.recipe.empty() ? Recipe::from_scheme(a.schemes[0]) : Recipe::load(a.recipe);
  if (!a.calib.empty()) {
    if (!recipe.importance_file.empty() && recipe.importance_file != a.calib) {
      fail_usage("--calib '" + a.calib + "' and the recipe's importance file '" + recipe.importance_file +
                 "' name two calibration files: give one");
    }
    recipe.importance_file = a.calib;
  }
  if (recipe.has_runtime_points && !a.quiet) {
    std::fprintf(stderr,
                 "note: the recipe's inputs, attention and kv rules are runtime settings, not stored in %s; run "
                 "them with lowbit eval ppl|kld --plan %s\n",
                 a.out.c_str(), a.recipe.c_str());
  }

  // Nothing lowbit writes may be something it reads, however it is spelled.
  std::vector<NamedPath> inputs;
  for (const std::string& f : in.files()) inputs.push_back({"the input", f});
  inputs.push_back({"the input", in.path()});
  inputs.push_back({"the recipe", a.recipe});
  inputs.push_back({a.calib.empty() ? "the recipe's importance file" : "--calib", recipe.importance_file});
  std::vector<NamedPath> outputs = {{"OUT", out}};
  if (!a.report.empty()) outputs.push_back({"--report", a.report});
  check_paths(inputs, outputs);
  if (comparison || kind != "gguf") {
    if (comparison || !has_extension(out, ".safetensors")) {
      OutputDirectory::check(out, a.overwrite);
      // The directory is replaced as a whole at the end: a report inside
      // it would be swapped away with the old contents.
      std::error_code ec;
      const fs::path dir = fs::weakly_canonical(fs::absolute(out, ec), ec);
      const fs::path rel =
          a.report.empty() ? fs::path() : fs::weakly_canonical(fs::absolute(a.report, ec), ec).lexically_relative(dir);
      if (!rel.empty() && *rel.begin() != "..") {
        fail_usage("--report '" + a.report + "' is inside the output directory '" + out +
                   "', which lowbit writes as a whole: put the report beside it (e.g. " + out + ".report.json)");
      }
    } else {
      check_output_file("OUT", a.out);
    }
  }
  // --eval checks the model kind, the output container and the corpora
  // before any work.
  std::optional<QuantizeEvaluator> evaluator;
  if (a.eval) evaluator.emplace(in_path, in, kind == "gguf", a.eval_settings, run.threads);
  std::vector<ModelQuality> quality;

  // The report's file is created now: an unwritable path fails before the
  // work, and the report appears only with the output it describes.
  std::optional<AtomicFile> report_file;
  if (!a.report.empty()) {
    check_output_file("--report", a.report);
    report_file.emplace(a.report);
  }

  std::vector<ModelReport> reports;
  if (!comparison) {
    reports.push_back(run_one(a, run, recipe, out, kind, out));
    if (!a.quiet) print_tensor_table(reports.back());
    print_totals(reports.back());
    if (evaluator) {
      if (!a.quiet) std::fprintf(stderr, "evaluating %s against %s\n", out.c_str(), in_path.c_str());
      quality.push_back(evaluator->evaluate(out));
      print_quality(quality.back());
    }
  } else {
    // One directory, all of it or none: each scheme's output is built
    // inside its temporary form.
    OutputDirectory dir(out, a.overwrite);
    for (const std::string& s : a.schemes) {
      const std::string name = slug(s) + (kind == "gguf" ? ".gguf" : "");
      const std::string shown = (fs::path(out) / name).string();
      if (!a.quiet) std::fprintf(stderr, "quantizing %s with %s -> %s\n", in_path.c_str(), s.c_str(), shown.c_str());
      reports.push_back(run_one(a, run, Recipe::from_scheme(s), (fs::path(dir.temp_path()) / name).string(), kind, shown));
    }
    dir.commit();
    if (evaluator) {
      for (size_t i = 0; i < reports.size(); ++i) {
        if (!a.quiet) std::fprintf(stderr, "evaluating %s against %s\n", reports[i].output.c_str(), in_path.c_str());
        quality.push_back(evaluator->evaluate(reports[i].output));
      }
    }
    std::printf("%s: %llu weights in %zu tensors, %.2f MB; method %s\n\n", in_path.c_str(),
                static_cast<unsigned long long>(reports[0].params_total), reports[0].tensors.size(),
                reports[0].input_bytes / 1e6, a.method.c_str());
    size_t ws = 6;
    for (const std::string& s : a.schemes) ws = std::max(ws, s.size());
    std::printf("%-*s  %10s  %9s  %9s  %10s  %11s%s  %s\n", static_cast<int>(ws), "scheme", "size MB", "bits/w",
                "file b/w", "mean QSNR", "worst QSNR", evaluator ? quality_header(evaluator->kind()).c_str() : "",
                "worst tensor");
    for (size_t i = 0; i < reports.size(); ++i) {
      const ModelReport& r = reports[i];
      std::printf("%-*s  %10.2f  %9.3f  %9.3f  %10s  %11s%s  %s\n", static_cast<int>(ws), a.schemes[i].c_str(),
                  r.output_bytes / 1e6, r.avg_bits_quantized, r.avg_bits_file, fmt_db(r.mean_qsnr_db).c_str(),
                  fmt_db(r.worst_qsnr_db).c_str(), evaluator ? quality_cells(quality[i]).c_str() : "",
                  r.worst_tensor.c_str());
    }
    if (evaluator) print_quality_legend(quality[0]);
    for (size_t i = 0; i < reports.size(); ++i) {
      for (const std::string& n : reports[i].notes) std::printf("note (%s): %s\n", a.schemes[i].c_str(), n.c_str());
    }
  }
  if (report_file) {
    nlohmann::json j;
    const auto with_quality = [&](size_t i) {
      nlohmann::json r = reports[i].to_json();
      if (i < quality.size()) r["quality"] = quality[i].to_json();
      return r;
    };
    if (reports.size() == 1) {
      j = with_quality(0);
    } else {
      j = nlohmann::json::array();
      for (size_t i = 0; i < reports.size(); ++i) j.push_back(with_quality(i));
    }
    const std::string text = j.dump(2) + "\n";
    report_file->write(text.data(), text.size());
    report_file->commit();
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
                  "--scheme, a directory receiving one output per scheme. Its parent directory must exist")
      ->required();
  cmd->add_option("--scheme", a->schemes,
                  "scheme for the default targets (linear weights); repeat to compare schemes. GGUF output takes "
                  "ggml types (q4_0, q4_k, q8_0, mxfp4, ...)");
  cmd->add_option("--recipe", a->recipe,
                  "recipe JSON: ordered rules, each an RE2/Python-syntax regex over tensor names; a plan's inputs, "
                  "attention and kv keys are checked, not stored (docs/recipes.md)");
  cmd->add_option("--method", a->method,
                  "rtn (reference rounding), mse (clipping search), hqq (asymmetric int), gptq (error feedback; "
                  "needs --calib with Gram matrices; options as gptq:act_order=0,static_groups,damp=0.01,block=128, "
                  "act-order by default; docs/gptq.md)")
      ->capture_default_str();
  cmd->add_option("--calib", a->calib,
                  "calibration statistics from `lowbit calibrate` (or llama-imatrix): per-column importance for "
                  "mse and the ggml types, and with calibrate --gram the Hessians gptq needs");
  a->threads.add_to(cmd);
  cmd->add_option("--report", a->report, "write the report as JSON to this file");
  cmd->add_option("--to", a->to, "container: gguf or safetensors (default: from OUT's extension)");
  cmd->add_option("--nan", a->nan,
                  "NaN/inf values (every tensor is checked): refuse (default), zero (replace by 0), keep (a "
                  "quantized block holding one decodes to NaN)")
      ->capture_default_str();
  cmd->add_flag("--overwrite", a->overwrite,
                "let a directory OUT that holds other files receive the output: lowbit replaces only the files it "
                "writes (and those its earlier output there listed) and leaves the rest");
  cmd->add_flag("--quiet", a->quiet, "no progress bar and no per-tensor table: print the totals only");
  cmd->add_flag("--eval", a->eval,
                "also measure each output against the input: language models PPL, mean KLD and top-1 agreement on "
                "kjv; embedding models mean/worst cosine and paraphrase recall@1 on kjv-web (docs/evaluation.md)");
  cmd->add_option("--eval-chunks", a->eval_settings.chunks, "--eval, language models: chunks of 512 tokens")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  cmd->add_option("--eval-pairs", a->eval_settings.pairs, "--eval, embedding models: KJV/WEB verse pairs")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{31094}));
  cmd->footer(
      "Examples:\n"
      "  lowbit quantize minilm out/ --scheme int4/g128/asym --method mse\n"
      "  lowbit quantize smollm2 smol-q4k.gguf --scheme q4_k\n"
      "  lowbit quantize minilm cmp/ --scheme int8/channel --scheme mxfp4 --scheme nvfp4\n"
      "  lowbit calibrate lowbit-lm --corpus linux-doc --chunks 16 --gram -o calib.gguf\n"
      "  lowbit export lowbit-lm lm-hf/ && lowbit quantize lm-hf/ lm-gptq/ --scheme int4/g128 --method gptq --calib calib.gguf\n"
      "An existing OUT file is replaced once the new one is complete; an existing OUT directory only when it is\n"
      "empty or a previous lowbit output (see --overwrite). OUT may not be or hold the input.");
  return [a] { run_quantize(*a); };
}

}  // namespace lowbit::cli

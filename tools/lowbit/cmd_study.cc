// `lowbit study qsnr`: quantize one data set (a synthetic distribution or a
// real .npy array) with several schemes and compare bits per element, QSNR
// and MSE; optionally plot QSNR against bits, or against block crest factor.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/eval/distributions.h"
#include "lowbit/eval/qsnr_study.h"
#include "lowbit/eval/svg_plot.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

struct StudyArgs {
  std::string dist, schemes, plot;
  uint64_t n = 0, cols = 4096, crest_block = 32;
  SeedFlag seed;
  ThreadsFlag threads;
  int crest_bins = 12;
  bool json = false, sweep_crest = false;
};

std::vector<std::string> split_schemes(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) fail_usage("--schemes has an empty entry in '" + s + "'");
    out.push_back(item);
  }
  if (out.empty()) fail_usage("--schemes needs at least one scheme");
  return out;
}

double json_num(double v) { return std::isfinite(v) ? v : (v > 0 ? 1e308 : -1e308); }

// What the study holds per element at its peak: the data and its
// reconstruction as float32, and the codes of a scheme with outliers (at
// most a byte and a bit per element, with their scales).
constexpr uint64_t kStudyBytesPerElement = 10;

std::string gib(uint64_t bytes) {
  char b[48];
  std::snprintf(b, sizeof b, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return b;
}

// The memory this process may use: the machine's, or its cgroup's limit
// where that is lower (a container's limit is what the kernel enforces).
// 0 when unknown.
uint64_t memory_limit() {
  uint64_t have = 0;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) have = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  for (const char* f : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(f);
    unsigned long long v = 0;
    if (in >> v && v > 0 && (have == 0 || v < have)) have = v;  // "max" (no limit) does not parse
  }
  return have;
}

// Refuses, before allocating anything, a study that cannot fit: a count no
// machine can address is a usage mistake; one larger than this machine's
// memory would get the process killed part way, so it is refused as well.
void check_study_size(uint64_t n, const std::string& what) {
  const uint64_t addressable = std::min<uint64_t>(std::vector<float>().max_size(), UINT64_MAX / kStudyBytesPerElement);
  if (n > addressable) {
    fail_usage(what + " is more elements than any machine can hold (" + std::to_string(kStudyBytesPerElement) +
               " bytes each: the data, its reconstruction and the codes)");
  }
  const uint64_t need = n * kStudyBytesPerElement, have = memory_limit();
  if (have != 0 && need > have) {
    fail_input("cannot allocate " + gib(need) + " for " + what + " (" + std::to_string(kStudyBytesPerElement) +
               " bytes per element): this machine has " + gib(have) + " of memory");
  }
}

// The crest sweep compares blocks with each other: fewer than two is no
// sweep. Checked before any work so that the message says which flag or
// input to change.
std::string too_few_blocks(uint64_t n, uint64_t block) {
  const std::string min_n = block <= UINT64_MAX / kMinCrestSweepBlocks
                                ? std::to_string(kMinCrestSweepBlocks * block)
                                : std::to_string(kMinCrestSweepBlocks) + " x " + std::to_string(block);
  return std::to_string(n) + " elements, too few for --sweep-crest: it needs at least " +
         std::to_string(kMinCrestSweepBlocks) + " blocks of --crest-block " + std::to_string(block) + " elements (" +
         min_n + " elements)";
}

void run_qsnr(const StudyArgs& a) {
  const std::vector<std::string> schemes = split_schemes(a.schemes);
  if (a.crest_block == 0) fail_usage("--crest-block must be > 0");
  const int threads = a.threads.resolve();
  const uint64_t seed = a.seed.value();
  if (!a.plot.empty()) {
    // Before the study, which may take minutes: the plot's path, and
    // never over the data file it plots.
    check_output_file("--plot", a.plot);
    check_paths({{"--dist", is_distribution_name(a.dist) ? std::string() : a.dist}}, {{"--plot", a.plot}});
  }
  std::vector<float> x;
  std::vector<uint64_t> shape;
  std::string source;
  if (is_distribution_name(a.dist)) {
    const Distribution d = parse_distribution(a.dist);
    if (a.n == 0) fail_usage("--n must be given (and > 0) for a synthetic distribution");
    if (a.cols == 0) fail_usage("--cols must be > 0");
    if (a.sweep_crest && a.n / a.crest_block < kMinCrestSweepBlocks) {
      fail_usage("--n " + too_few_blocks(a.n, a.crest_block) + "; give a larger --n or a smaller --crest-block");
    }
    check_study_size(a.n, "--n " + std::to_string(a.n));
    x = draw_samples(d, a.n, seed, threads);
    // Rows of --cols elements, as weight matrices have; a count that does
    // not divide stays one long row.
    shape = a.n % a.cols == 0 && a.n >= a.cols ? std::vector<uint64_t>{a.n / a.cols, a.cols}
                                                : std::vector<uint64_t>{a.n};
    source = d.name();
  } else if (is_npy(a.dist)) {
    const FloatArray arr = read_floats(a.dist);
    check_study_size(arr.size(), "the " + std::to_string(arr.size()) + " elements of " + a.dist);
    x = to_float32(arr);
    shape = arr.shape;
    if (a.n != 0 && a.n != x.size()) {
      fail_usage("--n " + std::to_string(a.n) + " does not match the " + std::to_string(x.size()) +
                 " elements of " + a.dist + " (leave --n out for a file)");
    }
    if (a.sweep_crest && x.size() / a.crest_block < kMinCrestSweepBlocks) {
      fail_input(a.dist + " has " + too_few_blocks(x.size(), a.crest_block) + "; give a smaller --crest-block");
    }
    source = a.dist;
  } else {
    (void)parse_distribution(a.dist);  // names the valid choices
  }
  StudyOptions so;
  so.threads = threads;
  so.sweep_crest = a.sweep_crest;
  so.crest_block = a.crest_block;
  so.crest_bins = a.crest_bins;
  const auto t0 = std::chrono::steady_clock::now();
  const StudyResult r = run_qsnr_study(x, shape, schemes, so);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!a.plot.empty()) {
    PlotSpec p;
    if (a.sweep_crest) {
      p.title = "QSNR by block crest factor (" + source + ", blocks of " + std::to_string(a.crest_block) + ")";
      p.x_label = "block crest factor (max |x| / RMS)";
      p.y_label = "QSNR (dB)";
      for (size_t i = 0; i < r.records.size(); ++i) {
        PlotSeries s;
        s.label = r.records[i].scheme;
        s.line = true;
        for (const auto& b : r.crest_bins) {
          s.x.push_back((b.lo + b.hi) / 2);
          s.y.push_back(b.qsnr_db[i]);
        }
        p.series.push_back(std::move(s));
      }
    } else {
      p.title = "QSNR vs bits per element (" + source + ", n = " + std::to_string(x.size()) + ")";
      p.x_label = "bits per element (with scales, zeros, outliers)";
      p.y_label = "QSNR (dB)";
      for (const auto& rec : r.records) {
        PlotSeries s;
        s.label = rec.scheme;
        s.x = {rec.bits_per_element};
        s.y = {rec.error.qsnr_db()};
        p.series.push_back(std::move(s));
      }
    }
    const std::string svg = render_svg_plot(p);
    write_file_atomic(a.plot, svg.data(), svg.size());
  }

  if (a.json) {
    nlohmann::json doc;
    doc["study"] = "qsnr";
    doc["source"] = source;
    doc["n"] = x.size();
    doc["seed"] = seed;
    doc["threads"] = threads;
    doc["shape"] = shape;
    doc["seconds"] = total;
    // Without a nonzero whole block there is no crest factor: null, not 0.
    const auto crest_num = [&](double v) { return r.crest.blocks ? nlohmann::json(v) : nlohmann::json(nullptr); };
    doc["crest"] = {{"block", a.crest_block},
                    {"blocks", r.crest.blocks},
                    {"mean", crest_num(r.crest.mean())},
                    {"min", crest_num(r.crest.min)},
                    {"max", crest_num(r.crest.max)}};
    nlohmann::json recs = nlohmann::json::array();
    for (const auto& rec : r.records) {
      recs.push_back({{"scheme", rec.scheme},
                      {"spec", rec.spec},
                      {"bits_per_element", rec.bits_per_element},
                      {"qsnr_db", json_num(rec.error.qsnr_db())},
                      {"mse", rec.error.mse()},
                      {"cosine", rec.error.cosine()},
                      {"relative_rmse", rec.error.relative_rmse()},
                      {"max_abs_err", rec.error.max_abs_err},
                      {"nonfinite", rec.error.nonfinite},
                      {"seconds", rec.seconds}});
    }
    doc["records"] = recs;
    if (!r.crest_bins.empty()) {
      nlohmann::json bins = nlohmann::json::array();
      for (const auto& b : r.crest_bins) {
        nlohmann::json q = nlohmann::json::object();
        for (size_t i = 0; i < r.records.size(); ++i) q[r.records[i].scheme] = json_num(b.qsnr_db[i]);
        bins.push_back({{"crest_lo", b.lo}, {"crest_hi", b.hi}, {"blocks", b.blocks}, {"qsnr_db", q}});
      }
      doc["crest_bins"] = bins;
    }
    std::printf("%s\n", doc.dump(2).c_str());
    return;
  }
  std::printf("QSNR study: %s, %zu elements, shape [", source.c_str(), x.size());
  for (size_t i = 0; i < shape.size(); ++i) std::printf("%s%llu", i ? ", " : "", static_cast<unsigned long long>(shape[i]));
  if (r.crest.blocks > 0) {
    std::printf("], seed %llu, block crest factor %.2f (blocks of %llu)\n", static_cast<unsigned long long>(seed),
                r.crest.mean(), static_cast<unsigned long long>(a.crest_block));
  } else {
    // No whole block, or only all-zero ones: no crest factor to report.
    std::printf("], seed %llu, block crest factor n/a (no nonzero block of %llu elements)\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(a.crest_block));
  }
  size_t w = 6;
  for (const auto& rec : r.records) w = std::max(w, rec.scheme.size());
  std::printf("%-*s %10s %10s %12s %10s\n", static_cast<int>(w), "scheme", "bits/elem", "QSNR dB", "MSE", "time s");
  for (const auto& rec : r.records) {
    std::printf("%-*s %10.4f %10.2f %12.4e %10.3f\n", static_cast<int>(w), rec.scheme.c_str(), rec.bits_per_element,
                rec.error.qsnr_db(), rec.error.mse(), rec.seconds);
  }
  if (!r.crest_bins.empty()) {
    uint64_t swept = 0;
    for (const auto& b : r.crest_bins) swept += b.blocks;
    std::printf("\nQSNR dB by block crest factor");
    if (r.crest_bins.size() < static_cast<size_t>(a.crest_bins)) {
      // Say why there are fewer rows than asked for, lest it look like a bug.
      std::printf(" (%zu bin%s, not %d: %s)", r.crest_bins.size(), r.crest_bins.size() == 1 ? "" : "s", a.crest_bins,
                  swept < static_cast<uint64_t>(a.crest_bins) ? ("only " + std::to_string(swept) + " blocks").c_str()
                                                               : "blocks with equal crest factors share a bin");
    }
    std::printf(":\n%-14s %8s", "crest", "blocks");
    for (const auto& rec : r.records) std::printf(" %*s", static_cast<int>(std::max<size_t>(8, rec.scheme.size())), rec.scheme.c_str());
    std::printf("\n");
    for (const auto& b : r.crest_bins) {
      std::printf("%6.2f-%-7.2f %8llu", b.lo, b.hi, static_cast<unsigned long long>(b.blocks));
      for (size_t i = 0; i < r.records.size(); ++i) {
        std::printf(" %*.2f", static_cast<int>(std::max<size_t>(8, r.records[i].scheme.size())), b.qsnr_db[i]);
      }
      std::printf("\n");
    }
  }
  std::printf("total %.2f s\n", total);
}

}  // namespace

Action add_study_command(CLI::App& app) {
  auto a = std::make_shared<StudyArgs>();
  auto* study = app.add_subcommand("study", "Studies that compare formats and schemes");
  study->require_subcommand(1);
  auto* q = study->add_subcommand("qsnr", "QSNR and bits per element of several schemes on one data set");
  q->add_option("--dist", a->dist, "normal | laplace | student-t:<nu> | uniform | a .npy file")->required();
  q->add_option("--n", a->n, "number of samples to draw (synthetic distributions)")->check(whole_number());
  a->seed.add_to(q, "seed of the synthetic data, 0 .. 2^64-1 (default 0)");
  q->add_option("--schemes", a->schemes, "comma-separated schemes, e.g. mxfp4,nvfp4,int4/g128/asym")->required();
  q->add_option("--cols", a->cols, "row length of synthetic data (default 4096; a count it does not divide is one row)")
      ->check(whole_number());
  a->threads.add_to(q);
  q->add_flag("--json", a->json, "print the records as JSON");
  q->add_option("--plot", a->plot, "write an SVG chart: QSNR vs bits per element (or vs crest factor with --sweep-crest)");
  q->add_flag("--sweep-crest", a->sweep_crest, "also report QSNR per bin of block crest factor (and plot that)");
  q->add_option("--crest-block", a->crest_block, "block size for crest factors (default 32)")->check(whole_number());
  q->add_option("--crest-bins", a->crest_bins, "number of crest-factor bins (default 12)")->check(CLI::Range(1, 1000));
  q->footer("Example: lowbit study qsnr --dist student-t:5 --n 4194304 --seed 1 --schemes mxfp4,nvfp4,mxint4,int4/g32 --plot qsnr.svg");
  const Action model = add_study_model_subcommand(*study);
  const Action train = add_study_train_subcommand(*study);
  return [a, q, model, train, study] {
    if (q->parsed()) {
      run_qsnr(*a);
    } else if (study->get_subcommand("train")->parsed()) {
      train();
    } else {
      model();
    }
  };
}

}  // namespace lowbit::cli

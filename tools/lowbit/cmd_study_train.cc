// `lowbit study train --config C.json -o DIR [--recipes a,b,...]`: one
// model, one token budget, several precision recipes
// (lowbit/train/train_study.h). A recipe is a name from configs/precision/
// (fp32, bf16, fp8-te, nvfp4...) or the path of a recipe file. DIR gets a
// run directory per recipe, study.json and loss.svg; stdout a table.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/train/prepared_corpus.h"
#include "lowbit/train/train_study.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

// The study of the issue that asked for it, in the order of its table.
constexpr const char* kDefaultRecipes =
    "fp32,bf16,fp16,fp16-ls,fp8-te,fp8-te-delayed,mxfp8,nvfp4,nvfp4-no-sr,nvfp4-no-rht,mxfp4,bf16-master,"
    "bf16-master-kahan,bf16-master-collage,int4-lsq,ternary";

struct StudyTrainArgs {
  std::string config, out, recipes = kDefaultRecipes;
  int64_t steps = 0;
  std::optional<uint64_t> seed;
  bool json = false, quiet = false;
  ThreadsFlag threads;
};

StudyRecipe load_recipe(const std::string& item) {
  fs::path file = item;
  std::string name = item;
  if (!item.ends_with(".json")) {
    file = fs::path(LOWBIT_SOURCE_DIR) / "configs" / "precision" / (item + ".json");
  } else {
    name = fs::path(item).stem().string();
  }
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    fail_usage(fmt::format("--recipes: no recipe '{}' ({} does not exist; the names are the files of "
                           "configs/precision/)",
                           item, file.string()));
  }
  const std::vector<std::byte> bytes = read_file(file.string());
  const auto j = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                       nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail_usage(fmt::format("--recipes: '{}' is not a JSON object", file.string()));
  return {name, j.dump()};
}

void run_study_train(const StudyTrainArgs& a) {
  const int threads = a.threads.resolve();
  std::vector<StudyRecipe> recipes;
  std::stringstream ss(a.recipes);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) fail_usage("--recipes has an empty entry");
    for (const StudyRecipe& r : recipes) {
      if (r.name == item) fail_usage(fmt::format("--recipes names '{}' twice", item));
    }
    recipes.push_back(load_recipe(item));
  }
  const std::vector<std::byte> bytes = read_file(a.config);
  TrainConfig config = parse_train_config(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                          a.config, fs::absolute(a.config).parent_path().string());
  if (a.steps > 0) {
    config.steps = a.steps;
    config.warmup = std::min(config.warmup, a.steps / 10);
  }
  if (a.seed) config.seed = *a.seed;
  std::error_code ec;
  if (fs::exists(a.out, ec) && !fs::is_empty(a.out, ec)) {
    fail_usage(fmt::format("-o '{}' exists and is not empty: a study writes into a new directory", a.out));
  }
  PreparedCorpus prepared = prepare_corpus(config, [&](const std::string& note) {
    if (!a.quiet) std::fprintf(stderr, "%s...\n", note.c_str());
  });
  fs::create_directory(a.out, ec);
  if (ec) fail_io(fmt::format("cannot create '{}': {}", a.out, ec.message()));
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const std::vector<StudyRow> rows = run_train_study(
      config, prepared.corpus, recipes, a.out, threads, [&](const std::string& recipe, const TrainProgress& p) {
        if (a.quiet || (!tty && p.step != p.steps)) return;
        std::fprintf(stderr, "%s%-20s step %lld/%lld  loss %.4f  %.0f tokens/s   %s", tty ? "\r" : "", recipe.c_str(),
                     static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.tokens_per_second,
                     p.step == p.steps ? "\n" : "");
      });
  const std::string svg = train_study_svg(
      rows, fmt::format("held-out loss, {} steps of {} tokens", config.steps, config.batch * config.seq * config.accum));
  write_file_atomic((fs::path(a.out) / "loss.svg").string(), svg.data(), svg.size());
  const std::string delta = train_study_delta_svg(
      rows, fmt::format("held-out loss minus fp32's, {} steps of {} tokens", config.steps,
                        config.batch * config.seq * config.accum));
  if (!delta.empty()) write_file_atomic((fs::path(a.out) / "delta.svg").string(), delta.data(), delta.size());
  const std::string json = train_study_json(rows);
  write_file_atomic((fs::path(a.out) / "study.json").string(), json.data(), json.size());
  if (a.json) {
    std::printf("%s\n", json.c_str());
    return;
  }
  const auto j = nlohmann::json::parse(json);
  std::printf("| recipe | final held-out loss | vs fp32 | step time vs fp32 | skipped steps |\n");
  std::printf("| --- | --- | --- | --- | --- |\n");
  for (const auto& r : j) {
    const std::string loss = r["final_heldout"].is_null()
                                 ? "stopped: " + r.value("stopped", std::string("?"))
                                 : fmt::format("{:.4f}", r["final_heldout"].get<double>());
    const std::string delta = r.contains("heldout_minus_fp32")
                                  ? fmt::format("{:+.4f}", r["heldout_minus_fp32"].get<double>())
                                  : "";
    const std::string time =
        r.contains("time_vs_fp32") ? fmt::format("{:.2f}x", r["time_vs_fp32"].get<double>()) : "";
    std::printf("| %s | %s | %s | %s | %lld |\n", r["recipe"].get<std::string>().c_str(), loss.c_str(),
                delta.c_str(), time.c_str(), static_cast<long long>(r["skipped_steps"].get<int64_t>()));
  }
  std::printf("plot: %s\n", (fs::path(a.out) / "loss.svg").string().c_str());
}

}  // namespace

Action add_study_train_subcommand(CLI::App& study) {
  auto a = std::make_shared<StudyTrainArgs>();
  auto* cmd = study.add_subcommand(
      "train", "Train one model under several precision recipes and compare their held-out losses (docs/training.md)");
  cmd->add_option("--config", a->config, "the training config (model, data, train; its precision is replaced)")
      ->required();
  cmd->add_option("-o,--output", a->out, "a new directory: a run per recipe, study.json, loss.svg, delta.svg (against fp32)")->required();
  cmd->add_option("--recipes", a->recipes,
                  "comma-separated recipe names (configs/precision/NAME.json) or .json paths (default: the whole "
                  "study, fp32 first)");
  cmd->add_option("--steps", a->steps, "override the config's steps (warm-up capped at a tenth)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed,
                  "override the config's seed (the initialization and the batches): a second seed shows how "
                  "much of a difference between recipes is noise");
  a->threads.add_to(cmd);
  cmd->add_flag("--json", a->json, "print study.json instead of the table");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  cmd->footer("Example: lowbit study train --config configs/study-train.json -o study/ --recipes fp32,fp8-te,nvfp4");
  return [a] { run_study_train(*a); };
}

}  // namespace lowbit::cli

// --plan FILE and --calib FILE for the commands that run a Llama model
// (eval ppl, eval kld): the model runs with a QuantPlan (lowbit/model/
// quant_plan.h) at its Linear inputs, attention operands and KV cache.
// The plan is read and resolved against the model before any forward, so a
// rule matching no point, a static scheme without --calib, a calibration
// file of another model or a KV spec the cache cannot store stop the
// command first.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lowbit/model/llama_model.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

struct PlanFlags {
  std::string plan, calib;
  void add_to(CLI::App* cmd);
  bool given() const { return !plan.empty(); }
  // Usage errors for --calib without --plan; adds the files to `inputs`
  // (for check_paths).
  void check(std::vector<NamedPath>& inputs) const;
  // `m` with the plan, or `m` itself without --plan.
  LlamaModel apply(const LlamaModel& m) const;
  // {"plan": FILE, "calib": FILE, "points": [...]} for a JSON report.
  nlohmann::ordered_json describe(const LlamaModel& planned) const;
};

}  // namespace lowbit::cli

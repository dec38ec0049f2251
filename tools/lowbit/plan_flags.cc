#include "tools/lowbit/plan_flags.h"

#include <cstdio>
#include <string_view>

#include "lowbit/calib/imatrix_file.h"
#include "lowbit/calib/static_scale.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/model/quant_plan.h"

namespace lowbit::cli {

void PlanFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--plan", plan,
                  "run the model with this quantization plan (JSON: \"inputs\", \"attention\" rules and \"kv\"; "
                  "docs/runtime.md), or a quantize recipe holding them (its weight rules are quantize's)");
  cmd->add_option("--calib", calib, "lowbit calibrate's file, for the plan's static activation scales");
}

void PlanFlags::check(std::vector<NamedPath>& inputs) const {
  if (!calib.empty() && plan.empty()) fail_usage("--calib gives a plan its static scales: give --plan too");
  if (!plan.empty()) inputs.push_back({"--plan", plan});
  if (!calib.empty()) inputs.push_back({"--calib", calib});
}

LlamaModel PlanFlags::apply(const LlamaModel& m) const {
  if (plan.empty()) return m;
  const std::vector<std::byte> bytes = read_file(plan);
  const PlanRules rules = PlanRules::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                          plan, /*in_recipe=*/true);
  if (rules.has_weight_keys) {
    std::fprintf(stderr,
                 "note: '%s' is a quantize recipe: its weight rules are for lowbit quantize; the model runs with "
                 "its weights as stored and the recipe's inputs, attention and kv\n",
                 plan.c_str());
  }
  QuantPlan::StaticAmax amax;
  if (!calib.empty()) amax = static_amax_from(std::make_shared<const Imatrix>(read_imatrix(calib)), calib);
  return m.with_plan(std::make_shared<const QuantPlan>(
      QuantPlan::resolve(rules, m.linears(), m.config().layers, m.config().kv_dim(), amax)));
}

nlohmann::ordered_json PlanFlags::describe(const LlamaModel& planned) const {
  nlohmann::ordered_json j = {{"plan", plan}, {"calib", calib}, {"points", nlohmann::ordered_json::array()}};
  if (planned.plan()) {
    for (const std::string& line : planned.plan()->describe()) j["points"].push_back(line);
  }
  return j;
}

}  // namespace lowbit::cli

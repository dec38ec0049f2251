#include "lowbit/train/train_checkpoint.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/train/adamw.h"
#include "lowbit/train/train_config.h"
#include "lowbit/train/trainable_llama.h"

namespace lowbit {

namespace {

constexpr const char* kConfigKey = "lowbit.train.config";
constexpr const char* kStepKey = "lowbit.train.step";
constexpr const char* kLogKey = "lowbit.train.log";
constexpr const char* kStateKey = "lowbit.train.state";

// The first setting (section.key) where two identity JSONs differ.
std::string first_difference(const std::string& a, const std::string& b) {
  const auto ja = nlohmann::json::parse(a, nullptr, false), jb = nlohmann::json::parse(b, nullptr, false);
  if (ja.is_discarded() || !ja.is_object()) return "its recorded config is unreadable";
  const auto shown = [](const nlohmann::json* v) {
    if (!v) return std::string("unset");
    std::string t = v->dump();
    return t.size() > 80 ? t.substr(0, 77) + "..." : t;
  };
  const auto at = [](const nlohmann::json& j, const std::string& k) { return j.contains(k) ? &j[k] : nullptr; };
  std::set<std::string> sections;
  for (const auto& [k, v] : ja.items()) sections.insert(k);
  for (const auto& [k, v] : jb.items()) sections.insert(k);
  for (const std::string& section : sections) {
    const nlohmann::json *x = at(ja, section), *y = at(jb, section);
    if (x && y && x->is_object() && y->is_object()) {
      std::set<std::string> keys;
      for (const auto& [k, v] : x->items()) keys.insert(k);
      for (const auto& [k, v] : y->items()) keys.insert(k);
      for (const std::string& k : keys) {
        const nlohmann::json *p = at(*x, k), *q = at(*y, k);
        if (!p || !q || *p != *q) return fmt::format("{}.{} is {} there and {} here", section, k, shown(p), shown(q));
      }
    } else if (!x || !y || *x != *y) {
      return fmt::format("{} is {} there and {} here", section, shown(x), shown(y));
    }
  }
  return "the recorded config differs";
}

}  // namespace

void save_train_checkpoint(const std::string& path, const TrainConfig& config, const TrainableLlama& model,
                           const AdamW& optimizer, int64_t step, const std::string& log_json,
                           const PrecisionState& state) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> names;  // stable storage for the moment names
  const auto& layout = model.layout();
  const bool extra = state.master_extra && !state.master_extra->empty();
  names.reserve(layout.tensors().size() * 3);
  for (const ParamTensor& t : layout.tensors()) {
    names.push_back("adamw.m." + t.name);
    names.push_back("adamw.v." + t.name);
    names.push_back("master." + t.name);
  }
  size_t k = 0;
  for (const ParamTensor& t : layout.tensors()) {
    const std::vector<uint64_t> shape(t.shape.begin(), t.shape.end());
    tensors.push_back({t.name, DType::kF32, shape, model.params().data() + t.offset});
    tensors.push_back({names[k++], DType::kF32, shape, optimizer.m().data() + t.offset});
    tensors.push_back({names[k++], DType::kF32, shape, optimizer.v().data() + t.offset});
    if (extra) tensors.push_back({names[k], DType::kF32, shape, state.master_extra->data() + t.offset});
    ++k;
  }
  std::map<std::string, std::string> meta = {
      {kConfigKey, config.identity_json()}, {kStepKey, std::to_string(step)}, {kLogKey, log_json}};
  if (!state.state_json.empty()) meta[kStateKey] = state.state_json;
  write_safetensors(path, meta, tensors);
}

ResumedRun load_train_checkpoint(const std::string& path, const TrainConfig& config, TrainableLlama& model,
                                 AdamW& optimizer, const PrecisionState& state) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  const auto bad = [&](const std::string& why) { fail_input(fmt::format("cannot resume from '{}': {}", path, why)); };
  if (!meta.contains(kConfigKey) || !meta.contains(kStepKey)) bad("it is not a lowbit training checkpoint");
  const std::string want = config.identity_json();
  if (meta.at(kConfigKey) != want) bad("it was written by another training config: " + first_difference(meta.at(kConfigKey), want));
  ResumedRun run;
  const std::string& step_text = meta.at(kStepKey);
  const auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), run.step);
  if (ec != std::errc{} || end != step_text.data() + step_text.size() || run.step < 0 || run.step > config.steps) {
    bad(fmt::format("its step \"{}\" is not a step of this run", step_text));
  }
  if (meta.contains(kLogKey)) run.log_json = meta.at(kLogKey);
  if (meta.contains(kStateKey)) run.state_json = meta.at(kStateKey);
  // Everything is checked into copies first: a bad file changes nothing.
  const bool extra = state.master_extra && !state.master_extra->empty();
  std::vector<float> params = model.params(), m = optimizer.m(), v = optimizer.v();
  std::vector<float> master = extra ? *state.master_extra : std::vector<float>{};
  for (const ParamTensor& t : model.layout().tensors()) {
    std::vector<std::pair<std::string, std::vector<float>*>> wanted = {
        {t.name, &params}, {"adamw.m." + t.name, &m}, {"adamw.v." + t.name, &v}};
    if (extra) wanted.emplace_back("master." + t.name, &master);
    for (auto [name, dst] : wanted) {
      const TensorInfo* info = file.find(name);
      if (!info) bad(fmt::format("it has no tensor '{}'", name));
      const std::vector<uint64_t> shape(t.shape.begin(), t.shape.end());
      if (info->dtype != DType::kF32 || info->shape != shape) {
        bad(fmt::format("tensor '{}' is not float32 of the model's shape", name));
      }
      float* out = dst->data() + t.offset;
      std::memcpy(out, info->data, static_cast<size_t>(info->nbytes));
      for (int64_t i = 0; i < t.size; ++i) {
        if (!std::isfinite(out[i])) bad(fmt::format("tensor '{}' holds {} at element {}", name, out[i], i));
      }
    }
  }
  model.params() = std::move(params);
  if (extra) *state.master_extra = std::move(master);
  optimizer.m() = std::move(m);
  optimizer.v() = std::move(v);
  optimizer.set_steps(run.step);
  return run;
}

}  // namespace lowbit

#include "lowbit/train/train_checkpoint.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
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

// The first setting (section.key) where two identity JSONs differ.
std::string first_difference(const std::string& a, const std::string& b) {
  const auto ja = nlohmann::json::parse(a, nullptr, false), jb = nlohmann::json::parse(b, nullptr, false);
  if (ja.is_discarded() || !ja.is_object()) return "its recorded config is unreadable";
  for (const auto& [section, values] : jb.items()) {
    for (const auto& [key, value] : values.items()) {
      const bool have = ja.contains(section) && ja[section].contains(key);
      if (!have || ja[section][key] != value) {
        return fmt::format("{}.{} is {} there and {} here", section, key, have ? ja[section][key].dump() : "unset",
                           value.dump());
      }
    }
  }
  return "the recorded config differs";
}

}  // namespace

void save_train_checkpoint(const std::string& path, const TrainConfig& config, const TrainableLlama& model,
                           const AdamW& optimizer, int64_t step, const std::string& log_json) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> names;  // stable storage for the moment names
  const auto& layout = model.layout();
  names.reserve(layout.tensors().size() * 2);
  for (const ParamTensor& t : layout.tensors()) {
    names.push_back("adamw.m." + t.name);
    names.push_back("adamw.v." + t.name);
  }
  size_t k = 0;
  for (const ParamTensor& t : layout.tensors()) {
    const std::vector<uint64_t> shape(t.shape.begin(), t.shape.end());
    tensors.push_back({t.name, DType::kF32, shape, model.params().data() + t.offset});
    tensors.push_back({names[k++], DType::kF32, shape, optimizer.m().data() + t.offset});
    tensors.push_back({names[k++], DType::kF32, shape, optimizer.v().data() + t.offset});
  }
  const std::map<std::string, std::string> meta = {
      {kConfigKey, config.identity_json()}, {kStepKey, std::to_string(step)}, {kLogKey, log_json}};
  write_safetensors(path, meta, tensors);
}

ResumedRun load_train_checkpoint(const std::string& path, const TrainConfig& config, TrainableLlama& model,
                                 AdamW& optimizer) {
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
  // Everything is checked into copies first: a bad file changes nothing.
  std::vector<float> params = model.params(), m = optimizer.m(), v = optimizer.v();
  for (const ParamTensor& t : model.layout().tensors()) {
    for (auto [name, dst] : {std::pair{t.name, &params}, std::pair{"adamw.m." + t.name, &m},
                             std::pair{"adamw.v." + t.name, &v}}) {
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
  optimizer.m() = std::move(m);
  optimizer.v() = std::move(v);
  optimizer.set_steps(run.step);
  return run;
}

}  // namespace lowbit

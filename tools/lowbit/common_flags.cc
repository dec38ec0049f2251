#include "tools/lowbit/common_flags.h"

#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "lowbit/core/error.h"
#include "lowbit/core/path_identity.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit::cli {
namespace {

namespace fs = std::filesystem;

// A decimal count >= 1, or nullopt.
std::optional<long long> parse_count(const std::string& s) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 1) return std::nullopt;
  return v;
}

int capped(long long n, const std::string& source) {
  const int cores = available_cores();
  if (n <= cores) return static_cast<int>(n);
  static std::atomic<bool> noted{false};
  if (!noted.exchange(true)) {
    std::fprintf(stderr, "lowbit: note: %s asks for %lld threads, more than the %d cores available; using %d\n",
                 source.c_str(), n, cores, cores);
  }
  return cores;
}

}  // namespace

CLI::Validator whole_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        uint64_t x = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
          return "must be a whole number from 0 to 18446744073709551615, not '" + v + "'";
        }
        return std::string();
      },
      "UINT");
}

void ThreadsFlag::add_to(CLI::App* cmd, const std::string& help) {
  option = cmd->add_option("--threads", text, help)->type_name("N");
}

int ThreadsFlag::resolve() const {
  if (given()) {
    const auto n = parse_count(text);
    if (!n) fail_usage("--threads must be a whole number of at least 1, not '" + text + "'");
    return capped(*n, "--threads " + text);
  }
  if (const char* env = std::getenv("LOWBIT_NUM_THREADS"); env != nullptr && *env != '\0') {
    const auto n = parse_count(env);
    if (!n) fail_usage(std::string("LOWBIT_NUM_THREADS must be a whole number of at least 1, not '") + env + "'");
    return capped(*n, std::string("LOWBIT_NUM_THREADS=") + env);
  }
  return available_cores();
}

void SeedFlag::add_to(CLI::App* cmd, const std::string& help) {
  option = cmd->add_option("--seed", text, help)->type_name("S");
}

uint64_t SeedFlag::value() const {
  if (option == nullptr || option->count() == 0) return 0;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    fail_usage("--seed must be a whole number from 0 to 2^64-1 (18446744073709551615), not '" + text + "'");
  }
  return v;
}

bool has_extension(const std::string& path, const std::string& ext) {
  if (path.size() < ext.size()) return false;
  for (size_t i = 0; i < ext.size(); ++i) {
    const auto a = static_cast<unsigned char>(path[path.size() - ext.size() + i]);
    if (std::tolower(a) != std::tolower(static_cast<unsigned char>(ext[i]))) return false;
  }
  return true;
}

void check_paths(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& out = outputs[i];
    if (out.path.empty()) fail_usage(out.what + " is an empty path");
    // Streams (/dev/null, /dev/stdout, a FIFO) have no contents to lose.
    std::error_code sec;
    const fs::file_status st = fs::status(without_trailing_slashes(out.path), sec);
    if (fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st)) continue;
    for (const NamedPath& in : inputs) {
      if (in.path.empty()) continue;
      std::error_code ec;
      const bool dir = fs::is_directory(without_trailing_slashes(out.path), ec);
      if (same_path(out.path, in.path)) {
        fail_usage(out.what + " '" + out.path + "' is the same file as " + in.what + " '" + in.path +
                   "'; lowbit never writes over what it reads: name another output");
      }
      if (dir && is_within(in.path, out.path)) {
        fail_usage(out.what + " '" + out.path + "' is a directory that holds " + in.what + " '" + in.path +
                   "'; lowbit never writes over what it reads: name another output");
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (same_path(out.path, outputs[j].path)) {
        fail_usage(out.what + " '" + out.path + "' is the same file as " + outputs[j].what + " '" + outputs[j].path +
                   "': name different outputs");
      }
    }
  }
}

void check_output_file(const std::string& what, const std::string& path) {
  if (path.empty()) fail_usage(what + " is an empty path");
  if (path.back() == '/') fail_usage(what + " '" + path + "' ends in '/', but this output is a file: drop the slash");
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail_io("cannot write '" + path + "': it is a directory, and " + what + " is a file");
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec)) {
    fail_io("cannot write '" + path + "': the directory '" + parent.string() + "' does not exist");
  }
}

}  // namespace lowbit::cli

// A one-line progress bar for long commands (quantize): items done, the
// input rate in MB/s and the estimated time left, redrawn in place on
// stderr. It draws only when stderr is a terminal, so logs and pipes stay
// clean, and `quiet` silences it everywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit::cli {

class ProgressBar {
 public:
  ProgressBar(uint64_t total_items, uint64_t total_bytes, bool quiet);
  ~ProgressBar();

  // Item `label` is starting; bytes_done counts finished items' input bytes.
  void update(uint64_t items_done, uint64_t bytes_done, const std::string& label);
  // Clears the line (the final report follows on a clean screen).
  void finish();

  bool active() const noexcept { return active_; }

 private:
  uint64_t total_items_, total_bytes_;
  bool active_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowbit::cli

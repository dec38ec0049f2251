// A one-line progress bar for long commands (quantize): items done, the
// rate of the work in MB/s (the caller's unit, named in `unit`: quantize
// counts the float32 bytes of the tensors it quantizes, the same measure
// as its summary) and the estimated time left, redrawn in place on
// stderr. It draws only when stderr is a terminal, so logs and pipes stay
// clean, and `quiet` silences it everywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit::cli {

class ProgressBar {
 public:
  ProgressBar(uint64_t total_items, uint64_t total_bytes, bool quiet, std::string unit = "MB/s");
  ~ProgressBar();

  // Item `label` is starting; bytes_done counts the finished items' work.
  void update(uint64_t items_done, uint64_t bytes_done, const std::string& label);
  // Clears the line (the final report follows on a clean screen).
  void finish();

  bool active() const noexcept { return active_; }

 private:
  uint64_t total_items_, total_bytes_;
  std::string unit_;
  bool active_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowbit::cli

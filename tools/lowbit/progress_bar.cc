#include "tools/lowbit/progress_bar.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

namespace lowbit::cli {

ProgressBar::ProgressBar(uint64_t total_items, uint64_t total_bytes, bool quiet, std::string unit)
    : total_items_(total_items),
      total_bytes_(total_bytes),
      unit_(std::move(unit)),
      active_(!quiet && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t items_done, uint64_t bytes_done, const std::string& label) {
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redrawing costs a write per call; ten times a second is smooth enough.
  if (items_done > 0 && items_done < total_items_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double mbps = secs > 0 ? bytes_done / secs / 1e6 : 0;
  // Without work to measure (everything kept), items stand in for it.
  const double frac = total_bytes_ ? static_cast<double>(bytes_done) / total_bytes_
                      : total_items_ ? static_cast<double>(items_done) / total_items_
                                     : 1.0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(kWidth, ' ');
  for (int i = 0; i < filled && i < kWidth; ++i) bar[i] = '=';
  if (filled < kWidth) bar[filled] = '>';
  char eta[32] = "--:--";
  if (frac > 0 && frac < 1) {
    const long left = static_cast<long>(secs * (1 - frac) / frac);
    std::snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
  }
  const std::string shown = label.size() > 40 ? std::string("...").append(label.substr(label.size() - 37)) : label;
  std::fprintf(stderr, "\r\033[K[%s] %llu/%llu tensors  %.0f %s  ETA %s  %s", bar.c_str(),
               static_cast<unsigned long long>(items_done), static_cast<unsigned long long>(total_items_), mbps,
               unit_.c_str(), eta, shown.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  active_ = false;
}

}  // namespace lowbit::cli

#include "lowbit/core/host_cpu.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace lowbit {
namespace {

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

int parse_int(std::string_view s) {
  int v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

}  // namespace

std::string HostCpu::describe() const {
  std::string ids = vendor;
  const auto add = [&ids](const char* label, int v) {
    if (v < 0) return;
    if (!ids.empty()) ids += ' ';
    ids += label;
    ids += std::to_string(v);
  };
  add("family ", family);
  add("model ", model);
  if (name.empty()) return ids.empty() ? std::string("unknown") : ids;
  if (ids.empty()) return name;
  std::string out = name;
  out += " (";
  out += ids;
  out += ')';
  return out;
}

HostCpu parse_cpuinfo(std::string_view text) {
  HostCpu cpu;
  bool seen_processor = false;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    // Every processor repeats the fields; the first one's are taken (the
    // machines this runs on are not heterogeneous in family and model).
    if (key == "processor") {
      if (seen_processor) break;
      seen_processor = true;
    } else if (key == "vendor_id") {
      cpu.vendor = value;
    } else if (key == "model name") {
      cpu.name = value;
    } else if (key == "cpu family") {
      cpu.family = parse_int(value);
    } else if (key == "model") {
      cpu.model = parse_int(value);
    }
  }
  return cpu;
}

HostCpu host_cpu() {
  std::ifstream in("/proc/cpuinfo");
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cpuinfo(text.str());
}

}  // namespace lowbit

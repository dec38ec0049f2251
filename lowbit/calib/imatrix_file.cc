#include "lowbit/calib/imatrix_file.h"

#include <algorithm>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts", kAbsmax = ".in_absmax", kHist = ".in_hist",
                           kGram = ".in_gram", kPct = ".in_pct";
constexpr const char* kLevelsKey = "lowbit.column_percentiles";

bool strip_suffix(std::string& s, std::string_view suffix) {
  if (s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  s.resize(s.size() - suffix.size());
  return true;
}

std::vector<float> f32_values(const GgufTensorInfo& t, const std::string& path) {
  if (t.type != GgmlType::kF32) {
    fail_input(fmt::format("imatrix '{}': tensor '{}' is {}, not F32", path, t.name, ggml_type_info(t.type).name));
  }
  std::vector<float> v(t.numel);
  if (t.numel > 0) std::memcpy(v.data(), t.data, t.numel * sizeof(float));  // an empty tensor has no data pointer
  for (float f : v) {
    if (!std::isfinite(f) || f < 0) {
      fail_input(fmt::format("imatrix '{}': tensor '{}' holds {} (entries must be finite and non-negative)", path,
                             t.name, f));
    }
  }
  return v;
}

// A Gram matrix: F32 [cols, cols], finite (of either sign).
std::vector<float> gram_values(const GgufTensorInfo& t, int64_t cols, const std::string& path) {
  if (t.type != GgmlType::kF32 || t.ne.size() != 2 || t.ne[0] != static_cast<uint64_t>(cols) ||
      t.ne[1] != static_cast<uint64_t>(cols)) {
    fail_input(fmt::format("imatrix '{}': tensor '{}' is not an F32 matrix of {} x {}", path, t.name, cols, cols));
  }
  std::vector<float> v(t.numel);
  if (t.numel > 0) std::memcpy(v.data(), t.data, t.numel * sizeof(float));
  for (float f : v) {
    if (!std::isfinite(f)) fail_input(fmt::format("imatrix '{}': tensor '{}' holds {}", path, t.name, f));
  }
  return v;
}

// Histogram counts: F64 holding whole numbers up to 2^53 (exact in a
// double), AbsHistogram::kBins of them.
std::vector<uint64_t> histogram_values(const GgufTensorInfo& t, const std::string& path) {
  if (t.type != GgmlType::kF64 || t.numel != AbsHistogram::kBins) {
    fail_input(fmt::format("imatrix '{}': tensor '{}' is not an F64 histogram of {} bins", path, t.name,
                           AbsHistogram::kBins));
  }
  std::vector<uint64_t> v(t.numel);
  for (uint64_t i = 0; i < t.numel; ++i) {
    double d;
    std::memcpy(&d, t.data + i * sizeof(double), sizeof(double));
    if (!(d >= 0 && d <= 9007199254740992.0) || d != std::floor(d)) {
      fail_input(fmt::format("imatrix '{}': tensor '{}' holds {} (counts are whole non-negative numbers)", path,
                             t.name, d));
    }
    v[i] = static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace

bool looks_like_gguf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

Imatrix read_imatrix(const std::string& path) {
  if (!looks_like_gguf(path)) {
    fail_input(fmt::format("'{}' is not a GGUF imatrix file (an imatrix from an older llama.cpp, '.dat', converts "
                           "with: llama-imatrix --in-file '{}' -o imatrix.gguf)",
                           path, path));
  }
  return read_imatrix(GgufFile::open(path));
}

Imatrix read_imatrix(const GgufFile& f) {
  const std::string& path = f.path();
  const GgufValue* type = f.find("general.type");
  if (type == nullptr || type->as_string("general.type") != "imatrix") {
    fail_input(fmt::format("'{}' is a GGUF file but not an importance matrix (general.type is {})", path,
                           type ? "'" + type->as_string() + "'" : "missing"));
  }
  Imatrix m;
  if (f.find("imatrix.datasets")) m.datasets = f.get_strings("imatrix.datasets");
  m.chunk_count = f.get_or<uint32_t>("imatrix.chunk_count", 0);
  m.chunk_size = f.get_or<uint32_t>("imatrix.chunk_size", 0);
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> parts;
  if (const GgufValue* levels = f.find(kLevelsKey)) {
    m.column_percentile_levels = levels->to_vector<float>();
    for (float l : m.column_percentile_levels) {
      if (!(l > 0 && l <= 100)) fail_input(fmt::format("imatrix '{}': {} holds {} (levels are in (0, 100])", path, kLevelsKey, l));
    }
  }
  std::map<std::string, const GgufTensorInfo*> absmax, hist, gram, pct;
  for (const GgufTensorInfo& t : f.tensors()) {
    std::string name = t.name;
    if (strip_suffix(name, kSums)) {
      parts[name].first = &t;
    } else if (strip_suffix(name, kCounts)) {
      parts[name].second = &t;
    } else if (strip_suffix(name, kAbsmax)) {
      absmax[name] = &t;
    } else if (strip_suffix(name, kHist)) {
      hist[name] = &t;
    } else if (strip_suffix(name, kGram)) {
      gram[name] = &t;
    } else if (strip_suffix(name, kPct)) {
      pct[name] = &t;
    }  // other tensors: statistics this version does not read
  }
  for (const auto* extra : {&absmax, &hist, &gram, &pct}) {
    for (const auto& [name, t] : *extra) {
      if (!parts.count(name)) {
        fail_input(fmt::format("imatrix '{}': '{}' has {} but no {}", path, name,
                               extra == &absmax ? kAbsmax : extra == &hist ? kHist : extra == &gram ? kGram : kPct,
                               kSums));
      }
    }
  }
  for (const auto& [name, p] : parts) {
    if (!p.first || !p.second) {
      fail_input(fmt::format("imatrix '{}': '{}' has {} but no {}", path, name, p.first ? kSums : kCounts,
                             p.first ? kCounts : kSums));
    }
    ImatrixEntry e;
    e.in_sum2 = f32_values(*p.first, path);
    e.counts = f32_values(*p.second, path);
    const uint64_t n_mat = e.counts.size();
    // (Divided, not multiplied: ne[0] is any 64-bit value when another
    // dimension is 0.)
    if (n_mat == 0 || e.in_sum2.size() % n_mat != 0 || p.first->ne.empty() ||
        p.first->ne[0] != e.in_sum2.size() / n_mat) {
      fail_input(fmt::format("imatrix '{}': '{}' has {} sums for {} counts", path, name, e.in_sum2.size(), n_mat));
    }
    e.cols = static_cast<int64_t>(p.first->ne[0]);
    if (const auto a = absmax.find(name); a != absmax.end()) {
      e.in_absmax = f32_values(*a->second, path);
      if (e.in_absmax.size() != e.in_sum2.size()) {
        fail_input(fmt::format("imatrix '{}': '{}' has {} maxima for {} sums", path, name, e.in_absmax.size(),
                               e.in_sum2.size()));
      }
    }
    if (const auto h = hist.find(name); h != hist.end()) e.in_hist = histogram_values(*h->second, path);
    if (const auto g = gram.find(name); g != gram.end()) {
      if (n_mat != 1) fail_input(fmt::format("imatrix '{}': '{}' has a Gram matrix for {} matrices", path, name, n_mat));
      e.in_gram = gram_values(*g->second, e.cols, path);
    }
    if (const auto q = pct.find(name); q != pct.end()) {
      const size_t levels = m.column_percentile_levels.size();
      e.in_pct = f32_values(*q->second, path);
      if (levels == 0 || n_mat != 1 || q->second->ne.size() != 2 || q->second->ne[0] != static_cast<uint64_t>(e.cols) ||
          q->second->ne[1] != levels) {
        fail_input(fmt::format("imatrix '{}': '{}' is not F32 [{} levels, {} columns] (the levels of {})", path,
                               q->second->name, levels, e.cols, kLevelsKey));
      }
    }
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

std::vector<float> Imatrix::importance(const std::string& weight, int64_t cols,
                                       const std::string& file_for_errors) const {
  const auto it = entries.find(weight);
  if (it == entries.end()) return {};
  const ImatrixEntry& e = it->second;
  if (e.counts.size() != 1 || e.cols != cols) {
    fail_input(fmt::format("imatrix '{}': '{}' has {} matrices of {} columns; the tensor has one of {}: the file "
                           "was made for another model",
                           file_for_errors, weight, e.counts.size(), e.cols, cols));
  }
  if (e.counts[0] <= 0) {
    fail_input(fmt::format("imatrix '{}': '{}' counted no tokens", file_for_errors, weight));
  }
  std::vector<float> v(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) v[static_cast<size_t>(j)] = e.in_sum2[static_cast<size_t>(j)] / e.counts[0];
  return v;
}

std::optional<float> Imatrix::input_absmax(const std::string& weight, int64_t cols,
                                           const std::string& file_for_errors) const {
  const auto it = entries.find(weight);
  if (it == entries.end()) return std::nullopt;
  const ImatrixEntry& e = it->second;
  if (e.counts.size() != 1 || e.cols != cols) {
    fail_input(fmt::format("imatrix '{}': '{}' has {} matrices of {} columns; the layer has one of {}: the file "
                           "was made for another model",
                           file_for_errors, weight, e.counts.size(), e.cols, cols));
  }
  if (e.in_absmax.empty()) {
    fail_input(fmt::format("imatrix '{}': '{}' has no {}.in_absmax (static scales need a file from lowbit "
                           "calibrate; llama-imatrix records no maxima)",
                           file_for_errors, weight, weight));
  }
  float amax = 0;
  for (float v : e.in_absmax) amax = std::max(amax, v);
  return amax;
}

std::optional<AbsHistogram> Imatrix::input_histogram(const std::string& weight) const {
  const auto it = entries.find(weight);
  if (it == entries.end() || it->second.in_hist.empty()) return std::nullopt;
  return AbsHistogram::from_counts(it->second.in_hist);
}

std::optional<std::vector<float>> Imatrix::column_percentile(const std::string& weight, float level) const {
  const auto it = entries.find(weight);
  if (it == entries.end() || it->second.in_pct.empty()) return std::nullopt;
  for (size_t i = 0; i < column_percentile_levels.size(); ++i) {
    if (column_percentile_levels[i] == level) {
      const auto cols = static_cast<size_t>(it->second.cols);
      const auto row = it->second.in_pct.begin() + static_cast<std::ptrdiff_t>(i * cols);
      return std::vector<float>(row, row + static_cast<std::ptrdiff_t>(cols));
    }
  }
  return std::nullopt;
}

void write_imatrix(const Imatrix& m, const std::string& path) {
  GgufWriter w(path);
  w.add_metadata("general.type", GgufValue::of("imatrix"));
  w.add_metadata("imatrix.datasets", GgufValue::array(m.datasets));
  w.add_metadata("imatrix.chunk_count", GgufValue::of(m.chunk_count));
  w.add_metadata("imatrix.chunk_size", GgufValue::of(m.chunk_size));
  if (!m.column_percentile_levels.empty()) w.add_metadata(kLevelsKey, GgufValue::array(m.column_percentile_levels));
  for (const auto& [name, e] : m.entries) {
    const uint64_t n_mat = e.counts.size();
    if (n_mat == 0 || e.in_sum2.size() != n_mat * static_cast<uint64_t>(e.cols)) {
      fail_internal(fmt::format("write_imatrix: '{}' has {} sums for {} matrices of {}", name, e.in_sum2.size(),
                                n_mat, e.cols));
    }
    if (!e.in_absmax.empty() && e.in_absmax.size() != e.in_sum2.size()) {
      fail_internal(fmt::format("write_imatrix: '{}' has {} maxima for {} sums", name, e.in_absmax.size(),
                                e.in_sum2.size()));
    }
    w.declare_tensor(name + std::string(kSums), {static_cast<uint64_t>(e.cols), n_mat}, GgmlType::kF32);
    w.declare_tensor(name + std::string(kCounts), {1, n_mat}, GgmlType::kF32);
    if (!e.in_absmax.empty()) {
      w.declare_tensor(name + std::string(kAbsmax), {static_cast<uint64_t>(e.cols), n_mat}, GgmlType::kF32);
    }
    if (!e.in_hist.empty()) {
      w.declare_tensor(name + std::string(kHist), {AbsHistogram::kBins, 1}, GgmlType::kF64);
    }
    if (!e.in_gram.empty()) {
      if (e.in_gram.size() != static_cast<uint64_t>(e.cols * e.cols)) {
        fail_internal(fmt::format("write_imatrix: '{}' has a Gram matrix of {} values for {} columns", name,
                                  e.in_gram.size(), e.cols));
      }
      w.declare_tensor(name + std::string(kGram), {static_cast<uint64_t>(e.cols), static_cast<uint64_t>(e.cols)},
                       GgmlType::kF32);
    }
    if (!e.in_pct.empty()) {
      const uint64_t levels = m.column_percentile_levels.size();
      if (e.in_pct.size() != levels * static_cast<uint64_t>(e.cols) || levels == 0) {
        fail_internal(fmt::format("write_imatrix: '{}' has {} percentiles for {} levels of {} columns", name,
                                  e.in_pct.size(), levels, e.cols));
      }
      w.declare_tensor(name + std::string(kPct), {static_cast<uint64_t>(e.cols), levels}, GgmlType::kF32);
    }
  }
  w.begin();
  size_t i = 0;
  for (const auto& [name, e] : m.entries) {
    w.write_tensor_data(i++, e.in_sum2.data(), e.in_sum2.size() * sizeof(float));
    w.write_tensor_data(i++, e.counts.data(), e.counts.size() * sizeof(float));
    if (!e.in_absmax.empty()) w.write_tensor_data(i++, e.in_absmax.data(), e.in_absmax.size() * sizeof(float));
    if (!e.in_hist.empty()) {
      std::vector<double> d(e.in_hist.begin(), e.in_hist.end());
      w.write_tensor_data(i++, d.data(), d.size() * sizeof(double));
    }
    if (!e.in_gram.empty()) w.write_tensor_data(i++, e.in_gram.data(), e.in_gram.size() * sizeof(float));
    if (!e.in_pct.empty()) w.write_tensor_data(i++, e.in_pct.data(), e.in_pct.size() * sizeof(float));
  }
  w.commit();
}

}  // namespace lowbit

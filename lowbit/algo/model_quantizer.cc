#include "lowbit/algo/model_quantizer.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "lowbit/core/error.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/kernels/small_block_kernels.h"
#include "lowbit/quant/error_stats.h"

namespace lowbit {

NanPolicy parse_nan_policy(std::string_view s) {
  if (s == "refuse") return NanPolicy::kRefuse;
  if (s == "zero") return NanPolicy::kZero;
  if (s == "keep") return NanPolicy::kKeep;
  fail_usage(std::string("unknown NaN policy '").append(s).append("'; valid: refuse, zero, keep"));
}

uint64_t peak_rss_bytes() {
  // VmHWM, the high-water mark of this process's own address space. Not
  // getrusage's ru_maxrss: Linux carries that across fork and exec, so a
  // lowbit started by a large parent (a Python process holding a model)
  // would report the parent's size.
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && std::fgets(line, sizeof line, f)) found = std::sscanf(line, "VmHWM: %llu kB", &kib) == 1;
    std::fclose(f);
    if (found) return static_cast<uint64_t>(kib) * 1024;
  }
  struct rusage u {};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

namespace {

// Per-column importance weights from the recipe's file, checked against
// the tensor they weight.
class ImportanceTable {
 public:
  explicit ImportanceTable(const std::string& path) {
    if (!path.empty()) file_ = std::make_unique<SafetensorsFile>(SafetensorsFile::open(path));
  }
  // The weights for tensor t (one per column), or empty.
  std::vector<float> for_tensor(const CheckpointTensor& t) const {
    if (!file_) return {};
    const TensorInfo* w = file_->find(t.name);
    if (!w) return {};
    const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (w->dtype != DType::kF32 || w->numel != cols) {
      fail_input("importance file '" + file_->path() + "': '" + t.name + "' must be " + std::to_string(cols) +
                 " float32 values (one per column), not " + std::to_string(w->numel) + " " + dtype_name(w->dtype));
    }
    std::vector<float> v(cols);
    std::memcpy(v.data(), w->data, cols * 4);
    for (float f : v) {
      if (!std::isfinite(f) || f < 0) {
        fail_input("importance file '" + file_->path() + "': the weights of '" + t.name + "' must be finite and non-negative");
      }
    }
    return v;
  }

 private:
  std::unique_ptr<SafetensorsFile> file_;
};

// Applies the NaN policy; returns the count of non-finite values.
uint64_t handle_nonfinite(std::vector<float>& x, const CheckpointTensor& t, NanPolicy p) {
  // The common case in one SIMD pass: every |x| below inf.
  if (kernels::max_abs_bits(x.data(), x.size()) < 0x7f800000u) return 0;
  uint64_t n = 0;
  for (float v : x) n += !std::isfinite(v);
  if (p == NanPolicy::kRefuse) {
    fail_input("tensor '" + t.name + "' holds " + std::to_string(n) +
               " NaN or infinite values; pass --nan=zero to replace them by 0, or --nan=keep to quantize them "
               "(their blocks decode to NaN)");
  }
  if (p == NanPolicy::kZero) {
    for (float& v : x) {
      if (!std::isfinite(v)) v = 0;
    }
  }
  return n;
}

}  // namespace

ModelReport quantize_model(const Checkpoint& in, ModelSink& sink, const ModelQuantizeOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  // Its packed codes and scales would be "quantized" as if they were weights.
  if (!in.undecodable_compressed_tensors().empty()) {
    fail_input("'" + in.path() + "' is a compressed-tensors checkpoint lowbit cannot decode, so its weights cannot be " +
               "read: " + in.undecodable_compressed_tensors());
  }
  ModelReport r;
  r.input = in.path();
  r.input_bytes = in.total_bytes();
  r.threads = opt.threads;
  r.omitted = in.omitted_activation_tensors();
  const std::vector<CheckpointTensor>& ts = in.tensors();
  std::vector<TensorDecision> decisions;
  decisions.reserve(ts.size());
  uint64_t work_bytes = 0;
  for (const CheckpointTensor& t : ts) {
    decisions.push_back(decide(opt.recipe, t, opt.method));
    sink.plan(t, decisions.back());
    work_bytes += t.nbytes;
  }
  r.notes = sink.notes();
  const ImportanceTable importance(opt.recipe.importance_file);
  sink.begin();
  std::vector<float> x, x_hat;
  uint64_t bytes_done = 0, quantized_f32_bytes = 0;
  double quant_seconds = 0, qsnr_sum = 0;
  size_t qsnr_count = 0;
  r.worst_qsnr_db = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < ts.size(); ++i) {
    const CheckpointTensor& t = ts[i];
    const TensorDecision& d = decisions[i];
    if (opt.progress) opt.progress(i, bytes_done, t.name);
    const auto ti = std::chrono::steady_clock::now();
    TensorReport tr;
    tr.name = t.name;
    tr.shape = t.shape;
    tr.dtype_in = t.dtype;
    tr.numel = t.numel;
    tr.bytes_in = t.nbytes;
    tr.reason = d.reason;
    tr.quantized = d.quantize;
    StoredTensor st;
    if (d.quantize) {
      x.resize(t.numel);
      in.read_float32(i, x.data(), opt.threads);
      tr.nonfinite = handle_nonfinite(x, t, opt.nan);
      const std::vector<float> w = importance.for_tensor(t);
      x_hat.resize(t.numel);
      st = sink.write(t, d, x.data(), in.raw_bytes(i), w.empty() ? nullptr : w.data(), x_hat.data(), opt.threads);
      const ErrorStats e = error_stats(x.data(), x_hat.data(), t.numel, opt.threads);
      tr.qsnr_db = e.qsnr_db();
      tr.relative_rmse = e.relative_rmse();
      tr.method = method_name(d.method);
      r.params_quantized += t.numel;
      if (std::isfinite(tr.qsnr_db)) {
        qsnr_sum += tr.qsnr_db;
        ++qsnr_count;
      }
      if (tr.qsnr_db < r.worst_qsnr_db || r.worst_tensor.empty()) {
        r.worst_qsnr_db = tr.qsnr_db;
        r.worst_tensor = t.name;
      }
      quantized_f32_bytes += t.numel * 4;
    } else {
      st = sink.write(t, d, nullptr, in.raw_bytes(i), nullptr, nullptr, opt.threads);
    }
    // Its input pages leave the resident set: peak memory stays near one
    // tensor, not the whole mapped model.
    in.release(i);
    tr.scheme = st.stored_as;
    tr.bytes_out = st.bytes;
    tr.bits_per_element = t.numel ? static_cast<double>(st.bits) / t.numel : 0;
    tr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ti).count();
    if (d.quantize) quant_seconds += tr.seconds;
    r.params_total += t.numel;
    bytes_done += t.nbytes;
    r.tensors.push_back(std::move(tr));
    // Give the memory of a large tensor back before the next one.
    if (x.capacity() > (uint64_t{64} << 20)) {
      std::vector<float>().swap(x);
      std::vector<float>().swap(x_hat);
    }
  }
  if (opt.progress) opt.progress(ts.size(), bytes_done, "");
  r.output_bytes = sink.commit();
  uint64_t qbits = 0;
  for (const TensorReport& tr : r.tensors) {
    if (tr.quantized) qbits += static_cast<uint64_t>(std::llround(tr.bits_per_element * tr.numel));
  }
  r.avg_bits_quantized = r.params_quantized ? static_cast<double>(qbits) / r.params_quantized : 0;
  r.avg_bits_file = r.params_total ? 8.0 * r.output_bytes / r.params_total : 0;
  // The mean is over the lossy tensors; when every quantized tensor came
  // through exactly (f32 output, a lossless requantization) it is infinite,
  // like each tensor's QSNR, not 0.
  r.mean_qsnr_db = qsnr_count         ? qsnr_sum / qsnr_count
                   : r.params_quantized ? std::numeric_limits<double>::infinity()
                                        : 0;
  if (r.worst_tensor.empty()) r.worst_qsnr_db = 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.input_mb_per_s = quant_seconds > 0 ? quantized_f32_bytes / quant_seconds / 1e6 : 0;
  r.peak_rss_bytes = peak_rss_bytes();
  (void)work_bytes;
  return r;
}

namespace {
// JSON cannot hold inf (an all-zero tensor has QSNR +inf): such values
// are written as null.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json ModelReport::to_json() const {
  nlohmann::json j;
  j["input"] = input;
  j["output"] = output;
  j["container"] = container_out;
  j["threads"] = threads;
  j["input_bytes"] = input_bytes;
  j["output_bytes"] = output_bytes;
  j["params_total"] = params_total;
  j["params_quantized"] = params_quantized;
  j["avg_bits_per_weight_quantized"] = avg_bits_quantized;
  j["avg_bits_per_weight_file"] = avg_bits_file;
  j["mean_qsnr_db"] = finite_or_null(mean_qsnr_db);
  j["worst_qsnr_db"] = finite_or_null(worst_qsnr_db);
  j["worst_tensor"] = worst_tensor;
  j["seconds"] = seconds;
  j["quantize_mb_per_s"] = input_mb_per_s;
  j["peak_rss_bytes"] = peak_rss_bytes;
  nlohmann::json arr = nlohmann::json::array();
  for (const TensorReport& t : tensors) {
    nlohmann::json e;
    e["name"] = t.name;
    e["shape"] = t.shape;
    e["dtype_in"] = t.dtype_in;
    e["quantized"] = t.quantized;
    e["scheme"] = t.scheme;
    e["method"] = t.method;
    e["reason"] = t.reason;
    e["numel"] = t.numel;
    e["bytes_in"] = t.bytes_in;
    e["bytes_out"] = t.bytes_out;
    e["bits_per_element"] = t.bits_per_element;
    if (t.quantized) {
      e["qsnr_db"] = finite_or_null(t.qsnr_db);
      e["relative_rmse"] = t.relative_rmse;
      e["nonfinite"] = t.nonfinite;
    }
    e["seconds"] = t.seconds;
    arr.push_back(std::move(e));
  }
  j["tensors"] = std::move(arr);
  j["omitted_tensors"] = omitted;
  j["notes"] = notes;
  return j;
}

}  // namespace lowbit

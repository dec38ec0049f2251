#include "lowbit/pipeline/model_quantizer.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <limits>
#include <memory>

#include "lowbit/calib/imatrix_file.h"
#include "lowbit/model/llama_config.h"
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

// Calibration statistics from the recipe's file (--calib), checked against
// the tensor they describe: per-column importance weights (llama.cpp's
// importance matrix, GGUF, as `lowbit calibrate` and llama-imatrix write
// it: the mean of x^2 per column; or a safetensors file of one float32
// vector per tensor) and, in lowbit's GGUF, the Gram matrix of each input.
class CalibTable {
 public:
  explicit CalibTable(const std::string& path) : path_(path) {
    if (path.empty()) return;
    if (looks_like_gguf(path)) {
      imatrix_ = std::make_unique<Imatrix>(read_imatrix(path));
    } else {
      file_ = std::make_unique<SafetensorsFile>(SafetensorsFile::open(path));
    }
  }
  // The weights for tensor t (one per column), or empty.
  std::vector<float> for_tensor(const CheckpointTensor& t) const {
    const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (imatrix_) return imatrix_->importance(entry_name(t.name), static_cast<int64_t>(cols), path_);
    if (!file_) return {};
    const TensorInfo* w = file_->find(t.name);
    if (!w) return {};
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

  // The Gram matrix of tensor t's input (cols x cols), or empty. kInput
  // when it has another size: a file made for another model.
  std::span<const float> gram(const CheckpointTensor& t) const {
    if (!imatrix_) return {};
    const auto it = imatrix_->entries.find(entry_name(t.name));
    if (it == imatrix_->entries.end() || it->second.in_gram.empty()) return {};
    const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const std::vector<float>& g = it->second.in_gram;
    if (g.size() != cols * cols) {
      fail_input("calibration file '" + path_ + "': the Gram matrix of '" + t.name + "' has " +
                 std::to_string(g.size()) + " values, not " + std::to_string(cols) + " x " + std::to_string(cols) +
                 ": the file was made for another model");
    }
    // Finite: read_imatrix refuses a file holding NaN or inf.
    return g;
  }
  bool empty() const { return !imatrix_ && !file_; }

  // The file's name for tensor `name`: its own, or for a Hugging Face Llama
  // weight the GGUF name calibration files use (lowbit calibrate and
  // llama-imatrix name weights so, whichever checkpoint the model came
  // from).
  std::string entry_name(const std::string& name) const {
    if (!imatrix_ || imatrix_->entries.count(name)) return name;
    const std::string gguf = name == "lm_head.weight" ? "output.weight" : llama_gguf_layer_name(name);
    return !gguf.empty() && imatrix_->entries.count(gguf) ? gguf : name;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<SafetensorsFile> file_;
  std::unique_ptr<Imatrix> imatrix_;
};

// The count of NaN and inf values in x (one SIMD pass when there is none).
uint64_t count_nonfinite(const std::vector<float>& x) {
  if (kernels::max_abs_bits(x.data(), x.size()) < 0x7f800000u) return 0;
  uint64_t n = 0;
  for (float v : x) n += !std::isfinite(v);
  return n;
}

[[noreturn]] void refuse_nonfinite(const CheckpointTensor& t, uint64_t n, bool kept) {
  fail_input("tensor '" + t.name + "' holds " + std::to_string(n) + " NaN or infinite value" + (n == 1 ? "" : "s") +
             (kept ? " (it is kept, not quantized: every tensor is checked)" : "") +
             "; pass --nan zero to replace them by 0, or --nan keep to keep them (a quantized block holding one "
             "decodes to NaN throughout; GGUF MXFP4 and NVFP4 cannot hold NaN and refuse it)");
}

// Bytes per element of the dtypes whose +0 is all zero bits, so that a
// kept tensor's NaN can be zeroed where it is stored; 0 for the others.
size_t zeroable_width(const std::string& dtype) {
  if (dtype == "F64") return 8;
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

void add_note(std::vector<std::string>& notes, std::string note) {
  if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(std::move(note));
}

}  // namespace

ModelReport quantize_model(const Checkpoint& in, ModelSink& sink, const ModelQuantizeOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  // Its packed codes and scales would be "quantized" as if they were weights.
  if (!in.undecodable_compressed_tensors().empty()) {
    fail_input("'" + in.path() + "' is a compressed-tensors checkpoint lowbit cannot decode, so its weights cannot be " +
               "read: " + in.undecodable_compressed_tensors());
  }
  // Every rule, whether or not it matches a tensor, names what the
  // container can store: a typo in a rule meant for another model fails
  // now, not in a later run.
  const Method& recipe_method = opt.recipe.method ? *opt.recipe.method : *opt.method;
  if (!opt.recipe.default_scheme.empty()) sink.check_scheme(opt.recipe.default_scheme, recipe_method);
  for (const RecipeRule& rule : opt.recipe.rules) {
    if (!rule.keep) sink.check_scheme(rule.scheme, rule.method ? *rule.method : recipe_method);
  }
  ModelReport r;
  r.input = in.path();
  r.input_bytes = in.total_bytes();
  r.threads = opt.threads;
  r.omitted = in.omitted_activation_tensors();
  const std::vector<CheckpointTensor>& ts = in.tensors();
  std::vector<TensorDecision> decisions;
  decisions.reserve(ts.size());
  ModelProgress progress;
  progress.tensors_total = ts.size();
  std::vector<std::string> left_out(ts.size());  // the sink's reason, or empty
  const CalibTable calib(opt.recipe.importance_file);
  // A method that needs calibration: refused without a file, or with one
  // that has its statistics for none of the tensors it is to quantize (a
  // file of another model, or calibrated without --gram). A tensor the
  // calibration run never reached (BERT's pooler, unused by mean pooling)
  // gets the scheme's plain rounding, and the report says so.
  std::vector<std::string> method_fallback(ts.size());
  size_t calibrated = 0, wanting = 0;
  std::string first_missing;
  for (size_t i = 0; i < ts.size(); ++i) {
    decisions.push_back(decide(opt.recipe, ts[i], *opt.method));
    TensorDecision& d = decisions.back();
    left_out[i] = sink.leaves_out(ts[i]);
    if (!left_out[i].empty()) {
      d.quantize = false;
      d.reason = left_out[i];
    }
    if (!d.quantize || !d.method->needs_calibration()) continue;
    if (calib.empty()) {
      fail_usage(std::string("method ") + d.method->name() + " (for tensor '" + ts[i].name +
                 "') needs calibration statistics: record them with `lowbit calibrate MODEL --text CALIB.txt --gram "
                 "-o calib.gguf` and pass --calib calib.gguf");
    }
    if (opt.nan == NanPolicy::kKeep) {
      fail_usage(std::string("method ") + d.method->name() +
                 " spreads each weight's rounding error over the others, so a NaN kept by --nan keep would reach "
                 "its whole row: use --nan refuse (the default) or --nan zero");
    }
    ++wanting;
    (void)calib.for_tensor(ts[i]);  // its importance entry is checked now too, not mid-way
    if (!calib.gram(ts[i]).empty()) {
      ++calibrated;
      continue;
    }
    if (first_missing.empty()) first_missing = ts[i].name;
    method_fallback[i] = std::string("no Gram matrix under its name in '") + calib.path() +
                         "' (the calibration run did not reach it): plain rounding instead of " + d.method->name();
    d.method = &rtn_method();
  }
  if (wanting > 0 && calibrated == 0) {
    fail_input("calibration file '" + calib.path() + "' has no Gram matrix for '" + first_missing +
               "' nor for any other weight the data-aware method is to quantize: record them with `lowbit calibrate " +
               "... --gram` from this model (its weights are named as here)");
  }
  for (size_t i = 0; i < ts.size(); ++i) {
    const CheckpointTensor& t = ts[i];
    sink.plan(t, decisions[i]);
    if (decisions[i].quantize) progress.work_total += t.numel * 4;
  }
  sink.begin();
  std::vector<float> x, x_hat;
  std::vector<std::byte> patched;  // a kept tensor with its NaN zeroed
  double quant_seconds = 0, qsnr_sum = 0;
  size_t qsnr_count = 0;
  r.worst_qsnr_db = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < ts.size(); ++i) {
    const CheckpointTensor& t = ts[i];
    const TensorDecision& d = decisions[i];
    progress.tensors_done = i;
    progress.current = t.name;
    if (opt.progress) opt.progress(progress);
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
    if (!left_out[i].empty()) {
      st = sink.write(t, d, nullptr, {}, nullptr, nullptr, opt.threads);
      tr.scheme = "left out";
      tr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ti).count();
      r.tensors.push_back(std::move(tr));
      continue;
    } else if (d.quantize) {
      x.resize(t.numel);
      in.read_float32(i, x.data(), opt.threads);
      tr.nonfinite = count_nonfinite(x);
      if (tr.nonfinite && opt.nan == NanPolicy::kRefuse) refuse_nonfinite(t, tr.nonfinite, false);
      if (tr.nonfinite && opt.nan == NanPolicy::kZero) {
        for (float& v : x) v = std::isfinite(v) ? v : 0.0f;
      }
      const std::vector<float> w = calib.for_tensor(t);
      CalibStats cs;
      cs.importance_per_column = w;
      if (d.method->needs_calibration()) cs.gram = calib.gram(t);
      x_hat.resize(t.numel);
      st = sink.write(t, d, x.data(), in.raw_bytes(i), &cs, x_hat.data(), opt.threads);
      const ErrorStats e = error_stats(x.data(), x_hat.data(), t.numel, opt.threads);
      tr.qsnr_db = e.qsnr_db();
      tr.relative_rmse = e.relative_rmse();
      tr.lost = e.lost;
      tr.all_zero = e.sum_x2 > 0 && e.sum_y2 == 0 && e.lost == 0;
      tr.method = d.method->name();
      r.params_quantized += t.numel;
      if (std::isfinite(tr.qsnr_db)) {
        qsnr_sum += tr.qsnr_db;
        ++qsnr_count;
      }
      if (tr.qsnr_db < r.worst_qsnr_db || r.worst_tensor.empty()) {
        r.worst_qsnr_db = tr.qsnr_db;
        r.worst_tensor = t.name;
      }
    } else {
      // Kept tensors are checked too: a NaN bias is as broken as a NaN
      // weight. Compressed-tensors weights are kept as float32 values.
      std::span<const std::byte> raw = in.raw_bytes(i);
      const float* values = nullptr;
      if (t.floating) {
        // A tensor stored from its bytes is checked a slice at a time (no
        // float32 copy of a large embedding); one converted is read whole,
        // as it is written whole.
        const bool as_float32 = sink.kept_as_float32(i);
        tr.nonfinite = as_float32 ? 0 : in.count_nonfinite(i, opt.threads);
        if (as_float32 || (tr.nonfinite && opt.nan == NanPolicy::kZero)) {
          x.resize(t.numel);
          in.read_float32(i, x.data(), opt.threads);
          values = x.data();
          tr.nonfinite = count_nonfinite(x);
        }
        if (tr.nonfinite && opt.nan == NanPolicy::kRefuse) refuse_nonfinite(t, tr.nonfinite, true);
        if (tr.nonfinite && opt.nan == NanPolicy::kZero) {
          // Zeroed where it is stored, in its own dtype (for a sink that
          // copies the bytes), and in the float32 values (for one that
          // converts them).
          if (!raw.empty()) {
            const size_t width = zeroable_width(t.dtype);
            if (width == 0 || raw.size() != t.numel * width) {
              fail_input("kept tensor '" + t.name + "' (" + t.dtype + ") holds " + std::to_string(tr.nonfinite) +
                         " NaN or infinite values, which --nan zero cannot replace in that type; quantize it with a "
                         "recipe rule, or use --nan keep");
            }
            patched.assign(raw.begin(), raw.end());
            for (uint64_t k = 0; k < t.numel; ++k) {
              if (!std::isfinite(x[k])) std::memset(patched.data() + k * width, 0, width);
            }
            raw = patched;
          }
          for (float& v : x) v = std::isfinite(v) ? v : 0.0f;
        }
      }
      st = sink.write(t, d, values, raw, nullptr, nullptr, opt.threads);
      if (!patched.empty()) std::vector<std::byte>().swap(patched);
    }
    // Its input pages leave the resident set: peak memory stays near one
    // tensor, not the whole mapped model.
    in.release(i);
    tr.scheme = st.stored_as;
    tr.fallback = st.fallback;
    tr.calib_error_rtn = st.method.calib_error_rtn;
    tr.calib_error = st.method.calib_error;
    tr.method_note = !method_fallback[i].empty() ? method_fallback[i] : st.method.note;
    tr.bytes_out = st.bytes;
    tr.bits_per_element = t.numel ? static_cast<double>(st.bits) / t.numel : 0;
    tr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ti).count();
    if (d.quantize) {
      quant_seconds += tr.seconds;
      progress.work_done += t.numel * 4;
    }
    r.params_total += t.numel;
    r.tensors.push_back(std::move(tr));
    // Give the memory of a large tensor back before the next one.
    if (x.capacity() > (uint64_t{64} << 20)) {
      std::vector<float>().swap(x);
      std::vector<float>().swap(x_hat);
    }
  }
  progress.tensors_done = ts.size();
  progress.current.clear();
  if (opt.progress) opt.progress(progress);
  r.output_bytes = sink.commit();
  r.notes = sink.notes();
  uint64_t qbits = 0;
  for (const TensorReport& tr : r.tensors) {
    if (tr.quantized) qbits += static_cast<uint64_t>(std::llround(tr.bits_per_element * tr.numel));
    if (tr.lost) {
      add_note(r.notes, std::to_string(tr.lost) + " finite weight(s) of '" + tr.name +
                            "' decode to NaN: they share a block with a NaN or inf kept by --nan keep, so its "
                            "QSNR is -inf");
    }
    if (!tr.method_note.empty()) add_note(r.notes, "'" + tr.name + "' (" + tr.method + "): " + tr.method_note);
    if (tr.all_zero) {
      add_note(r.notes, "'" + tr.name + "' decodes to all zeros: every weight is below the scheme's smallest step");
    }
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
  r.input_mb_per_s = quant_seconds > 0 ? progress.work_total / quant_seconds / 1e6 : 0;
  r.peak_rss_bytes = peak_rss_bytes();
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
      e["relative_rmse"] = finite_or_null(t.relative_rmse);
      e["lost"] = t.lost;
      e["all_zero"] = t.all_zero;
    }
    e["nonfinite"] = t.nonfinite;
    if (!t.fallback.empty()) e["fallback"] = t.fallback;
    if (t.calib_error >= 0) {
      // The output error of the Linear on the calibration data (the method
      // measured it): the scheme's plain rounding, the method, their ratio.
      e["calib_output_error"] = {{"rtn", t.calib_error_rtn},
                                 {"method", t.calib_error},
                                 {"ratio", t.calib_error_rtn > 0 ? finite_or_null(t.calib_error / t.calib_error_rtn)
                                                                 : nlohmann::json(nullptr)}};
    }
    if (!t.method_note.empty()) e["method_note"] = t.method_note;
    e["seconds"] = t.seconds;
    arr.push_back(std::move(e));
  }
  j["tensors"] = std::move(arr);
  j["omitted_tensors"] = omitted;
  j["notes"] = notes;
  return j;
}

}  // namespace lowbit

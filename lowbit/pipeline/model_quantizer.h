// Whole-model quantization: a checkpoint in, a quantized checkpoint out,
// tensor by tensor, with a report of what each tensor cost and lost.
//
// The driver streams: it reads one tensor as float32 from the input's
// memory map, quantizes it, hands the stored form to the output sink and
// measures the error against what a reader of the output will decode, then
// frees it. Peak memory is the largest tensor (input, output and its
// decoded copy), never the model. The container-specific part (which
// schemes a container can hold, and its bytes) lives in the sinks:
// gguf_model_sink and compressed_tensors_model_sink.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/checkpoint.h"
#include "lowbit/pipeline/gguf_architecture.h"
#include "lowbit/pipeline/recipe.h"

namespace lowbit {

// What to do with NaN or inf in a tensor that is to be quantized.
// Every tensor is checked, kept ones included.
enum class NanPolicy {
  kRefuse,  // the default: stop with an error naming the tensor
  kZero,    // replace them by 0 (before quantizing; in a kept tensor, in its own dtype)
  kKeep,    // keep them: a quantized block holding one decodes to NaN throughout
};
NanPolicy parse_nan_policy(std::string_view s);

// The stored form of one tensor, as a sink reports it.
struct StoredTensor {
  std::string stored_as;  // "Q4_K", "int4/g128/asym", or the kept dtype
  uint64_t bytes = 0;     // bytes in the output (all components)
  uint64_t bits = 0;      // exact bits, for bits per element
  // Why the stored type is not the one asked for ("Q8_0's float16 block
  // scale overflows: |w| reaches 1e+07"), or empty.
  std::string fallback;
  // What the method measured (its output error on the calibration data).
  MethodReport method;
};

// What the output sinks take besides the input and the output path.
struct SinkOptions {
  // The model's name, for containers that record one (GGUF general.name)
  // when the input does not carry it: never a path of this machine.
  std::string model_name;
  // A directory output may go into a directory holding other files; only
  // the files lowbit writes are replaced (OutputDirectory).
  bool overwrite = false;
  // GGUF output of a safetensors input: the llama.cpp architecture to
  // write (metadata, tensor names). Unset: detected from the input's
  // config.json (detect_gguf_architecture); a checkpoint held in memory has
  // none to detect, so tests set it here.
  std::optional<GgufArchitecture> gguf_architecture;
};

// A container writer for quantized models.
class ModelSink {
 public:
  virtual ~ModelSink() = default;
  // Called for every tensor, in order, before begin(): the sink checks it
  // can store the decision (kUsage naming the schemes it can store
  // otherwise) and declares its output tensors.
  virtual void plan(const CheckpointTensor& t, const TensorDecision& d) = 0;
  // Why tensor `t` is not part of the output at all (a tensor the target
  // layout has no place for, as llama.cpp's BERT layout has none for the
  // pooler), or empty. Asked before plan(); such a tensor is neither read
  // nor quantized nor counted, and the report says why.
  virtual std::string leaves_out(const CheckpointTensor& /*t*/) const { return {}; }
  // Checks that the container can store `scheme` with `method` at all
  // (kUsage otherwise): every recipe rule is checked so, before any work,
  // whether or not it matches a tensor.
  virtual void check_scheme(const std::string& scheme, const Method& method) const = 0;
  virtual void begin() = 0;
  // Whether write() of kept tensor `index` (in plan order) stores it from
  // its float32 values (a dtype the container lacks) rather than its bytes.
  virtual bool kept_as_float32(size_t index) const = 0;
  // Writes tensor `t` (the i-th planned). For a quantized tensor `x` holds
  // its float32 values (NaN and inf only under NanPolicy::kKeep) and
  // `x_hat` receives the values a reader of the output decodes; `calib`
  // holds what calibration recorded for it (per-column importance, the
  // Gram matrix of its input; either may be empty) or is nullptr. A kept tensor gets
  // its bytes as they are to be stored in `raw`, and, when it is floating,
  // its values as float32 in `x` (for a sink that converts it); x_hat is
  // then nullptr.
  virtual StoredTensor write(const CheckpointTensor& t, const TensorDecision& d, const float* x,
                             std::span<const std::byte> raw, const CalibStats* calib, float* x_hat,
                             int threads) = 0;
  // Makes the output visible (atomic renames) and returns its total size.
  virtual uint64_t commit() = 0;
  // What a user of the output should know that is no error: a planned
  // layout that a tool reading the container is known to refuse, tensors
  // stored in another type than asked. Asked once every tensor is written.
  virtual std::vector<std::string> notes() const { return {}; }
};

struct TensorReport {
  std::string name;
  std::vector<uint64_t> shape;
  std::string dtype_in;
  bool quantized = false;
  std::string scheme;   // as stored; the kept dtype for kept tensors
  std::string method;   // "" for kept tensors
  std::string reason;   // why it was quantized or kept
  uint64_t numel = 0, bytes_in = 0, bytes_out = 0;
  double bits_per_element = 0;
  double qsnr_db = 0, relative_rmse = 0;  // quantized tensors only
  uint64_t nonfinite = 0;                 // NaN/inf values in the input (kZero/kKeep let them through)
  // Finite input values that decode to NaN or inf (they share a block with
  // a NaN under kKeep): the error there is unbounded, and qsnr_db is -inf.
  uint64_t lost = 0;
  bool all_zero = false;  // a quantized tensor that is not all zero decodes to all zeros
  std::string fallback;   // StoredTensor::fallback
  // The Linear's output error on the calibration data, tr((W - Q) H (W -
  // Q)ᵀ), of the scheme's plain rounding and of the method (gptq measures
  // them); negative when not measured. method_note: a fallback it took.
  double calib_error_rtn = -1, calib_error = -1;
  std::string method_note;
  double seconds = 0;
};

struct ModelReport {
  std::string input, output, container_out;
  std::vector<TensorReport> tensors;
  // Input tensors left out of the output (Checkpoint::omitted_activation_tensors).
  std::vector<std::string> omitted;
  std::vector<std::string> notes;  // ModelSink::notes
  uint64_t input_bytes = 0, output_bytes = 0;
  uint64_t params_total = 0, params_quantized = 0;
  double avg_bits_quantized = 0;  // over the quantized tensors' elements
  double avg_bits_file = 0;       // 8 * output bytes / all elements
  // Over the quantized tensors: the mean of the finite QSNRs (+inf when all
  // are lossless) and the lowest.
  double mean_qsnr_db = 0, worst_qsnr_db = 0;
  std::string worst_tensor;
  double seconds = 0;
  double input_mb_per_s = 0;      // float32 bytes of quantized tensors per second of quantizing them
  uint64_t peak_rss_bytes = 0;
  int threads = 0;

  nlohmann::json to_json() const;
};

// Progress measured as the report's rate is: float32 bytes of the tensors
// to quantize (kept tensors, copied in no time, count for nothing, so they
// cannot make the rate or an estimate of the time left look better).
struct ModelProgress {
  size_t tensors_done = 0, tensors_total = 0;
  uint64_t work_done = 0, work_total = 0;  // float32 bytes of quantized tensors
  std::string current;                     // the tensor starting; empty at the end
};

struct ModelQuantizeOptions {
  Recipe recipe;
  const Method* method = &rtn_method();
  NanPolicy nan = NanPolicy::kRefuse;
  int threads = 0;
  // Called before each tensor and once at the end.
  std::function<void(const ModelProgress&)> progress;
};

// Quantizes `in` into `sink`. Plans every tensor first, so a scheme the
// container cannot hold fails before any output is written.
ModelReport quantize_model(const Checkpoint& in, ModelSink& sink, const ModelQuantizeOptions& opt);

// The process's peak resident set size so far, in bytes.
uint64_t peak_rss_bytes();

}  // namespace lowbit

#include "lowbit/pipeline/sinks/gguf_model_sink.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <cstdint>
#include <map>
#include <optional>

#include "lowbit/core/error.h"
#include "lowbit/ggml/nonfinite.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/type.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/pipeline/gguf_architecture.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/kernels/small_block_kernels.h"

namespace lowbit {
namespace {

// Types whose llama.cpp quantizer has a weighted search (its imatrix
// path): the mse method runs it.
bool has_weighted_search(GgmlType t) {
  return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K || t == GgmlType::kIQ4_NL;
}

// llama.cpp's fallback for rows that are not whole 256-element super-blocks
// (tensor_type_fallback in src/llama-quant.cpp, release b10605, which
// tests/python/test_llama_cpp.py builds and compares against); F16 when the
// fallback's 32-element blocks do not divide the rows either.
GgmlType row_fallback(GgmlType t) {
  switch (t) {
    case GgmlType::kIQ4_XS: return GgmlType::kIQ4_NL;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kTQ1_0:
    case GgmlType::kTQ2_0: return GgmlType::kQ4_0;
    case GgmlType::kQ4_K: return GgmlType::kQ5_0;
    case GgmlType::kQ5_K: return GgmlType::kQ5_1;
    case GgmlType::kQ6_K: return GgmlType::kQ8_0;
    default: return GgmlType::kF16;
  }
}

// The types a tensor falls back to, in order, when the one asked for would
// decode some of its finite weights to inf or NaN (a float16 block scale
// that overflows: one weight of 1e7 in Q8_0, of 1e5 in F16): the first that
// holds the whole tensor is stored. BF16 has float32's range and rounds to
// inf only past 3.39e38; F32 holds every finite float32. (F16 would never
// help: a float16 scale overflows only for weights past float16's range.)
constexpr GgmlType kRangeFallbacks[] = {GgmlType::kBF16, GgmlType::kF32};

// llama.cpp's general.file_type (llama_ftype) for a model quantized to t.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ4_1: return 3;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ5_0: return 8;
    case GgmlType::kQ5_1: return 9;
    case GgmlType::kQ2_K: return 10;
    case GgmlType::kQ3_K: return 12;  // Q3_K_M
    case GgmlType::kQ4_K: return 15;  // Q4_K_M
    case GgmlType::kQ5_K: return 17;  // Q5_K_M
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kIQ4_NL: return 25;
    case GgmlType::kIQ4_XS: return 30;
    case GgmlType::kBF16: return 32;
    case GgmlType::kTQ1_0: return 36;
    case GgmlType::kTQ2_0: return 37;
    case GgmlType::kMXFP4: return 38;
    case GgmlType::kNVFP4: return 39;
    case GgmlType::kQ1_0: return 40;
    default: return 1024;  // llama.cpp's "guessed"
  }
}

std::string quantizable_types() {
  std::string s;
  for (const GgmlTypeInfo& t : ggml_types()) {
    if (ggml_can_quantize(t.type)) s.append(s.empty() ? "" : ", ").append(t.name);
  }
  return s;
}

std::string type_name(GgmlType t) { return std::string(ggml_type_info(t).name); }

// Whether some block of x_hat holds a non-finite value although its block
// of x is all finite: what the type cannot hold, as opposed to the blocks
// --nan keep marks.
bool decodes_finite_to_nonfinite(const float* x, const float* x_hat, uint64_t n, uint64_t block) {
  if (kernels::max_abs_bits(x_hat, n) < 0x7f800000u) return false;
  for (uint64_t b = 0; b < n; b += block) {
    const uint64_t e = std::min(n, b + block);
    bool in_finite = true, out_finite = true;
    for (uint64_t i = b; i < e; ++i) {
      in_finite = in_finite && std::isfinite(x[i]);
      out_finite = out_finite && std::isfinite(x_hat[i]);
    }
    if (in_finite && !out_finite) return true;
  }
  return false;
}

float largest_finite_abs(const float* x, uint64_t n) {
  float m = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (std::isfinite(x[i])) m = std::max(m, std::fabs(x[i]));
  }
  return m;
}

struct Planned {
  std::string name;        // in the output
  bool dropped = false;    // left out of the output (GgufArchitecture::tensor_name)
  GgmlType type = GgmlType::kF32;  // as declared
  GgmlType requested = GgmlType::kF32;
  bool convert = false;    // kept, but written from float32 (no ggml dtype for the input's)
  std::string row_note;    // why the row length made it fall back, or empty
};

class GgufModelSink final : public ModelSink {
 public:
  GgufModelSink(const Checkpoint& in, const std::string& out, const SinkOptions& o) : in_(in), w_(out) {
    if (in.gguf()) {
      w_.copy_metadata(*in.gguf());
    } else {
      // A safetensors checkpoint of an architecture llama.cpp runs (BERT)
      // gets its llama.cpp metadata and tensor names (gguf_architecture.h);
      // any other holds the tensors under their own names. Both record the
      // model's name (never a path of this machine).
      arch_ = o.gguf_architecture ? o.gguf_architecture : detect_gguf_architecture(in.directory());
      const std::string name = o.model_name.empty() ? std::string("model") : o.model_name;
      if (arch_) {
        // general.architecture first, as gguf-py writes it.
        w_.add_metadata(arch_->metadata.front().key, arch_->metadata.front().value);
        w_.add_metadata("general.name", GgufValue::of(name));
        for (size_t i = 1; i < arch_->metadata.size(); ++i) w_.add_metadata(arch_->metadata[i].key, arch_->metadata[i].value);
      } else {
        w_.add_metadata("general.name", GgufValue::of(name));
      }
    }
  }

  void check_scheme(const std::string& scheme, const Method& method) const override { (void)checked_type(scheme, method, ""); }

  std::string leaves_out(const CheckpointTensor& t) const override {
    if (!arch_ || !arch_->tensor_name(t.name).empty()) return {};
    return "not part of llama.cpp's " + arch_->name + " layout (its converter leaves it out)";
  }

  void plan(const CheckpointTensor& t, const TensorDecision& d) override {
    Planned p;
    p.name = arch_ ? arch_->tensor_name(t.name) : t.name;
    if (p.name.empty()) {
      // Left out as llama.cpp's converter leaves it out: nothing declared.
      p.dropped = true;
      planned_.push_back(p);
      declared_index_.push_back(SIZE_MAX);
      return;
    }
    if (d.quantize) {
      p.requested = checked_type(d.scheme, *d.method, t.name);
      p.type = p.requested;
      const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
      while (cols % ggml_type_info(p.type).block_elems != 0) {
        const GgmlType f = row_fallback(p.type);
        p.row_note = "rows of " + std::to_string(cols) + " are not whole " + type_name(p.requested) + " blocks (" +
                     std::to_string(ggml_type_info(p.requested).block_elems) + ")";
        p.type = f;
      }
      ++requested_types_[p.requested];
    } else if (in_.gguf()) {
      p.type = in_.gguf()->tensors()[t.index_in_shard].type;
    } else {
      static const std::map<std::string, GgmlType> kept = {
          {"F32", GgmlType::kF32}, {"F16", GgmlType::kF16}, {"BF16", GgmlType::kBF16}, {"F64", GgmlType::kF64},
          {"I8", GgmlType::kI8},   {"I16", GgmlType::kI16}, {"I32", GgmlType::kI32},   {"I64", GgmlType::kI64}};
      if (arch_ && arch_->one_dim_as_f32 && t.shape.size() <= 1 && t.floating) {
        p.type = GgmlType::kF32;
        p.convert = t.dtype != "F32";
      } else if (const auto it = kept.find(t.dtype); it != kept.end()) {
        p.type = it->second;
      } else if (t.floating) {
        p.type = GgmlType::kF32;  // FP8 widens exactly
        p.convert = true;
      } else {
        fail_input("tensor '" + t.name + "' has dtype " + t.dtype + ", which GGUF cannot store");
      }
    }
    std::vector<uint64_t> shape = t.shape;
    if (shape.empty()) shape = {1};
    declared_index_.push_back(w_.declare_tensor(p.name, reverse_dims(shape), p.type));
    planned_.push_back(p);
  }

  bool kept_as_float32(size_t index) const override { return planned_.at(index).convert; }

  void begin() override {
    if (!requested_types_.empty()) {
      // The type asked for, as llama-quantize writes it, not the one most
      // tensors ended up with after falling back (the report says which
      // did).
      const auto most = std::max_element(requested_types_.begin(), requested_types_.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
      w_.set_metadata("general.file_type", GgufValue::of(file_type_of(most->first)));
      // ggml's block layouts version (llama.cpp writes 2 for every
      // quantized model).
      w_.set_metadata("general.quantization_version", GgufValue::of(uint32_t{2}));
    }
    w_.begin();
  }

  StoredTensor write(const CheckpointTensor& t, const TensorDecision& d, const float* x,
                     std::span<const std::byte> raw, const CalibStats* calib, float* x_hat, int threads) override {
    Planned& p = planned_.at(next_);
    const size_t index = declared_index_.at(next_++);
    if (p.dropped) {
      StoredTensor st;
      st.stored_as = "left out";
      st.fallback = "not part of llama.cpp's " + arch_->name + " layout (as its converter leaves it out)";
      return st;
    }
    const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const uint64_t rows = cols ? t.numel / cols : 0;
    StoredTensor st;
    if (d.quantize) {
      const float* importance =
          calib && !calib->importance_per_column.empty() ? calib->importance_per_column.data() : nullptr;
      const float* w = importance;
      std::vector<float> ones;
      if (d.method == &mse_method() && w == nullptr) {
        ones.assign(cols, 1.0f);
        w = ones.data();
      }
      if (d.method == &rtn_method()) w = importance;  // rtn with an imatrix is llama.cpp's weighted path too
      const bool keep_nonfinite = has_nonfinite(x, t.numel);
      const auto encode = [&](GgmlType type) {
        buf_.resize(w_.tensor_nbytes(index));
        if (keep_nonfinite) {
          ggml_quantize_rows_keeping_nonfinite(type, x, rows, cols, buf_.data(), w, threads);
        } else {
          ggml_quantize_rows(type, x, rows, cols, buf_.data(), w, threads);
        }
        ggml_dequantize_rows(type, buf_.data(), rows, cols, x_hat, threads);
        return !decodes_finite_to_nonfinite(x, x_hat, t.numel, ggml_type_info(type).block_elems);
      };
      if (!encode(p.type)) {
        const GgmlType wanted = p.type;
        bool held = false;
        for (const GgmlType f : kRangeFallbacks) {
          if (f == wanted) continue;
          w_.retype_tensor(index, f);
          p.type = f;
          if ((held = encode(f))) break;
        }
        if (!held) fail_internal("GGUF: no fallback type holds tensor '" + t.name + "'");
        char amax[32];
        std::snprintf(amax, sizeof amax, "%.3g", static_cast<double>(largest_finite_abs(x, t.numel)));
        st.fallback = type_name(wanted) + " would decode some of its finite weights to inf or NaN (its largest |w| is " +
                      amax + ")";
        ++range_fallbacks_[{wanted, p.type}];
      } else if (!p.row_note.empty()) {
        st.fallback = p.row_note;
        ++row_fallbacks_[{p.requested, p.type, p.row_note.substr(0, p.row_note.find(" are not"))}];
      }
      w_.write_tensor_data(index, buf_.data(), buf_.size());
    } else if (p.convert) {
      w_.write_tensor_data(index, x, t.numel * 4);
    } else {
      w_.write_tensor_data(index, raw.data(), raw.size());
    }
    const GgmlTypeInfo info = ggml_type_info(p.type);
    st.stored_as = std::string(info.name);
    st.bytes = w_.tensor_nbytes(index);
    st.bits = st.bytes * 8;
    return st;
  }

  uint64_t commit() override {
    w_.commit();
    std::error_code ec;
    const auto size = std::filesystem::file_size(w_.path(), ec);
    return ec ? 0 : size;
  }

  std::vector<std::string> notes() const override {
    std::vector<std::string> notes;
    for (const auto& [k, n] : row_fallbacks_) {
      const auto& [from, to, rows] = k;
      notes.push_back(std::to_string(n) + (n == 1 ? " tensor" : " tensors") + " fell back from " + type_name(from) +
                      " to " + type_name(to) + ": " + rows + " are not whole " + type_name(from) + " blocks (as " +
                      "llama-quantize does)");
    }
    for (const auto& [k, n] : range_fallbacks_) {
      notes.push_back(std::to_string(n) + (n == 1 ? " tensor" : " tensors") + " fell back from " + type_name(k.first) +
                      " to " + type_name(k.second) + ": " + type_name(k.first) +
                      " would decode some of their finite weights to inf or NaN (a float16 scale overflows)");
    }
    return notes;
  }

 private:
  // The ggml type a scheme names, checked against what GGUF output and the
  // method can do; kUsage naming the tensor (when given) otherwise.
  GgmlType checked_type(const std::string& scheme, const Method& method, const std::string& tensor) const {
    const std::string where = tensor.empty() ? "" : " (for tensor '" + tensor + "')";
    const auto info = ggml_type_by_name(scheme);
    if (!info || !ggml_can_quantize(info->type)) {
      fail_usage("GGUF output stores ggml types; '" + scheme + "'" + where +
                 " is not one. Quantizable ggml types: " + quantizable_types() +
                 ". lowbit's own schemes go to safetensors (compressed-tensors): --to safetensors");
    }
    if (&method == &hqq_method()) {
      fail_usage("method hqq needs an asymmetric lowbit integer scheme (e.g. int4/g128/asym) in a "
                 "safetensors output; GGUF types take rtn or mse");
    }
    if (method.needs_calibration()) {
      fail_usage(std::string("method ") + method.name() +
                 " does not write ggml block types yet; it quantizes lowbit's schemes into a safetensors "
                 "(compressed-tensors) output (e.g. --scheme int4/g128 --to safetensors)");
    }
    if (&method == &mse_method() && !has_weighted_search(info->type)) {
      fail_usage("method mse on GGUF runs llama.cpp's weighted search, which " + std::string(info->name) +
                 " does not have; use it with Q4_K, Q5_K, Q6_K or IQ4_NL, or use rtn");
    }
    return info->type;
  }

  const Checkpoint& in_;
  GgufWriter w_;
  std::optional<GgufArchitecture> arch_;
  std::vector<size_t> declared_index_;  // per planned tensor: its index in w_, SIZE_MAX if left out
  std::vector<Planned> planned_;
  std::map<GgmlType, size_t> requested_types_;
  std::map<std::tuple<GgmlType, GgmlType, std::string>, size_t> row_fallbacks_;
  std::map<std::pair<GgmlType, GgmlType>, size_t> range_fallbacks_;
  size_t next_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace

std::unique_ptr<ModelSink> make_gguf_model_sink(const Checkpoint& in, const std::string& out_path,
                                                const SinkOptions& options) {
  return std::make_unique<GgufModelSink>(in, out_path, options);
}

}  // namespace lowbit

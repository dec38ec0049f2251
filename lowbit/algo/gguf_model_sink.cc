#include "lowbit/algo/gguf_model_sink.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/quant/ggml_codec.h"
#include "lowbit/quant/ggml_type.h"

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

// llama.cpp's general.file_type (llama_ftype) for a model whose quantized
// weights are mostly of type t.
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

struct Planned {
  GgmlType type;
  bool convert = false;  // kept, but written from float32 (no ggml dtype for the input's)
  std::string note;
};

class GgufModelSink final : public ModelSink {
 public:
  GgufModelSink(const Checkpoint& in, const std::string& out) : in_(in), w_(out) {
    if (in.gguf()) {
      w_.copy_metadata(*in.gguf());
    } else {
      // A safetensors checkpoint carries no llama.cpp architecture
      // metadata: the file holds the tensors under their own names.
      w_.add_metadata("general.name", GgufValue::of(in.directory()));
    }
  }

  void plan(const CheckpointTensor& t, const TensorDecision& d) override {
    Planned p;
    if (d.quantize) {
      const auto info = ggml_type_by_name(d.scheme);
      if (!info || !ggml_can_quantize(info->type)) {
        fail_usage("GGUF output stores ggml types; '" + d.scheme + "' (for tensor '" + t.name +
                   "') is not one. Quantizable ggml types: " + quantizable_types() +
                   ". lowbit's own schemes go to safetensors (compressed-tensors): --to safetensors");
      }
      p.type = info->type;
      if (d.method == Method::kHqq) {
        fail_usage("method hqq needs an asymmetric lowbit integer scheme (e.g. int4/g128/asym) in a "
                   "safetensors output; GGUF types take rtn or mse");
      }
      if (d.method == Method::kMse && !has_weighted_search(p.type)) {
        fail_usage("method mse on GGUF runs llama.cpp's weighted search, which " + std::string(info->name) +
                   " does not have; use it with Q4_K, Q5_K, Q6_K or IQ4_NL, or use rtn");
      }
      const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
      while (cols % ggml_type_info(p.type).block_elems != 0) {
        const GgmlType f = row_fallback(p.type);
        p.note = std::string(" (rows of ").append(std::to_string(cols)).append(" are not whole ")
                     .append(info->name).append(" blocks)");
        p.type = f;
      }
      ++quantized_types_[p.type];
    } else if (in_.gguf()) {
      p.type = in_.gguf()->tensors()[t.index_in_shard].type;
    } else {
      static const std::map<std::string, GgmlType> kept = {
          {"F32", GgmlType::kF32}, {"F16", GgmlType::kF16}, {"BF16", GgmlType::kBF16}, {"F64", GgmlType::kF64},
          {"I8", GgmlType::kI8},   {"I16", GgmlType::kI16}, {"I32", GgmlType::kI32},   {"I64", GgmlType::kI64}};
      if (const auto it = kept.find(t.dtype); it != kept.end()) {
        p.type = it->second;
      } else if (t.floating) {
        p.type = GgmlType::kF32;  // FP8 widens exactly
        p.convert = true;
      } else {
        fail_usage("tensor '" + t.name + "' has dtype " + t.dtype + ", which GGUF cannot store");
      }
    }
    std::vector<uint64_t> shape = t.shape;
    if (shape.empty()) shape = {1};
    w_.declare_tensor(t.name, reverse_dims(shape), p.type);
    planned_.push_back(p);
  }

  void begin() override {
    if (!quantized_types_.empty()) {
      const auto most = std::max_element(quantized_types_.begin(), quantized_types_.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
      w_.set_metadata("general.file_type", GgufValue::of(file_type_of(most->first)));
      // ggml's block layouts version (llama.cpp writes 2 for every
      // quantized model).
      w_.set_metadata("general.quantization_version", GgufValue::of(uint32_t{2}));
    }
    w_.begin();
  }

  StoredTensor write(const CheckpointTensor& t, const TensorDecision& d, const float* x,
                     std::span<const std::byte> raw, const float* importance, float* x_hat, int threads) override {
    const Planned& p = planned_.at(next_++);
    const size_t index = next_ - 1;
    const GgmlTypeInfo info = ggml_type_info(p.type);
    StoredTensor st;
    st.stored_as = std::string(info.name) + p.note;
    st.bytes = w_.tensor_nbytes(index);
    st.bits = st.bytes * 8;
    const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const uint64_t rows = cols ? t.numel / cols : 0;
    if (d.quantize) {
      buf_.resize(st.bytes);
      std::vector<float> ones;
      const float* w = importance;
      if (d.method == Method::kMse && w == nullptr) {
        ones.assign(cols, 1.0f);
        w = ones.data();
      }
      if (d.method == Method::kRtn) w = importance;  // rtn with an imatrix is llama.cpp's weighted path too
      ggml_quantize_rows(p.type, x, rows, cols, buf_.data(), w, threads);
      ggml_dequantize_rows(p.type, buf_.data(), rows, cols, x_hat, threads);
      w_.write_tensor_data(index, buf_.data(), buf_.size());
    } else if (p.convert) {
      std::vector<float> f(t.numel);
      in_.read_float32(index, f.data(), threads);  // tensors are planned and written in input order
      w_.write_tensor_data(index, f.data(), f.size() * 4);
    } else {
      w_.write_tensor_data(index, raw.data(), raw.size());
    }
    return st;
  }

  uint64_t commit() override {
    w_.commit();
    std::error_code ec;
    const auto size = std::filesystem::file_size(w_.path(), ec);
    return ec ? 0 : size;
  }

 private:
  const Checkpoint& in_;
  GgufWriter w_;
  std::vector<Planned> planned_;
  std::map<GgmlType, size_t> quantized_types_;
  size_t next_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace

std::unique_ptr<ModelSink> make_gguf_model_sink(const Checkpoint& in, const std::string& out_path) {
  return std::make_unique<GgufModelSink>(in, out_path);
}

}  // namespace lowbit

#include "lowbit/pipeline/sinks/compressed_tensors_model_sink.h"


#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/output_directory.h"
#include "lowbit/core/path_identity.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/io/compressed_tensors.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/pipeline/fused_shards.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Files of the input directory that belong with the model but are not its
// weights: configuration, tokenizer, sentence-transformers modules.
bool is_companion(const fs::path& p) {
  const std::string name = p.filename().string();
  return !(ends_with(name, ".safetensors") || ends_with(name, ".gguf") || ends_with(name, ".bin") ||
           ends_with(name, ".pt") || ends_with(name, ".pth") || name == "model.safetensors.index.json" ||
           name == "config.json" || name.starts_with("."));
}

struct Planned {
  bool quantized = false;
  std::string module;
  std::optional<CtPlan> plan;
  Scheme scheme;
  std::vector<size_t> indices;  // output tensors
  DType kept_dtype = DType::kF32;
  bool convert = false;         // kept, written as float32 from read_float32
  std::string fused;            // two-level schemes: the fused layer and scheme shards share a tensor scale by
};

class CompressedTensorsModelSink final : public ModelSink {
 public:
  CompressedTensorsModelSink(const Checkpoint& in, std::string out, const SinkOptions& o)
      : in_(in), out_(without_trailing_slashes(std::move(out))) {
    single_file_ = ends_with(out_, ".safetensors");
    if (single_file_) {
      w_ = std::make_unique<SafetensorsWriter>(out_);
    } else {
      // Built beside its final place and moved there at the end; never
      // over a directory holding files lowbit did not write.
      dir_ = std::make_unique<OutputDirectory>(out_, o.overwrite);
      w_ = std::make_unique<SafetensorsWriter>((fs::path(dir_->temp_path()) / "model.safetensors").string());
    }
  }

  ~CompressedTensorsModelSink() override {
    w_.reset();  // removes its temporary file unless committed
    dir_.reset();  // and the temporary directory
  }

  void check_scheme(const std::string& scheme, const Method& method) const override {
    const Scheme s = generic_scheme(scheme, "");
    method.check(s);
    // A shape every granularity divides: only the scheme is judged here.
    const uint64_t r = 256 * (s.gran.kind == Granularity::Kind::kBlock2D ? s.gran.rows : 1);
    const uint64_t c = 256 * (s.gran.kind == Granularity::Kind::kBlock2D ? s.gran.cols
                              : s.gran.kind == Granularity::Kind::kGroup ? s.gran.group
                                                                         : 1);
    (void)plan_compressed_tensors(method.stored_scheme(s, false), {r, c});
  }

  void plan(const CheckpointTensor& t, const TensorDecision& d) override {
    Planned p;
    if (d.quantize) {
      if (!ends_with(t.name, ".weight") || t.shape.size() != 2) {
        fail_usage("compressed-tensors quantizes the weights of modules ('<module>.weight', 2-D); tensor '" + t.name +
                   "' is not one: keep it in the recipe");
      }
      p.quantized = true;
      p.module = t.name.substr(0, t.name.size() - 7);
      p.scheme = generic_scheme(d.scheme, t.name);
      d.method->check(p.scheme);
      p.plan = plan_compressed_tensors(d.method->stored_scheme(p.scheme, false), t.shape, t.name);
      p.indices = declare_compressed_tensors(*w_, p.module, *p.plan);
      modules_.push_back({p.module, p.plan->format, p.plan->args});
      if (p.scheme.two_level()) {
        if (const std::string layer = fused_layer_of(t.name); !layer.empty()) {
          p.fused = layer + " " + d.scheme + " " + d.method->name();
          shards_[p.fused].push_back(planned_.size());
        }
      }
      note_fused_shard(t.name, d.scheme + " (" + d.method->name() + ")");
    } else {
      if (t.shape.size() == 2 && ends_with(t.name, ".weight")) note_fused_shard(t.name, "kept");
      const std::optional<DType> dt = find_dtype(t.dtype);
      if (dt && in_.container() == Container::kSafetensors) {
        p.kept_dtype = *dt;
      } else if (t.floating) {
        p.kept_dtype = DType::kF32;  // a GGUF block type: its decoded values, exactly
        p.convert = true;
      } else {
        fail_input("tensor '" + t.name + "' has type " + t.dtype + ", which safetensors cannot store");
      }
      p.indices = {w_->declare(t.name, p.kept_dtype, t.shape)};
      if (t.shape.size() == 2 && ends_with(t.name, ".weight")) ignore_.push_back(t.name.substr(0, t.name.size() - 7));
    }
    planned_.push_back(std::move(p));
  }

  std::vector<std::string> notes() const override {
    // vLLM 0.33 builds CompressedTensorsW8A16Fp8 for weight-only FP8 with
    // is_static_input_scheme = `input_quant and not input_quant.dynamic`,
    // which is None when there are no input activations, and its
    // process_weights_after_loading asserts `is_static_input_scheme is False`
    // for the block strategy: every weight-only block-FP8 checkpoint fails to
    // load, on any GPU, whoever wrote it (found with vLLM's own loaders, see
    // docs/compressed_tensors.md). The file is right; the user should know.
    size_t block_fp8 = 0;
    for (const CtModule& m : modules_) {
      block_fp8 += m.format == CtFormat::kFloatQuantized && m.args.strategy == "block";
    }
    if (block_fp8 == 0) return {};
    return {std::to_string(block_fp8) + " module(s) are weight-only block FP8, which vLLM 0.33 does not load " +
            "(CompressedTensorsW8A16Fp8.process_weights_after_loading asserts `is_static_input_scheme is False`, " +
            "None without input activations); float8_e4m3fn/channel loads. See docs/compressed_tensors.md"};
  }

  bool kept_as_float32(size_t index) const override { return planned_.at(index).convert; }

  void begin() override {
    // vLLM loads the shards of a fused layer (q/k/v, gate/up) as one layer
    // with one scheme: a recipe that splits them gives a checkpoint vLLM
    // cannot load, so it is refused before anything is written.
    for (const auto& [layer, shards] : fused_schemes_) {
      for (const auto& [name, scheme] : shards) {
        if (scheme == shards.front().second) continue;
        fail_usage("vLLM loads '" + shards.front().first + "' and '" + name + "' as one layer (" + layer +
                   "), so they must share one scheme and method, or all be kept; the recipe gives " +
                   shards.front().second + " and " + scheme + ". Give the shards of a fused layer the same rule");
      }
    }
    if (!modules_.empty()) config_ = ct_quantization_config(modules_, ignore_);
    // A single file carries the config in its metadata, as there is no
    // config.json beside it.
    if (single_file_ && !config_.is_null()) w_->add_metadata("quantization_config", config_.dump());
    w_->begin();
  }

  StoredTensor write(const CheckpointTensor& t, const TensorDecision& d, const float* x, std::span<const std::byte> raw,
                     const CalibStats* calib, float* x_hat, int threads) override {
    const size_t index = next_++;
    const Planned& p = planned_.at(index);
    StoredTensor st;
    if (!p.quantized) {
      st.stored_as = dtype_name(p.kept_dtype);
      if (p.convert) {
        w_->write_tensor_data(p.indices[0], x, t.numel * 4);
        st.bytes = t.numel * 4;
      } else {
        w_->write_tensor_data(p.indices[0], raw.data(), raw.size());
        st.bytes = raw.size();
      }
      st.bits = st.bytes * 8;
      return st;
    }
    QuantizeOptions o;
    o.threads = threads;
    o.min_tensor_amax = p.fused.empty() ? 0.0f : fused_amax(p.fused, threads);
    // NVFP4's tensor scale is stored as its reciprocal g, which vLLM inverts:
    // quantize with an s_t that 1.0f / g gives back exactly.
    o.reciprocal_tensor_scale = p.plan->format == CtFormat::kNvfp4PackQuantized && p.scheme.two_level();
    const QuantizedTensor q = d.method->quantize({x, t.shape}, p.scheme, calib, o, &st.method);
    // With importance weights, mse quantizes with scale=wmse, which plan()
    // could not know (the weights are read here). The scale rule changes no
    // stored layout, so the declared tensors stand; the encoder gets the plan
    // of the scheme actually used.
    CtPlan plan = *p.plan;
    if (q.scheme.spec() != plan.scheme.spec()) {
      plan = plan_compressed_tensors(q.scheme, t.shape, t.name);
      if (plan.format != p.plan->format || plan.args != p.plan->args || plan.tensors != p.plan->tensors) {
        fail_internal("compressed-tensors: '" + t.name + "' was planned as " + p.plan->scheme.spec() +
                      " but quantized as " + q.scheme.spec() + ", which is stored differently");
      }
    }
    const CtEncoded enc = encode_compressed_tensors(plan, q);
    write_compressed_tensors(*w_, p.indices, enc);
    // Decode what was written: the report measures the file.
    std::map<std::string, CtTensorView> views;
    for (const CtTensorData& e : enc.tensors) {
      st.bytes += e.bytes.size();
      views[e.decl.suffix] = {e.decl.dtype, e.decl.shape,
                              std::span<const std::byte>(reinterpret_cast<const std::byte*>(e.bytes.data()), e.bytes.size())};
    }
    dequantize(decode_compressed_tensors(p.plan->format, p.plan->args, views, p.module), x_hat, threads);
    st.bits = st.bytes * 8;
    st.stored_as = q.scheme.spec();
    return st;
  }

  // The scheme a spec names; llama.cpp's fixed layouts are refused, as
  // compressed-tensors has no such layout.
  static Scheme generic_scheme(const std::string& spec, const std::string& tensor) {
    const auto c = parse_codec(spec);
    if (!c->generic()) (void)plan_compressed_tensors(*c, {256, 256}, tensor);
    return c->scheme();
  }

  void note_fused_shard(const std::string& name, const std::string& how) {
    if (const std::string layer = fused_layer_of(name); !layer.empty()) fused_schemes_[layer].emplace_back(name, how);
  }

  // The largest finite |x| over the shards of a fused layer (read once, when
  // its first shard is written): the tensor amax they all quantize with.
  float fused_amax(const std::string& key, int threads) {
    if (const auto it = fused_amax_.find(key); it != fused_amax_.end()) return it->second;
    float m = 0;
    std::vector<float> f;
    for (const size_t i : shards_.at(key)) {
      f.resize(in_.tensors()[i].numel);
      in_.read_float32(i, f.data(), threads);
      for (const float v : f) {
        if (std::isfinite(v)) m = std::max(m, std::fabs(v));
      }
      in_.release(i);
    }
    fused_amax_[key] = m;
    return m;
  }

  uint64_t commit() override {
    w_->commit();
    if (single_file_) {
      committed_ = true;
      return fs::file_size(out_);
    }
    write_config();
    copy_companions();
    committed_ = true;
    return dir_->commit();
  }

 private:
  void write_config() {
    nlohmann::json cfg = nlohmann::json::object();
    const fs::path src = fs::path(in_.directory()) / "config.json";
    std::error_code ec;
    if (in_.container() == Container::kSafetensors && fs::exists(src, ec)) {
      std::ifstream f(src);
      try {
        cfg = nlohmann::json::parse(f);
      } catch (const nlohmann::json::exception& e) {
        fail_input("'" + src.string() + "' is not valid JSON: " + e.what());
      }
      if (!cfg.is_object()) fail_input("'" + src.string() + "' is not a JSON object");
    }
    // A compressed-tensors input whose weights are all kept now is written
    // plain (its weights were read dequantized): its config goes.
    if (!config_.is_null()) {
      cfg["quantization_config"] = config_;
    } else if (in_.has_compressed_weights()) {
      cfg.erase("quantization_config");
    }
    const std::string text = cfg.dump(2) + "\n";
    write_file_atomic((fs::path(dir_->temp_path()) / "config.json").string(), text.data(), text.size());
  }

  void copy_companions() {
    // Only a Hugging Face model directory (it has a config.json) has
    // companions; a lone weights file's directory holds anything.
    std::error_code ec;
    if (in_.container() != Container::kSafetensors || !fs::exists(fs::path(in_.directory()) / "config.json", ec)) return;
    const fs::path tmp(dir_->temp_path());
    for (const auto& e : fs::directory_iterator(in_.directory(), ec)) {
      if (!is_companion(e.path())) continue;
      // Never copy the output into itself (OUT inside the input directory).
      if (same_path(e.path().string(), dir_->temp_path()) || same_path(e.path().string(), out_) ||
          e.path().filename().string().find(".lowbit-") != std::string::npos) {
        continue;
      }
      fs::copy(e.path(), tmp / e.path().filename(), fs::copy_options::recursive, ec);
      if (ec) fail_io("cannot copy '" + e.path().string() + "' to the output: " + ec.message());
    }
  }

  const Checkpoint& in_;
  std::string out_;
  bool single_file_ = false;
  bool committed_ = false;
  std::unique_ptr<OutputDirectory> dir_;  // a directory output
  std::unique_ptr<SafetensorsWriter> w_;
  std::vector<Planned> planned_;
  std::vector<CtModule> modules_;
  // Fused layers' shards (Planned::fused -> their tensor indices) and, once
  // computed, their shared amax.
  std::map<std::string, std::vector<size_t>> shards_;
  std::map<std::string, float> fused_amax_;
  std::vector<std::string> ignore_;
  // Fused layer -> its shards in order, each with "scheme (method)" or "kept".
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> fused_schemes_;
  nlohmann::json config_;
  size_t next_ = 0;
};

}  // namespace

std::unique_ptr<ModelSink> make_compressed_tensors_model_sink(const Checkpoint& in, const std::string& out_path,
                                                               const SinkOptions& options) {
  return std::make_unique<CompressedTensorsModelSink>(in, out_path, options);
}

}  // namespace lowbit

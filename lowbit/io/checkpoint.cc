#include "lowbit/io/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/format/registry.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/io/compressed_tensors.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/compressed_tensors_pack.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The lowbit format of a floating safetensors dtype that widens exactly to
// float32 through the format engine (F32 and F64 are handled directly);
// empty for dtypes that are not read as numbers (integers, bool, packed
// sub-byte floats, whose packing order safetensors leaves open).
std::string_view widening_format(DType d) {
  switch (d) {
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kF8_E4M3: return "float8_e4m3fn";
    case DType::kF8_E5M2: return "float8_e5m2";
    default: return {};
  }
}

bool is_floating(DType d) { return d == DType::kF32 || d == DType::kF64 || !widening_format(d).empty(); }

// The one model file in a directory, by preference an index, then a single
// safetensors file, then a single GGUF file.
std::string model_file_in(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "model.safetensors.index.json")) {
    return (fs::path(dir) / "model.safetensors.index.json").string();
  }
  std::vector<std::string> st, gg;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string p = e.path().string();
    if (ends_with(p, ".safetensors")) st.push_back(p);
    if (ends_with(p, ".gguf")) gg.push_back(p);
  }
  if (ec) fail_io("cannot list directory '" + dir + "': " + ec.message());
  std::sort(st.begin(), st.end());
  if (st.size() == 1 && gg.empty()) return st[0];
  if (gg.size() == 1 && st.empty()) return gg[0];
  if (st.size() > 1) {
    fail_input("directory '" + dir + "' holds " + std::to_string(st.size()) +
               " .safetensors files but no model.safetensors.index.json; name the file to read");
  }
  if (!st.empty() || gg.size() > 1) {
    fail_input("directory '" + dir + "' holds several model files; name the one to read");
  }
  fail_input("directory '" + dir + "' holds no model.safetensors.index.json, .safetensors or .gguf file");
}

// The quantization_config of a compressed-tensors checkpoint whose weights
// are stored compressed and which lowbit can decode, or nothing: from
// config.json beside the weights, else (or when config.json has none) from
// a lone safetensors file's metadata, where lowbit puts it. Everything else
// leaves the tensors as stored: other quant_methods, dense formats, frozen
// (uncompressed) statuses, configs lowbit does not read (formats such as
// int-quantized, actorder "group", unknown fields), and text that is not
// JSON or nests too deeply (checked before parsing, so that no recursive
// copy or destructor of a parsed value can run out of stack). A compressed
// config lowbit cannot decode leaves the reason in `problem`, so that
// quantize can refuse what it would misread.
std::optional<CtQuantizationConfig> compressed_tensors_config(const std::string& directory,
                                                              const std::vector<std::string>& files,
                                                              const SafetensorsFile& first, std::string& where,
                                                              std::string& problem) {
  std::vector<std::pair<std::string, std::string>> candidates;  // (text, where)
  const fs::path cfg = fs::path(directory) / "config.json";
  std::error_code ec;
  // An in-memory checkpoint has no directory (and must not read a
  // config.json from the working directory).
  if (!directory.empty() && fs::exists(cfg, ec)) {
    const std::vector<std::byte> bytes = read_file(cfg.string());
    candidates.emplace_back(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), cfg.string());
  }
  if (files.size() == 1) {
    const auto it = first.metadata().find("quantization_config");
    if (it != first.metadata().end()) candidates.emplace_back(it->second, files[0] + " (metadata quantization_config)");
  }
  for (const auto& [text, w] : candidates) {
    if (!ct_json_depth_ok(text)) continue;
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) continue;
    const auto holder = j.find("quantization_config");
    const nlohmann::json& qc = holder != j.end() ? *holder : j;
    if (!qc.is_object()) continue;
    const auto str = [&](const char* key) {
      const auto it = qc.find(key);
      return it != qc.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (str("quant_method") != "compressed-tensors") continue;
    const auto status = qc.find("quantization_status");
    if (status != qc.end() && !status->is_null() && str("quantization_status") != "compressed") return std::nullopt;
    if (str("format") == "dense") return std::nullopt;
    try {
      where = w;
      return parse_ct_quantization_config(text, w);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kInput) throw;
      problem = e.what();
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool is_weight_part(const std::string& name, const std::string& module) {
  return name.size() > module.size() && name.compare(0, module.size(), module) == 0 &&
         (name.compare(module.size(), std::string::npos, ".weight") == 0 ||
          name.compare(module.size(), 8, ".weight_") == 0);
}

}  // namespace

struct Checkpoint::CtWeight {
  CtFormat format;
  CtArgs args;
  std::string module;
  struct Part {
    std::string suffix;  // "weight_packed", ...
    size_t shard, index;
  };
  std::vector<Part> parts;
};

Checkpoint::Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  c.path_ = path;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) file = model_file_in(path);
  if (!fs::exists(file, ec)) fail_io("cannot open '" + file + "': no such file or directory");
  c.directory_ = fs::path(file).parent_path().string();
  if (c.directory_.empty()) c.directory_ = ".";
  if (ends_with(file, ".gguf")) {
    c.open_gguf(file);
  } else if (ends_with(file, ".json")) {
    c.open_index(file);
  } else if (ends_with(file, ".safetensors")) {
    c.open_safetensors_files({file});
  } else {
    // Sniff: GGUF files start with their magic; anything else is tried as
    // safetensors, whose parser names what is wrong.
    const MappedFile m = MappedFile::open(file);
    if (m.size() >= 4 && std::memcmp(m.data(), "GGUF", 4) == 0) {
      c.open_gguf(file);
    } else {
      c.open_safetensors_files({file});
    }
  }
  if (c.container_ == Container::kSafetensors) c.group_compressed_tensors();
  return c;
}

void Checkpoint::group_compressed_tensors() {
  ct_.clear();
  ct_.resize(tensors_.size());
  std::string where;
  const std::optional<CtQuantizationConfig> parsed = compressed_tensors_config(directory_, files_, *shards_.at(0), where, ct_problem_);
  if (!parsed) return;
  const CtQuantizationConfig& config = *parsed;
  // Sorted: a module's parts ("<module>.weight", "<module>.weight_*") are a
  // run that starts at "<module>.weight".
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < tensors_.size(); ++i) by_name.emplace(tensors_[i].name, i);
  // Each module with a weight_scale that a config group quantizes (matched
  // as vLLM matches a Linear layer) becomes one tensor at its first part.
  std::vector<int64_t> first_of(tensors_.size(), -1);  // -2: a later part
  std::vector<std::unique_ptr<CtWeight>> weights;
  std::vector<CheckpointTensor> logical;
  for (const CheckpointTensor& t : tensors_) {
    if (!ends_with(t.name, ".weight_scale")) continue;
    const std::string module = t.name.substr(0, t.name.size() - 13);
    const CtQuantizationConfig::Group* g = config.find(module, "Linear");
    if (!g) continue;
    auto w = std::make_unique<CtWeight>();
    w->format = g->format;
    w->args = g->args;
    w->module = module;
    CheckpointTensor c;
    c.name = module + ".weight";
    c.dtype = std::string("ct:") + ct_format_name(g->format);
    c.floating = true;
    size_t first = tensors_.size();
    for (auto it = by_name.lower_bound(module + ".weight"); it != by_name.end(); ++it) {
      const auto& [name, i] = *it;
      if (name.compare(0, module.size() + 7, module + ".weight") != 0) break;
      if (!is_weight_part(name, module)) continue;
      if (first_of[i] != -1) {
        fail_input(where + ": tensor '" + name + "' belongs to two compressed modules ('" + module + "' and another)");
      }
      w->parts.push_back({name.substr(module.size() + 1), tensors_[i].shard, tensors_[i].index_in_shard});
      c.nbytes = add_or_fail(c.nbytes, tensors_[i].nbytes, "compressed-tensors weight size");
      first = std::min(first, i);
    }
    const auto part = [&](const char* suffix) -> const CheckpointTensor& {
      const auto it = by_name.find(module + "." + suffix);
      if (it == by_name.end()) {
        fail_input(where + ": module '" + module + "' is stored as " + ct_format_name(g->format) + " but " + module +
                   "." + suffix + " is missing");
      }
      return tensors_[it->second];
    };
    const auto two_d = [&](const CheckpointTensor& p) {
      if (p.shape.size() != 2) fail_input("compressed-tensors tensor '" + p.name + "' is not 2-D");
    };
    switch (g->format) {
      case CtFormat::kPackQuantized: {
        // [out, in] as int64 (int32 in some writers), stored beside the codes.
        const CheckpointTensor& ws = part("weight_shape");
        const std::span<const std::byte> b = raw_bytes(static_cast<size_t>(&ws - tensors_.data()));
        if (ws.numel != 2 || (ws.dtype != "I64" && ws.dtype != "I32")) {
          fail_input("compressed-tensors tensor '" + ws.name + "' must hold 2 integers (I64 or I32), not " +
                     std::to_string(ws.numel) + " " + ws.dtype);
        }
        for (int k = 0; k < 2; ++k) {
          int64_t v = 0;
          if (ws.dtype == "I64") {
            std::memcpy(&v, b.data() + 8 * k, 8);
          } else {
            int32_t v32;
            std::memcpy(&v32, b.data() + 4 * k, 4);
            v = v32;
          }
          if (v <= 0) fail_input("compressed-tensors tensor '" + ws.name + "' holds a dimension " + std::to_string(v));
          c.shape.push_back(static_cast<uint64_t>(v));
        }
        // The codes must hold that shape: a weight_shape alone could claim
        // any size (and a reader would allocate it before decoding).
        const CheckpointTensor& wp = part("weight_packed");
        two_d(wp);
        if (wp.dtype != "I32" || wp.shape[0] != c.shape[0] ||
            wp.shape[1] != ct_packed_words(c.shape[1], g->args.num_bits, "compressed-tensors weight_shape")) {
          fail_input("compressed-tensors tensor '" + wp.name + "' does not hold the [" + std::to_string(c.shape[0]) +
                     ", " + std::to_string(c.shape[1]) + "] " + std::to_string(g->args.num_bits) +
                     "-bit codes its weight_shape gives");
        }
        break;
      }
      case CtFormat::kFloatQuantized:
      case CtFormat::kMxfp8Quantized:
        two_d(part("weight"));
        c.shape = part("weight").shape;
        break;
      case CtFormat::kNvfp4PackQuantized:
      case CtFormat::kMxfp4PackQuantized:
        two_d(part("weight_packed"));
        c.shape = {part("weight_packed").shape[0], mul_or_fail(part("weight_packed").shape[1], 2, "FP4 weight columns")};
        break;
    }
    c.numel = mul_or_fail(c.shape[0], c.shape[1], "compressed-tensors weight element count");
    c.shard = tensors_[first].shard;
    c.index_in_shard = tensors_[first].index_in_shard;
    for (const auto& p : w->parts) first_of[by_name.at(module + "." + p.suffix)] = -2;
    first_of[first] = static_cast<int64_t>(logical.size());
    logical.push_back(std::move(c));
    weights.push_back(std::move(w));
  }
  if (logical.empty()) return;
  // Activation and KV-cache parameters go with the config that declares
  // them, which a requantized or dequantized output replaces (-3: omitted).
  // Without compressed weights the input's config is kept as it is, and so
  // are they.
  const auto activation_parameter = [&](const std::string& name) {
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos) return false;
    const std::string_view leaf = std::string_view(name).substr(dot + 1);
    static constexpr std::string_view kActivation[] = {"input_scale",       "input_zero_point", "input_global_scale",
                                                       "output_scale",      "output_zero_point", "output_global_scale"};
    static constexpr std::string_view kKvCache[] = {"k_scale",      "v_scale",      "q_scale",
                                                    "k_zero_point", "v_zero_point", "q_zero_point"};
    const auto in = [&](const auto& list) { return std::find(std::begin(list), std::end(list), leaf) != std::end(list); };
    return (config.activations && in(kActivation)) || (config.kv_cache && in(kKvCache));
  };
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (first_of[i] == -1 && activation_parameter(tensors_[i].name)) {
      first_of[i] = -3;
      omitted_.push_back(tensors_[i].name);
    }
  }
  std::vector<CheckpointTensor> out;
  std::vector<std::unique_ptr<CtWeight>> ct;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (first_of[i] == -1) {
      out.push_back(std::move(tensors_[i]));
      ct.emplace_back();
    } else if (first_of[i] >= 0) {
      out.push_back(std::move(logical[static_cast<size_t>(first_of[i])]));
      ct.push_back(std::move(weights[static_cast<size_t>(first_of[i])]));
    }
  }
  tensors_ = std::move(out);
  ct_ = std::move(ct);
}

void Checkpoint::open_safetensors_files(const std::vector<std::string>& files) {
  container_ = Container::kSafetensors;
  files_ = files;
  for (size_t s = 0; s < files.size(); ++s) add_shard(std::make_unique<SafetensorsFile>(SafetensorsFile::open(files[s])));
}

void Checkpoint::add_shard(std::unique_ptr<SafetensorsFile> file) {
  const size_t s = shards_.size();
  shards_.push_back(std::move(file));
  const SafetensorsFile& f = *shards_.back();
  total_bytes_ += f.file_size();
  std::unordered_map<std::string, size_t> shard_of;  // the names so far (copies: tensors_ grows below)
  for (const CheckpointTensor& other : tensors_) shard_of.emplace(other.name, other.shard);
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    if (const auto it = shard_of.find(t.name); it != shard_of.end()) {
      fail_input("tensor '" + t.name + "' appears in both '" + files_[it->second] + "' and '" + files_[s] + "'");
    }
    shard_of.emplace(t.name, s);
    CheckpointTensor c;
    c.name = t.name;
    c.shape = t.shape;
    c.dtype = dtype_name(t.dtype);
    c.numel = t.numel;
    c.nbytes = t.nbytes;
    c.floating = is_floating(t.dtype);
    c.shard = s;
    c.index_in_shard = i;
    tensors_.push_back(std::move(c));
  }
}

Checkpoint Checkpoint::from_memory(SafetensorsFile file) {
  Checkpoint c;
  c.container_ = Container::kSafetensors;
  c.path_ = file.path();
  c.files_ = {file.path()};
  // No directory: nothing beside it (config, tokenizer) to find or copy.
  c.add_shard(std::make_unique<SafetensorsFile>(std::move(file)));
  c.group_compressed_tensors();
  return c;
}

void Checkpoint::open_index(const std::string& index_path) {
  const std::vector<std::byte> bytes = read_file(index_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                              reinterpret_cast<const char*>(bytes.data()) + bytes.size());
  } catch (const nlohmann::json::exception& e) {
    fail_input("'" + index_path + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    fail_input("'" + index_path + "' has no \"weight_map\" object mapping tensor names to shard files");
  }
  // Shards in the order they first appear when names are sorted by shard
  // file name (the shards' own numbering), tensors in file order within.
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) fail_input("'" + index_path + "': the shard of '" + name + "' is not a string");
    const std::string f = file.get<std::string>();
    // A shard name is a file beside the index, never a path elsewhere.
    if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..") {
      fail_input("'" + index_path + "': shard '" + f + "' of tensor '" + name + "' is not a file name in the index's directory");
    }
    by_shard[f].push_back(name);
  }
  if (by_shard.empty()) fail_input("'" + index_path + "' maps no tensors");
  const fs::path dir = fs::path(index_path).parent_path();
  std::vector<std::string> files;
  for (const auto& [f, names] : by_shard) files.push_back((dir / f).string());
  open_safetensors_files(files);
  // Every tensor the index names must be in its shard, and every tensor
  // of the shards must be named: a mismatch means a mixed-up checkpoint.
  size_t s = 0;
  for (const auto& [f, names] : by_shard) {
    for (const std::string& n : names) {
      if (shards_[s]->find(n) == nullptr) {
        fail_input("'" + index_path + "' puts tensor '" + n + "' in '" + f + "', which does not hold it");
      }
    }
    if (names.size() != shards_[s]->tensors().size()) {
      for (const TensorInfo& t : shards_[s]->tensors()) {
        if (std::find(names.begin(), names.end(), t.name) == names.end()) {
          fail_input("shard '" + f + "' holds tensor '" + t.name + "', which '" + index_path + "' does not list");
        }
      }
    }
    ++s;
  }
}

void Checkpoint::open_gguf(const std::string& file) {
  container_ = Container::kGguf;
  files_ = {file};
  gguf_ = std::make_unique<GgufFile>(GgufFile::open(file));
  total_bytes_ = gguf_->file_size();
  for (size_t i = 0; i < gguf_->tensors().size(); ++i) {
    const GgufTensorInfo& t = gguf_->tensors()[i];
    CheckpointTensor c;
    c.name = t.name;
    c.shape = t.shape();
    c.dtype = std::string(ggml_type_info(t.type).name);
    c.numel = t.numel;
    c.nbytes = t.nbytes;
    c.floating = ggml_can_dequantize(t.type);
    c.shard = 0;
    c.index_in_shard = i;
    tensors_.push_back(std::move(c));
  }
}

std::span<const std::byte> Checkpoint::raw_bytes(size_t i) const {
  const CheckpointTensor& t = tensors_.at(i);
  if (container_ == Container::kGguf) return gguf_->tensors()[t.index_in_shard].bytes();
  if (is_compressed_weight(i)) return {};
  return shards_[t.shard]->tensors()[t.index_in_shard].bytes();
}

void Checkpoint::release(size_t i) const noexcept {
  if (i >= tensors_.size()) return;
  if (is_compressed_weight(i)) {
    for (const CtWeight::Part& p : ct_[i]->parts) {
      const std::span<const std::byte> raw = shards_[p.shard]->tensors()[p.index].bytes();
      const MappedFile& m = shards_[p.shard]->mapping();
      if (!raw.empty() && m.data()) m.advise_dontneed(static_cast<size_t>(raw.data() - m.data()), raw.size());
    }
    return;
  }
  const CheckpointTensor& t = tensors_[i];
  const MappedFile& m = container_ == Container::kGguf ? gguf_->mapping() : shards_[t.shard]->mapping();
  const std::span<const std::byte> raw = raw_bytes(i);
  if (raw.empty() || !m.data()) return;
  m.advise_dontneed(static_cast<size_t>(raw.data() - m.data()), raw.size());
}

void Checkpoint::read_float32(size_t i, float* out, int threads) const {
  const CheckpointTensor& t = tensors_.at(i);
  if (!t.floating) fail_usage("tensor '" + t.name + "' has dtype " + t.dtype + ", which is not read as float32");
  if (is_compressed_weight(i)) {
    const CtWeight& w = *ct_[i];
    std::map<std::string, CtTensorView> views;
    for (const CtWeight::Part& p : w.parts) {
      const TensorInfo& s = shards_[p.shard]->tensors()[p.index];
      views[p.suffix] = {s.dtype, s.shape, s.bytes()};
    }
    const QuantizedTensor q = decode_compressed_tensors(w.format, w.args, views, w.module);
    if (q.shape != t.shape) fail_input("compressed-tensors weight '" + t.name + "' decodes to another shape than its parts give");
    dequantize(q, out, threads);
    return;
  }
  const std::span<const std::byte> raw = raw_bytes(i);
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.data());
  if (container_ == Container::kGguf) {
    const GgufTensorInfo& g = gguf_->tensors()[t.index_in_shard];
    const uint64_t cols = g.ne.empty() ? 1 : g.ne[0];
    ggml_dequantize_rows(g.type, bytes, cols == 0 ? 0 : t.numel / cols, cols, out, threads);
    return;
  }
  const DType d = shards_[t.shard]->tensors()[t.index_in_shard].dtype;
  if (d == DType::kF32) {
    std::memcpy(out, bytes, t.numel * 4);  // the data may be unaligned
  } else if (d == DType::kF64) {
    for (uint64_t k = 0; k < t.numel; ++k) {
      double v;
      std::memcpy(&v, bytes + 8 * k, 8);
      out[k] = static_cast<float>(v);
    }
  } else {
    ArrayOptions opt;
    opt.threads = threads;
    decode_array(parse_format(widening_format(d)), bytes, out, t.numel, false, opt);
  }
}

uint64_t Checkpoint::count_nonfinite(size_t i, int threads) const {
  const CheckpointTensor& t = tensors_.at(i);
  if (!t.floating || t.numel == 0) return 0;
  const auto count = [](const float* v, uint64_t n) {
    uint64_t bad = 0;
    for (uint64_t k = 0; k < n; ++k) bad += !std::isfinite(v[k]);
    return bad;
  };
  if (is_compressed_weight(i)) {  // several stored tensors: decode it whole
    std::vector<float> all(t.numel);
    read_float32(i, all.data(), threads);
    return count(all.data(), t.numel);
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw_bytes(i).data());
  // Slices of whole rows for the GGUF block types, of elements otherwise.
  uint64_t unit = 1, unit_bytes = 0;
  GgmlType gtype = GgmlType::kF32;
  DType dtype = DType::kF32;
  if (container_ == Container::kGguf) {
    const GgufTensorInfo& g = gguf_->tensors()[t.index_in_shard];
    gtype = g.type;
    unit = g.ne.empty() || g.ne[0] == 0 ? t.numel : g.ne[0];
    unit_bytes = ggml_row_bytes(g.type, unit, t.name);
  } else {
    dtype = shards_[t.shard]->tensors()[t.index_in_shard].dtype;
    unit_bytes = t.nbytes / t.numel;
  }
  const uint64_t per_slice = std::max<uint64_t>(1, (uint64_t{1} << 20) / unit);
  std::vector<float> buf(std::min<uint64_t>(t.numel, per_slice * unit));
  uint64_t bad = 0;
  for (uint64_t u = 0; u < t.numel / unit; u += per_slice) {
    const uint64_t units = std::min(per_slice, t.numel / unit - u), n = units * unit;
    const uint8_t* src = bytes + u * unit_bytes;
    if (container_ == Container::kGguf) {
      ggml_dequantize_rows(gtype, src, units, unit, buf.data(), threads);
    } else if (dtype == DType::kF32) {
      std::memcpy(buf.data(), src, n * 4);  // the data may be unaligned
    } else if (dtype == DType::kF64) {
      for (uint64_t k = 0; k < n; ++k) {
        double v;
        std::memcpy(&v, src + 8 * k, 8);
        bad += !std::isfinite(v);
      }
      continue;
    } else {
      ArrayOptions opt;
      opt.threads = threads;
      decode_array(parse_format(widening_format(dtype)), src, buf.data(), n, false, opt);
    }
    bad += count(buf.data(), n);
  }
  return bad;
}

bool Checkpoint::has_compressed_weights() const noexcept {
  return std::any_of(ct_.begin(), ct_.end(), [](const auto& w) { return w != nullptr; });
}

const SafetensorsFile* Checkpoint::safetensors_shard(size_t shard) const {
  return shard < shards_.size() ? shards_[shard].get() : nullptr;
}

const GgufFile* Checkpoint::gguf() const { return gguf_.get(); }

}  // namespace lowbit

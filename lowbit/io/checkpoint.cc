#include "lowbit/io/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/format/registry.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/ggml_codec.h"

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

}  // namespace

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
  return c;
}

void Checkpoint::open_safetensors_files(const std::vector<std::string>& files) {
  container_ = Container::kSafetensors;
  files_ = files;
  std::unordered_map<std::string, size_t> seen;
  for (size_t s = 0; s < files.size(); ++s) {
    shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(files[s])));
    const SafetensorsFile& f = *shards_.back();
    total_bytes_ += f.file_size();
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const TensorInfo& t = f.tensors()[i];
      if (const auto it = seen.find(t.name); it != seen.end()) {
        fail_input("tensor '" + t.name + "' appears in both '" + files[it->second] + "' and '" + files[s] + "'");
      }
      seen.emplace(t.name, s);
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
  return shards_[t.shard]->tensors()[t.index_in_shard].bytes();
}

void Checkpoint::release(size_t i) const noexcept {
  if (i >= tensors_.size()) return;
  const CheckpointTensor& t = tensors_[i];
  const MappedFile& m = container_ == Container::kGguf ? gguf_->mapping() : shards_[t.shard]->mapping();
  const std::span<const std::byte> raw = raw_bytes(i);
  if (raw.empty() || !m.data()) return;
  m.advise_dontneed(static_cast<size_t>(raw.data() - m.data()), raw.size());
}

void Checkpoint::read_float32(size_t i, float* out, int threads) const {
  const CheckpointTensor& t = tensors_.at(i);
  if (!t.floating) fail_usage("tensor '" + t.name + "' has dtype " + t.dtype + ", which is not read as float32");
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

const SafetensorsFile* Checkpoint::safetensors_shard(size_t shard) const {
  return shard < shards_.size() ? shards_[shard].get() : nullptr;
}

const GgufFile* Checkpoint::gguf() const { return gguf_.get(); }

}  // namespace lowbit

// A model checkpoint, whatever its container: one safetensors file, a
// sharded safetensors checkpoint (model.safetensors.index.json and its
// shards), or a GGUF file. A compressed-tensors checkpoint (vLLM's format,
// lowbit's own safetensors output: a quantization_config in config.json or
// in a lone file's metadata) lists each quantized weight once, as
// "<module>.weight" with dtype "ct:<format>", in place of the tensors that
// store it (weight_packed, weight_scale, ...), and reads it dequantized. The quantize and inspect commands see one list of
// tensors and read any of them as float32, one at a time, straight from the
// memory maps: nothing is loaded until it is asked for, so a whole-model
// pass holds one tensor at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

class SafetensorsFile;
class GgufFile;

enum class Container { kSafetensors, kGguf };

struct CheckpointTensor {
  std::string name;
  std::vector<uint64_t> shape;  // row-major, last axis fastest (numpy order)
  std::string dtype;            // "F32", "BF16", "F8_E4M3", "Q4_1"...
  uint64_t numel = 0;
  uint64_t nbytes = 0;
  bool floating = false;        // read_float32 can convert it
  size_t shard = 0;             // index into the shard files
  size_t index_in_shard = 0;    // position in that file's tensor list
};

class Checkpoint {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, a .gguf
  // file, or a directory holding exactly one of: an index, a single
  // .safetensors file, a single .gguf file. Throws kInput naming the
  // problem (missing shard, tensor in two shards, index naming a tensor its
  // shard lacks, ...) or kIo when a file cannot be read.
  static Checkpoint open(const std::string& path);
  // A checkpoint held in memory (one safetensors file, no directory beside
  // it): for tests and for programs that build models themselves. Its
  // compressed-tensors config, if any, comes from the file's metadata.
  static Checkpoint from_memory(SafetensorsFile file);

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  Container container() const noexcept { return container_; }
  // The path as given, and the directory that holds the model files (for
  // config.json, tokenizer files and other companions).
  const std::string& path() const noexcept { return path_; }
  const std::string& directory() const noexcept { return directory_; }
  // The files the tensors live in, in shard order.
  const std::vector<std::string>& files() const noexcept { return files_; }
  uint64_t total_bytes() const noexcept { return total_bytes_; }

  const std::vector<CheckpointTensor>& tensors() const noexcept { return tensors_; }
  // Whether tensor i is a compressed-tensors weight (read dequantized).
  bool is_compressed_weight(size_t i) const noexcept { return i < ct_.size() && ct_[i] != nullptr; }
  // Whether any tensor is.
  bool has_compressed_weights() const noexcept;
  // The stored tensors of a compressed-tensors input that tensors() leaves
  // out: its activation and KV-cache quantization parameters (input_scale,
  // input_global_scale, output_scale, k_scale, v_scale, their zero points),
  // which its config declares and lowbit's output, quantizing weights only,
  // does not. Carried over, vLLM would meet parameters its model lacks.
  const std::vector<std::string>& omitted_activation_tensors() const noexcept { return omitted_; }
  // Why the checkpoint's compressed-tensors config (quant_method
  // "compressed-tensors", weights stored compressed) cannot be decoded, its
  // tensors then being listed as stored; empty when there is none or it was
  // decoded. Reading the stored tensors is fine (inspect); quantizing them
  // as if they were the model's weights is not (quantize_model refuses).
  const std::string& undecodable_compressed_tensors() const noexcept { return ct_problem_; }

  // The stored bytes of tensor i, inside the memory map; empty for a
  // compressed-tensors weight, whose bytes are several tensors.
  std::span<const std::byte> raw_bytes(size_t i) const;
  // Tensor i as float32 (exact widening for F16/BF16/FP8, rounding to
  // nearest even for F64, dequantization for GGUF block types and
  // compressed-tensors weights); out holds numel floats. kUsage for a
  // non-floating tensor, kInput for a malformed compressed weight.
  void read_float32(size_t i, float* out, int threads = 0) const;
  // The NaN and infinite values of tensor i, counted a slice at a time
  // (about 2^20 elements), so that checking a large kept tensor costs no
  // float32 copy of it. 0 for a tensor that is not floating.
  uint64_t count_nonfinite(size_t i, int threads = 0) const;
  // Done with tensor i: its pages leave the process's resident memory
  // (MappedFile::advise_dontneed). Reading it again still works.
  void release(size_t i) const noexcept;

  // The parsed files behind the checkpoint (nullptr for the other kind).
  const SafetensorsFile* safetensors_shard(size_t shard) const;
  const GgufFile* gguf() const;

 private:
  Checkpoint();
  void open_safetensors_files(const std::vector<std::string>& files);
  void add_shard(std::unique_ptr<SafetensorsFile> file);
  void open_index(const std::string& index_path);
  void open_gguf(const std::string& file);
  void group_compressed_tensors();

  // A compressed-tensors weight: how to decode it, and its stored tensors.
  struct CtWeight;

  Container container_ = Container::kSafetensors;
  std::string path_, directory_;
  std::vector<std::string> files_;
  uint64_t total_bytes_ = 0;
  std::vector<CheckpointTensor> tensors_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::unique_ptr<CtWeight>> ct_;  // per tensor; null for a stored one
  std::vector<std::string> omitted_;
  std::string ct_problem_;
};

}  // namespace lowbit

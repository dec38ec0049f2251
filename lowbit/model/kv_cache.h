// The key/value cache of a decoder: for each layer, the keys and values
// (after RoPE, for keys) of every position seen so far, so that decoding
// one more token attends to them without recomputing them.
//
// Layout: per layer, keys [capacity, kv_dim] and values [capacity, kv_dim],
// row p holding position p, contiguous (the row stride is kv_dim) so that
// attention reads them as they are. The model writes the rows of the
// tokens it is running at size() .. size()+n-1 in every layer and then
// calls advance(n) once. The cache holds float32; it is one of the points
// where later issues put a format (KV-cache quantization).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

class KvCache {
 public:
  KvCache() = default;
  // ErrorKind::kUsage for a non-positive capacity or shape; the buffers
  // are allocated at once (2 * layers * capacity * kv_dim floats).
  KvCache(int64_t layers, int64_t capacity, int64_t kv_dim);

  int64_t layers() const noexcept { return layers_; }
  int64_t capacity() const noexcept { return capacity_; }
  int64_t kv_dim() const noexcept { return kv_dim_; }
  // Positions held.
  int64_t size() const noexcept { return size_; }

  float* keys(int64_t layer) noexcept { return keys_.data() + layer * capacity_ * kv_dim_; }
  float* values(int64_t layer) noexcept { return values_.data() + layer * capacity_ * kv_dim_; }
  const float* keys(int64_t layer) const noexcept { return keys_.data() + layer * capacity_ * kv_dim_; }
  const float* values(int64_t layer) const noexcept { return values_.data() + layer * capacity_ * kv_dim_; }

  // ErrorKind::kInput when n more positions do not fit: the context is full.
  void check_room(int64_t n) const;
  // The n rows after size() are written in every layer: they count now.
  void advance(int64_t n);
  // Forgets every position (the buffers stay allocated).
  void clear() noexcept { size_ = 0; }

 private:
  int64_t layers_ = 0, capacity_ = 0, kv_dim_ = 0, size_ = 0;
  std::vector<float> keys_, values_;
};

}  // namespace lowbit

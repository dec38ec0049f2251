// The key/value cache of a decoder: for each layer, the keys and values
// (after RoPE, for keys) of every position seen so far, so that decoding
// one more token attends to them without recomputing them.
//
// Two storages:
//   float32    per layer, keys [capacity, kv_dim] and values [capacity,
//              kv_dim], row p holding position p; attention reads them as
//              they are.
//   quantized  (kv_quant.h) per layer, the positions before the float
//              window as packed QuantizedTensors (codes and scales at their
//              exact widths: stored_bytes() counts them), the window's rows
//              in float32. Attention reads float32 rows, so a forward
//              dequantizes a layer's positions into one scratch matrix
//              shared by all layers (rows(l)), which the memory of the
//              cache does not grow with.
//
// A forward over n new tokens, for each layer l:
//   KvRows r = cache.rows(l, threads);   // rows [0, size()) as attention sees them
//   ... write the n new rows at size() .. size()+n-1 of r.keys, r.values ...
//   cache.store(l, n, threads);          // keep them; rows of r now hold what attention must see
//   ... attention over rows [0, size()+n) ...
// then advance(n) once. A quantized cache packs the rows that leave the
// window in store(), and the attention of the same forward already sees
// them quantized.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "lowbit/model/kv_quant.h"
#include "lowbit/quant/quantized_tensor.h"

namespace lowbit {

struct KvRows {
  float* keys = nullptr;    // [capacity, kv_dim]
  float* values = nullptr;  // [capacity, kv_dim]
};

class KvCache {
 public:
  KvCache() = default;
  // ErrorKind::kUsage for a non-positive capacity or shape, or a `quant`
  // whose groups do not fit kv_dim; float32 buffers are allocated at once
  // (2 * layers * capacity * kv_dim floats; a quantized cache allocates
  // 2 * capacity * kv_dim floats of scratch).
  KvCache(int64_t layers, int64_t capacity, int64_t kv_dim, std::optional<KvQuant> quant = std::nullopt);

  int64_t layers() const noexcept { return layers_; }
  int64_t capacity() const noexcept { return capacity_; }
  int64_t kv_dim() const noexcept { return kv_dim_; }
  // Positions held.
  int64_t size() const noexcept { return size_; }
  const std::optional<KvQuant>& quant() const noexcept { return quant_; }

  // See the header comment. rows() of a float32 cache are its own buffers.
  KvRows rows(int64_t layer, int threads);
  void store(int64_t layer, int64_t n, int threads);

  // The float32 buffers of a float32 cache (kInternal for a quantized one).
  float* keys(int64_t layer);
  float* values(int64_t layer);

  // Bytes the cache holds for its size() positions: packed codes, scales
  // and zero points at their exact widths plus 4 bytes per float32 value
  // (every value of a float32 cache).
  double stored_bytes() const;
  // stored_bytes() / size() (0 when empty): the KV bytes per token.
  double bytes_per_token() const;

  // ErrorKind::kInput when n more positions do not fit: the context is full.
  void check_room(int64_t n) const;
  // The n rows after size() are stored in every layer: they count now.
  void advance(int64_t n);
  // Forgets every position (float32 buffers stay allocated).
  void clear() noexcept;
  // Undoes the store() calls since the last advance(): a forward that fails
  // halfway leaves the cache as it found it.
  void rollback() noexcept;

 private:
  struct Chunk {
    int64_t begin = 0, rows = 0;  // positions
    QuantizedTensor q;
  };
  struct Side {
    std::vector<Chunk> chunks;  // positions [0, packed) in order
    int64_t packed = 0;
    std::vector<float> tail;    // float32 rows [packed, size() + n)
    // As of the last advance(), for rollback().
    size_t committed_chunks = 0;
    int64_t committed_packed = 0;
    std::vector<float> committed_tail;
  };
  struct Layer {
    Side k, v;
    std::vector<int32_t> order;  // reorder: channel order of the keys (empty until the first pack)
    bool committed_order = false;
  };
  void pack_side(Layer& layer, Side& side, const KvSide& spec, bool keys, float* rows, int64_t end, int threads);

  int64_t layers_ = 0, capacity_ = 0, kv_dim_ = 0, size_ = 0;
  std::optional<KvQuant> quant_;
  std::vector<float> keys_, values_;  // float32: all layers; quantized: the scratch of one
  std::vector<Layer> state_;          // quantized only
};

}  // namespace lowbit

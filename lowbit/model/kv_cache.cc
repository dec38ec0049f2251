#include "lowbit/model/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

KvCache::KvCache(int64_t layers, int64_t capacity, int64_t kv_dim, std::optional<KvQuant> quant)
    : layers_(layers), capacity_(capacity), kv_dim_(kv_dim), quant_(std::move(quant)) {
  if (layers <= 0 || capacity <= 0 || kv_dim <= 0) {
    fail_usage(fmt::format("a KV cache of {} layers, {} positions and {} values per position is not defined", layers,
                           capacity, kv_dim));
  }
  if (quant_) quant_->check_width(kv_dim);
  const uint64_t rows = quant_ ? static_cast<uint64_t>(capacity)
                               : mul_or_fail(static_cast<uint64_t>(layers), static_cast<uint64_t>(capacity),
                                             "the KV cache size");
  const uint64_t count = mul_or_fail(rows, static_cast<uint64_t>(kv_dim), "the KV cache size");
  keys_.assign(static_cast<size_t>(count), 0.0f);
  values_.assign(static_cast<size_t>(count), 0.0f);
  if (quant_) state_.resize(static_cast<size_t>(layers));
}

float* KvCache::keys(int64_t layer) {
  if (quant_) fail_internal("the float32 keys of a quantized KV cache");
  return keys_.data() + layer * capacity_ * kv_dim_;
}

float* KvCache::values(int64_t layer) {
  if (quant_) fail_internal("the float32 values of a quantized KV cache");
  return values_.data() + layer * capacity_ * kv_dim_;
}

KvRows KvCache::rows(int64_t layer, int threads) {
  if (!quant_) return {keys(layer), values(layer)};
  Layer& L = state_[static_cast<size_t>(layer)];
  const auto unpack = [&](Side& side, float* out, bool keys) {
    std::vector<float> permuted;
    for (const Chunk& c : side.chunks) {
      float* dst = out + c.begin * kv_dim_;
      if (keys && !L.order.empty()) {
        permuted.resize(static_cast<size_t>(c.rows * kv_dim_));
        dequantize(c.q, permuted.data(), threads);
        for (int64_t r = 0; r < c.rows; ++r) {
          for (int64_t j = 0; j < kv_dim_; ++j) dst[r * kv_dim_ + L.order[static_cast<size_t>(j)]] = permuted[r * kv_dim_ + j];
        }
      } else {
        dequantize(c.q, dst, threads);
      }
    }
    std::copy(side.tail.begin(), side.tail.end(), out + side.packed * kv_dim_);
  };
  unpack(L.k, keys_.data(), true);
  unpack(L.v, values_.data(), false);
  return {keys_.data(), values_.data()};
}

void KvCache::pack_side(Layer& L, Side& side, const KvSide& spec, bool keys, float* rows, int64_t end, int threads) {
  // Positions that leave the float window now; per-channel sides pack
  // whole groups only.
  int64_t target = std::max<int64_t>(side.packed, end - quant_->window);
  if (spec.per_channel()) target = std::max(side.packed, target / spec.group * spec.group);
  const bool reorder = keys && quant_->reorder;
  QuantizeOptions opt;
  opt.threads = threads;
  std::vector<float> permuted;
  while (side.packed < target) {
    const int64_t begin = side.packed;
    const int64_t count = spec.per_channel() ? spec.group : target - begin;
    float* x = rows + begin * kv_dim_;
    const float* src = x;
    if (reorder) {
      if (L.order.empty()) {
        // The outlier channels of these first rows share blocks from now on:
        // channels sorted by their largest |k|, largest first.
        std::vector<float> amax(static_cast<size_t>(kv_dim_), 0.0f);
        for (int64_t r = 0; r < count; ++r) {
          for (int64_t j = 0; j < kv_dim_; ++j) amax[static_cast<size_t>(j)] = std::max(amax[static_cast<size_t>(j)], std::fabs(x[r * kv_dim_ + j]));
        }
        L.order.resize(static_cast<size_t>(kv_dim_));
        std::iota(L.order.begin(), L.order.end(), 0);
        std::stable_sort(L.order.begin(), L.order.end(),
                         [&](int32_t a, int32_t b) { return amax[static_cast<size_t>(a)] > amax[static_cast<size_t>(b)]; });
      }
      permuted.resize(static_cast<size_t>(count * kv_dim_));
      for (int64_t r = 0; r < count; ++r) {
        for (int64_t j = 0; j < kv_dim_; ++j) permuted[r * kv_dim_ + j] = x[r * kv_dim_ + L.order[static_cast<size_t>(j)]];
      }
      src = permuted.data();
    }
    Chunk c;
    c.begin = begin;
    c.rows = count;
    c.q = quantize(TensorView(src, {static_cast<uint64_t>(count), static_cast<uint64_t>(kv_dim_)}), spec.scheme, opt);
    // The rows attention reads are the stored ones from now on.
    if (reorder) {
      dequantize(c.q, permuted.data(), threads);
      for (int64_t r = 0; r < count; ++r) {
        for (int64_t j = 0; j < kv_dim_; ++j) x[r * kv_dim_ + L.order[static_cast<size_t>(j)]] = permuted[r * kv_dim_ + j];
      }
    } else {
      dequantize(c.q, x, threads);
    }
    side.chunks.push_back(std::move(c));
    side.packed = begin + count;
  }
  side.tail.assign(rows + side.packed * kv_dim_, rows + end * kv_dim_);
}

void KvCache::store(int64_t layer, int64_t n, int threads) {
  if (!quant_) return;
  Layer& L = state_[static_cast<size_t>(layer)];
  const int64_t end = size_ + n;
  pack_side(L, L.k, quant_->key, true, keys_.data(), end, threads);
  pack_side(L, L.v, quant_->value, false, values_.data(), end, threads);
}

double KvCache::stored_bytes() const {
  if (!quant_) return 2.0 * 4.0 * static_cast<double>(layers_ * size_ * kv_dim_);
  double bits = 0;
  for (const Layer& L : state_) {
    for (const Side* s : {&L.k, &L.v}) {
      for (const Chunk& c : s->chunks) bits += static_cast<double>(c.q.bits().total());
      // Only the rows of counted positions (a forward's rows count after advance).
      bits += 32.0 * static_cast<double>(std::max<int64_t>(0, size_ - s->packed) * kv_dim_);
    }
  }
  return bits / 8.0;
}

double KvCache::bytes_per_token() const { return size_ > 0 ? stored_bytes() / static_cast<double>(size_) : 0.0; }

void KvCache::check_room(int64_t n) const {
  if (n < 0 || n > capacity_ - size_) {
    fail_input(fmt::format("the context is full: {} positions held, {} more asked, room for {}", size_, n,
                           capacity_));
  }
}

void KvCache::advance(int64_t n) {
  check_room(n);
  size_ += n;
  for (Layer& L : state_) {
    for (Side* s : {&L.k, &L.v}) {
      // Only the rows of counted positions belong to the tail now.
      s->tail.resize(static_cast<size_t>(std::max<int64_t>(0, size_ - s->packed) * kv_dim_));
      s->committed_chunks = s->chunks.size();
      s->committed_packed = s->packed;
      s->committed_tail = s->tail;
    }
    L.committed_order = !L.order.empty();
  }
}

void KvCache::rollback() noexcept {
  for (Layer& L : state_) {
    for (Side* s : {&L.k, &L.v}) {
      s->chunks.resize(s->committed_chunks);
      s->packed = s->committed_packed;
      s->tail = s->committed_tail;
    }
    if (!L.committed_order) L.order.clear();
  }
}

void KvCache::clear() noexcept {
  size_ = 0;
  for (Layer& L : state_) L = Layer{};
}

}  // namespace lowbit

#include "lowbit/model/kv_cache.h"

#include <fmt/format.h>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"

namespace lowbit {

KvCache::KvCache(int64_t layers, int64_t capacity, int64_t kv_dim)
    : layers_(layers), capacity_(capacity), kv_dim_(kv_dim) {
  if (layers <= 0 || capacity <= 0 || kv_dim <= 0) {
    fail_usage(fmt::format("a KV cache of {} layers, {} positions and {} values per position is not defined", layers,
                           capacity, kv_dim));
  }
  const uint64_t count = mul_or_fail(
      mul_or_fail(static_cast<uint64_t>(layers), static_cast<uint64_t>(capacity), "the KV cache size"),
      static_cast<uint64_t>(kv_dim), "the KV cache size");
  keys_.assign(static_cast<size_t>(count), 0.0f);
  values_.assign(static_cast<size_t>(count), 0.0f);
}

void KvCache::check_room(int64_t n) const {
  if (n < 0 || n > capacity_ - size_) {
    fail_input(fmt::format("the context is full: {} positions held, {} more asked, room for {}", size_, n,
                           capacity_));
  }
}

void KvCache::advance(int64_t n) {
  check_room(n);
  size_ += n;
}

}  // namespace lowbit

// How a KV cache stores its keys and values: float32, or packed codes of a
// scheme of the format engine (kv_cache.h holds them).
//
// Each side (keys, values) has a scheme and an axis:
//   per token    a position's row is quantized on its own: the scheme's
//                scales run along the row (/channel: one per row, /gN, MX
//                or NVFP4 blocks). A row's codes never depend on its
//                neighbours, so how a text is split into calls does not
//                change them.
//   per channel  KIVI's keys: `group` positions at a time, one scale (and
//                zero) per channel over those positions (the scheme is
//                applied to the [group, kv_dim] chunk with /channel:1).
//                Positions wait in float32 until their group is full.
// The `window` most recent positions stay in float32 (KIVI's residual).
// `reorder` (keys): block floating point with the outlier channels
// gathered into shared blocks, after "Accurate Block Quantization in LLMs
// with Outliers": the channels of a layer are sorted by their largest |k|
// over the first positions the layer quantizes, and that order is kept.
//
// Spec strings (docs/runtime.md):
//   none | int8 | fp8 | kivi4 | kivi2 | bfp8 | bfp4      presets
//   k=<scheme>[@<group>],v=<scheme>[,window=<n>][,reorder]
// "@<group>" makes the key side per channel over groups of that many
// positions; without it a side is per token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lowbit/quant/scheme.h"

namespace lowbit {

struct KvSide {
  Scheme scheme;
  int64_t group = 0;  // > 0: per channel over groups of this many positions
  bool per_channel() const noexcept { return group > 0; }
};

struct KvQuant {
  KvSide key, value;
  int64_t window = 0;
  bool reorder = false;

  // nullopt for "none" (float32). kUsage naming the fault for anything the
  // cache cannot store: a per-tensor scale (it would change as positions
  // arrive), outliers, 2-D blocks, a per-channel value side, a group that
  // is not positive.
  static std::optional<KvQuant> parse(const std::string& spec);
  std::string spec() const;
  // Per-token key/value rows of kv_dim values: kUsage when a group or block
  // does not divide kv_dim.
  void check_width(int64_t kv_dim) const;
};

}  // namespace lowbit

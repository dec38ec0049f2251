#include "lowbit/model/kv_quant.h"

#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "lowbit/core/error.h"

namespace lowbit {

namespace {

struct KvPreset {
  const char* name;
  const char* expansion;
};

// KIVI: keys per channel over groups of 32 positions, values per token in
// groups of 32, both asymmetric, the last 32 positions in float32 (the
// paper's group and residual sizes for its 2-bit results).
constexpr KvPreset kPresets[] = {
    {"int8", "k=int8/channel,v=int8/channel"},
    {"fp8", "k=e4m3fn/channel,v=e4m3fn/channel"},
    {"kivi4", "k=int4/channel:1/asym@32,v=int4/g32/asym,window=32"},
    {"kivi2", "k=int2/channel:1/asym@32,v=int2/g32/asym,window=32"},
    {"bfp8", "k=mxint8,v=mxint8,reorder"},
    {"bfp4", "k=mxint4,v=mxint4,reorder"},
};

[[noreturn]] void fail_kv(const std::string& spec, const std::string& why) {
  fail_usage(fmt::format("invalid KV cache spec '{}': {}. Use none, int8, fp8, kivi4, kivi2, bfp8, bfp4, or "
                         "k=<scheme>[@<group>],v=<scheme>[,window=<n>][,reorder]",
                         spec, why));
}

KvSide parse_side(const std::string& spec, std::string_view text, bool key) {
  KvSide side;
  std::string scheme(text);
  if (const size_t at = scheme.find('@'); at != std::string::npos) {
    if (!key) fail_kv(spec, "values are stored per token (KIVI); '@<group>' is for keys");
    const std::string g = scheme.substr(at + 1);
    scheme.resize(at);
    try {
      size_t used = 0;
      side.group = std::stoll(g, &used);
      if (used != g.size()) side.group = 0;
    } catch (const std::exception&) {
      side.group = 0;
    }
    if (side.group <= 0) fail_kv(spec, fmt::format("'@{}' is not a positive number of positions", g));
  }
  side.scheme = parse_scheme(scheme);
  const Granularity& gr = side.scheme.gran;
  const char* what = key ? "keys" : "values";
  if (side.scheme.outliers.kind != OutlierPolicy::Kind::kNone) {
    fail_kv(spec, fmt::format("the {} scheme has outliers, which the cache does not store", what));
  }
  if (side.per_channel()) {
    if (gr.kind != Granularity::Kind::kChannel || gr.axis != 1) {
      fail_kv(spec, fmt::format("per-channel keys take /channel:1 (one scale per channel over the group), not {}",
                                gr.to_string()));
    }
  } else if (gr.kind == Granularity::Kind::kTensor || gr.kind == Granularity::Kind::kBlock2D ||
             (gr.kind == Granularity::Kind::kChannel && gr.axis != 0)) {
    fail_kv(spec, fmt::format("{} per token need scales along a row (/channel, /gN, MX or NVFP4 blocks); {} would "
                              "change as positions arrive",
                              what, gr.to_string()));
  }
  if (side.scheme.two_level()) {
    fail_kv(spec, fmt::format("the {} scheme has a per-tensor second-level scale, which would change as positions "
                              "arrive",
                              what));
  }
  return side;
}

}  // namespace

std::optional<KvQuant> KvQuant::parse(const std::string& spec_in) {
  if (spec_in == "none" || spec_in.empty()) return std::nullopt;
  std::string spec = spec_in;
  for (const KvPreset& p : kPresets) {
    if (spec == p.name) spec = p.expansion;
  }
  KvQuant q;
  bool have_k = false, have_v = false;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = spec.find(',', pos);
    const std::string part = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (part.starts_with("k=")) {
      q.key = parse_side(spec_in, std::string_view(part).substr(2), true);
      have_k = true;
    } else if (part.starts_with("v=")) {
      q.value = parse_side(spec_in, std::string_view(part).substr(2), false);
      have_v = true;
    } else if (part.starts_with("window=")) {
      const std::string w = part.substr(7);
      try {
        size_t used = 0;
        q.window = std::stoll(w, &used);
        if (used != w.size()) q.window = -1;
      } catch (const std::exception&) {
        q.window = -1;
      }
      if (q.window < 0) fail_kv(spec_in, fmt::format("window '{}' is not a number of positions", w));
    } else if (part == "reorder") {
      q.reorder = true;
    } else {
      fail_kv(spec_in, fmt::format("'{}' is not k=, v=, window= or reorder", part));
    }
  }
  if (!have_k || !have_v) fail_kv(spec_in, "both k= and v= are needed");
  if (q.reorder && q.key.per_channel()) fail_kv(spec_in, "reorder gathers channels of per-token keys");
  return q;
}

std::string KvQuant::spec() const {
  std::string s = "k=" + key.scheme.spec();
  if (key.per_channel()) s += fmt::format("@{}", key.group);
  s += ",v=" + value.scheme.spec();
  if (window > 0) s += fmt::format(",window={}", window);
  if (reorder) s += ",reorder";
  return s;
}

void KvQuant::check_width(int64_t kv_dim) const {
  for (const KvSide* side : {&key, &value}) {
    const Granularity& g = side->scheme.gran;
    if (g.kind == Granularity::Kind::kGroup && kv_dim % static_cast<int64_t>(g.group) != 0) {
      fail_usage(fmt::format("KV cache spec '{}': groups of {} do not divide the model's {} key/value channels",
                             spec(), g.group, kv_dim));
    }
  }
}

}  // namespace lowbit

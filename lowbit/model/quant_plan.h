// QuantPlan: which format applies at which runtime point of a model, the
// activation side of "any format at any tensor" (weights are quantized
// before the model runs; see lowbit study model and quantize).
//
// Points, by name:
//   <linear>          the input of a Linear, named as the Linear is
//                     ("blk.3.attn_q", "model.layers.3.mlp.down_proj");
//                     the LM head is "output" / "lm_head"
//   blk.<i>.attn.q    the query rows entering Q·Kᵀ (after RoPE)
//   blk.<i>.attn.k    the key rows entering Q·Kᵀ (as the cache holds them)
//   blk.<i>.attn.p    the softmax output entering P·V, per head and row
//   blk.<i>.attn.v    the value rows entering P·V
// and the KV cache of the whole model (kv_quant.h).
//
// A plan is written as rules (JSON, docs/runtime.md):
//   {
//     "inputs":    [{"match": "ffn_down", "scheme": "none"},
//                   {"match": "^blk\\.", "scheme": "int8/tensor", "static": true}],
//     "attention": [{"match": "\\.p$", "scheme": "e4m3fn/channel"}],
//     "kv": "kivi2"
//   }
// "match" is an ECMAScript regular expression searched in the point name,
// the first matching rule of its list wins, "none" leaves a point as it is,
// a point no rule matches stays unquantized. "static": true takes a
// per-tensor scale from calibration (the largest |x| that `lowbit
// calibrate` recorded for that Linear); "static": "percentile:99.99",
// "mse" or "kl" choose it from the recorded histogram of |x| by that rule
// (lowbit/calib/static_scale.h). A rule that matches no point of the model
// is an error, so a typo cannot silently leave a model in full precision.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/act_quant.h"
#include "lowbit/model/kv_quant.h"

namespace lowbit {

class Linear;

struct PlanRule {
  std::string match;
  std::string scheme;       // "none" or a scheme spec
  std::string static_rule;  // empty: dynamic; else absmax, percentile:<p>, mse or kl
};

struct PlanRules {
  std::vector<PlanRule> inputs, attention;
  std::string kv = "none";
  // The file also held a quantize recipe's weight keys (in_recipe).
  bool has_weight_keys = false;

  // Parses the JSON form; kUsage naming the key or rule at fault (unknown
  // keys are errors). A plan may be part of a quantize recipe (docs/
  // recipes.md): with `in_recipe`, the recipe's own keys (default_scheme,
  // method, importance, rules) are allowed and left to Recipe.
  static PlanRules parse(std::string_view json_text, const std::string& name_for_errors, bool in_recipe = false);
  // Whether a JSON key belongs to a plan: inputs, attention or kv.
  static bool is_plan_key(std::string_view key);
  // The command line's shorthand: every block's Linear inputs (Llama
  // decoder blocks, BERT encoder layers) take `acts` ("none", a scheme, or
  // "<scheme>@static"), the KV cache `kv`. The LM head's input stays
  // unquantized, as its weight does.
  // `attn` ("none" or a scheme) quantizes every attention point (Q, K, P
  // and V of every block).
  static PlanRules shorthand(const std::string& acts, const std::string& kv, const std::string& attn = "none");
  bool empty() const { return inputs.empty() && attention.empty() && (kv.empty() || kv == "none"); }
};

class QuantPlan {
 public:
  // The amax of a static scale for a Linear's input (by the Linear's name)
  // by `rule` (absmax, percentile:<p>, mse, kl) for `scheme`, from
  // calibration: nullopt when the calibration has no entry. It checks that
  // the entry is for a Linear of `in_features` columns and throws for a
  // rule it does not know.
  using StaticAmax = std::function<std::optional<float>(const std::string& linear, int64_t in_features,
                                                        const Scheme& scheme, const std::string& rule)>;

  // Resolves the rules against a model's points. `linears` are the
  // model's Linears, `layers` its blocks (attention points), `kv_dim` the
  // width of its cache rows. kUsage, before any work, for a rule matching
  // no point, a bad scheme, a static rule without calibration or for a
  // Linear the calibration does not know, a KV spec the cache cannot hold.
  static QuantPlan resolve(const PlanRules& rules, const std::vector<const Linear*>& linears, int64_t layers,
                           int64_t kv_dim, const StaticAmax& static_amax);

  // The quantizer of a point, or null when it stays as it is. Linears
  // whose inputs have the same setting get the same index (a shared input
  // is then quantized once); -1 for none.
  const ActQuant* input(const Linear& linear) const;
  int input_index(const Linear& linear) const;
  // The inputs of up to 3 Linears that share the input x [rows, cols]: x
  // itself where a Linear's input stays as it is, else x quantized (once
  // per distinct setting, into `scratch`). `segments`, when not empty, are
  // row offsets (segments[i] .. segments[i+1]) quantized independently, so
  // that a sentence of a BERT batch does not depend on its batch-mates;
  // empty means one segment of all rows.
  using InputScratch = std::array<std::vector<float>, 3>;
  std::array<const float*, 3> inputs(std::initializer_list<const Linear*> linears, const float* x, int64_t rows,
                                     std::span<const int64_t> segments, InputScratch& scratch, int threads) const;

  enum class AttentionPoint : uint8_t { kQ = 0, kK = 1, kP = 2, kV = 3 };
  const ActQuant* attention(int64_t layer, AttentionPoint p) const;
  const std::optional<KvQuant>& kv() const noexcept { return kv_; }

  // Mean stored bits per element over the Linear inputs, weighted by their
  // columns (32 where a point stays float32): the "bits per activation" of
  // a study.
  double input_bits(const std::vector<const Linear*>& linears) const;
  // One line per distinct setting, for reports.
  std::vector<std::string> describe() const;

 private:
  std::vector<ActQuant> quants_;                     // distinct settings
  std::map<std::string, size_t, std::less<>> input_;  // Linear name -> quants_ index
  std::vector<std::array<int, 4>> attention_;        // per layer, per point: index or -1
  std::optional<KvQuant> kv_;
  std::vector<std::string> described_;
};

}  // namespace lowbit

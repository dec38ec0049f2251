// The quantization_config of a compressed-tensors checkpoint (config.json),
// as compressed-tensors 0.20 writes it and vLLM 0.33 reads it:
//
//   "quantization_config": {
//     "quant_method": "compressed-tensors",
//     "format": "pack-quantized",            (or "mixed-precision": then each
//     "quantization_status": "compressed",    group names its own "format")
//     "config_groups": {
//       "group_0": { "targets": ["model.layers.0.mlp.down_proj", ...],
//                    "weights": { "num_bits": 4, "type": "int", "symmetric": true,
//                                 "strategy": "group", "group_size": 128, "dynamic": false },
//                    "input_activations": null, "output_activations": null } },
//     "ignore": ["lm_head"], "kv_cache_scheme": null, "global_compression_ratio": null }
//
// Targets are module names (the checkpoint's, without ".weight"), "re:"
// regexes, or class names such as "Linear". vLLM requires the shards it
// fuses (q/k/v_proj, gate/up_proj) to share one group, and for NVFP4 one
// weight_global_scale: it uses the largest of the shards' global scales.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/io/compressed_tensors.h"

namespace lowbit {

// QuantizationArgs as compressed-tensors serializes them: num_bits, type,
// symmetric, group_size, strategy, dynamic, and block_structure and
// scale_dtype only when set.
nlohmann::json ct_args_to_json(const CtArgs& a);
// Reads QuantizationArgs the way compressed-tensors validates them (unknown
// fields refused, strategy inferred from group_size when absent, "RxC"
// block structures accepted). Throws Error(kInput) naming `where` for
// malformed args and for weights lowbit cannot read: dynamic weights and
// actorder "group" (which needs weight_g_idx).
CtArgs ct_args_from_json(const nlohmann::json& j, const std::string& where);

// One quantized module of a model.
struct CtModule {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj"
  CtFormat format;
  CtArgs args;
};

// The module entry for a planned weight ("<module>.weight").
inline CtModule ct_module(std::string name, const CtPlan& plan) { return {std::move(name), plan.format, plan.args}; }

// The quantization_config object for modules (in model order): modules with
// equal format and args share a group (group_0, group_1, ... in order of
// first appearance) whose targets are their names. One format overall is
// written as the top-level "format"; several give "mixed-precision" with a
// "format" per group. `ignore` lists modules left unquantized (e.g.
// "lm_head"). Throws Error(kUsage) for no modules, an empty or repeated
// name, or a module both quantized and ignored.
nlohmann::json ct_quantization_config(const std::vector<CtModule>& modules,
                                      const std::vector<std::string>& ignore = {});

struct CtQuantizationConfig {
  struct Group {
    std::string name;  // "group_0"
    std::vector<std::string> targets;
    CtFormat format;
    CtArgs args;
  };
  std::vector<Group> groups;  // in file order; groups without weights are left out
  std::vector<std::string> ignore;
  // Whether a group quantizes activations (its modules then store
  // input_scale, input_global_scale, output_scale, ... beside the weights)
  // and whether a kv_cache_scheme is set (attention modules store k_scale
  // and v_scale). lowbit's own output declares neither.
  bool activations = false, kv_cache = false;

  // The group that quantizes `module`, matched as vLLM matches it: the
  // ignore list first (exact names and "re:" patterns, which match from the
  // start of the name), then each target in file order (exact or "re:"),
  // then targets contained in `class_name` (e.g. "Linear"; case-insensitive)
  // when one is given. Null when ignored or unmatched.
  // Each "re:" pattern is compiled on first use and kept (a model with MoE
  // experts has tens of thousands of modules), so find() is not thread-safe.
  const Group* find(std::string_view module, std::string_view class_name = "") const;

 private:
  struct PatternCache;
  mutable std::shared_ptr<PatternCache> patterns_;
};

// Parses config.json (an object holding "quantization_config") or the
// quantization_config object itself. Throws Error(kInput) naming `where`
// and the problem: not JSON, another quant_method, weights not stored
// compressed, a format lowbit does not read, malformed groups or args, an
// invalid regex.
CtQuantizationConfig parse_ct_quantization_config(std::string_view json_text, const std::string& where);
// Whether JSON text nests at most 64 levels of objects and arrays: the limit
// parse_ct_quantization_config enforces (Error(kInput) beyond it), so that
// no recursive copy, dump or destructor of a parsed value runs out of stack.
bool ct_json_depth_ok(std::string_view json_text);
CtQuantizationConfig parse_ct_quantization_config_json(const nlohmann::json& j, const std::string& where);

}  // namespace lowbit

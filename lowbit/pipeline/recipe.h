// Recipes: which tensors of a model to quantize, with which scheme and
// method, and which to keep as they are.
//
// A recipe is JSON (docs/recipes.md):
//   {
//     "default_scheme": "int4/g128/asym",          // for the default targets
//     "method": "mse",                              // optional, per recipe
//     "importance": "imatrix.safetensors",          // optional, see below
//     "rules": [                                    // first match wins
//       {"match": "embeddings", "keep": true},
//       {"match": "attention\\.(query|key)\\.weight$", "scheme": "int8/channel"},
//       {"match": "\\.weight$", "scheme": "mxfp4", "method": "rtn"}
//     ]
//   }
// "match" is an ECMAScript regular expression searched in the tensor name.
// A tensor no rule matches falls to the default policy: a default target
// (a floating 2-D linear weight that is not an embedding or the output
// head) gets default_scheme, anything else is kept in its input dtype.
// `--scheme S` on the command line is the recipe {"default_scheme": S}.
//
// A recipe may also set the runtime points of the quantized model (Linear
// inputs, attention operands, KV cache) with a plan's keys "inputs",
// "attention" and "kv" (lowbit/model/quant_plan.h). A checkpoint stores
// weights only, so quantize checks them and notes that they are not
// stored; `lowbit eval ppl|kld --plan R.json` runs them.
//
// "importance" names per-column weights: llama.cpp's importance matrix
// file (GGUF, from `lowbit calibrate` or llama-imatrix; the weights are the
// mean of x^2 per input column), or a safetensors file of one 1-D float32
// tensor per weight name, in.columns wide. A tensor with an entry is
// quantized with those weights: the mse method then becomes the weighted
// search (wmse), and the ggml types use them as llama.cpp uses its imatrix.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lowbit/core/name_pattern.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/methods/method_registry.h"

namespace lowbit {

struct RecipeRule {
  std::string match;            // the regular expression as written
  std::optional<NamePattern> re;  // compiled; searched anywhere in the name
  bool keep = false;
  std::string scheme;           // when !keep
  const Method* method = nullptr;  // the rule's own, or null
};

struct Recipe {
  std::string default_scheme;   // empty: default targets are kept too
  const Method* method = nullptr;  // the recipe's, or null
  std::string importance_file;  // empty: none
  std::vector<RecipeRule> rules;
  bool has_runtime_points = false;  // "inputs", "attention" or "kv" (checked, not stored)

  // Parses recipe JSON; kUsage naming the key or rule at fault (unknown
  // keys are errors, so a typo cannot silently change a run). Scheme
  // strings are checked by the caller, which knows the output container.
  static Recipe parse(std::string_view json_text, const std::string& name_for_errors);
  static Recipe load(const std::string& path);
  static Recipe from_scheme(const std::string& scheme);
};

// What to do with one tensor, and why (for the report).
struct TensorDecision {
  bool quantize = false;
  std::string scheme;
  const Method* method = nullptr;  // when quantize
  std::string reason;  // "rule 2 (\\.weight$)", "default target", "1-D", "embedding", ...
};

// True for the names of embedding tables and the output head, which the
// default policy keeps (they are lookup tables or shared with one, and the
// output head is the most sensitive matrix of a language model).
bool is_embedding_or_head(const std::string& name);

// The decision for tensor t. `cli_method` is --method (it applies where a
// rule does not name its own method; a recipe's own "method" comes next).
TensorDecision decide(const Recipe& r, const CheckpointTensor& t, const Method& cli_method);

}  // namespace lowbit

#include "lowbit/pipeline/recipe.h"

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/model/quant_plan.h"

namespace lowbit {

namespace {

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j[key].is_string()) fail_usage(where + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

}  // namespace

Recipe Recipe::parse(std::string_view text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail_usage("recipe '" + name + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail_usage("recipe '" + name + "' must be a JSON object");
  Recipe r;
  for (const auto& [key, value] : j.items()) {
    if (key == "default_scheme") {
      r.default_scheme = string_field(j, "default_scheme", "recipe '" + name + "'");
    } else if (key == "method") {
      r.method = &find_method(string_field(j, "method", "recipe '" + name + "'"));
    } else if (key == "importance") {
      r.importance_file = string_field(j, "importance", "recipe '" + name + "'");
    } else if (key == "rules") {
      if (!value.is_array()) fail_usage("recipe '" + name + "': \"rules\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const nlohmann::json& rj = value[i];
        const std::string where = "recipe '" + name + "' rule " + std::to_string(i + 1);
        if (!rj.is_object()) fail_usage(where + " must be an object");
        RecipeRule rule;
        for (const auto& [k, v] : rj.items()) {
          if (k == "match") {
            rule.match = string_field(rj, "match", where);
          } else if (k == "keep") {
            if (!v.is_boolean()) fail_usage(where + ": \"keep\" must be true or false");
            rule.keep = v.get<bool>();
          } else if (k == "scheme") {
            rule.scheme = string_field(rj, "scheme", where);
          } else if (k == "method") {
            rule.method = &find_method(string_field(rj, "method", where));
          } else {
            fail_usage(where + ": unknown key \"" + k + "\"; valid: match, keep, scheme, method");
          }
        }
        if (!rj.contains("match")) fail_usage(where + " has no \"match\" regular expression");
        if (rule.keep == !rule.scheme.empty()) fail_usage(where + " needs exactly one of \"scheme\" or \"keep\": true");
        rule.re = NamePattern::compile(rule.match, ErrorKind::kUsage, where);
        r.rules.push_back(std::move(rule));
      }
    } else if (PlanRules::is_plan_key(key)) {
      r.has_runtime_points = true;
    } else {
      fail_usage("recipe '" + name + "': unknown key \"" + key +
                 "\"; valid: default_scheme, method, importance, rules, and a plan's inputs, attention, kv");
    }
  }
  // The runtime points' rules, checked as a plan checks them.
  if (r.has_runtime_points) PlanRules::parse(text, name, /*in_recipe=*/true);
  return r;
}

Recipe Recipe::load(const std::string& path) {
  const std::vector<std::byte> bytes = read_file(path);
  return parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

Recipe Recipe::from_scheme(const std::string& scheme) {
  Recipe r;
  r.default_scheme = scheme;
  return r;
}

bool is_embedding_or_head(const std::string& name) {
  // Hugging Face (BERT, Llama, GPT-2) and GGUF spellings.
  static const NamePattern re = NamePattern::compile(
      R"((^|\.)(embed_tokens|embeddings?|word_embeddings|position_embeddings|token_type_embeddings|wte|wpe|tok_embeddings|token_embd|position_embd|token_types|lm_head)(\.|$)|^output\.weight$)",
      ErrorKind::kInternal, "the embedding pattern");
  return re.search(name);
}

TensorDecision decide(const Recipe& r, const CheckpointTensor& t, const Method& cli_method) {
  TensorDecision d;
  const Method* base = r.method ? r.method : &cli_method;
  // Nothing to quantize in a tensor without elements, whatever the rules say.
  if (t.numel == 0) {
    d.reason = "no elements";
    return d;
  }
  for (size_t i = 0; i < r.rules.size(); ++i) {
    const RecipeRule& rule = r.rules[i];
    if (!rule.re || !rule.re->search(t.name)) continue;
    d.reason = "rule " + std::to_string(i + 1) + " (" + rule.match + ")";
    if (rule.keep) return d;
    if (!t.floating) {
      d.reason += ", but dtype " + t.dtype + " is not a float type: kept";
      return d;
    }
    d.quantize = true;
    d.scheme = rule.scheme;
    d.method = rule.method ? rule.method : base;
    return d;
  }
  if (!t.floating) {
    d.reason = "not a float type";
  } else if (t.shape.size() != 2) {
    d.reason = std::to_string(t.shape.size()) + "-D";
  } else if (is_embedding_or_head(t.name)) {
    d.reason = "embedding or output head";
  } else if (r.default_scheme.empty()) {
    d.reason = "no rule matches";
  } else {
    d.quantize = true;
    d.scheme = r.default_scheme;
    d.method = base;
    d.reason = "default target";
  }
  return d;
}

}  // namespace lowbit

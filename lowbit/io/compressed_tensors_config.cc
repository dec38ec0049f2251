#include "lowbit/io/compressed_tensors_config.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_map>

#include "lowbit/core/error.h"
#include "lowbit/core/name_pattern.h"

namespace lowbit {

namespace {

using ojson = nlohmann::ordered_json;

// JSON nesting deeper than this is refused before parsing: nlohmann's parser
// recurses, and no real config nests more than a handful of levels.
constexpr int kMaxDepth = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool depth_ok(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

void check_depth(std::string_view text, const std::string& where) {
  if (!depth_ok(text)) fail_input(where + ": JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
}

template <class J>
std::vector<std::string> string_list(const J& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) fail_input(where + " is not a list of strings");
  for (const auto& e : j) {
    if (!e.is_string()) fail_input(where + " is not a list of strings");
    out.push_back(e.template get<std::string>());
    if (out.back().starts_with("re:")) (void)NamePattern::compile(out.back().substr(3), ErrorKind::kInput, where);
  }
  return out;
}

template <class J>
CtArgs args_from(const J& j, const std::string& where) {
  const auto bad = [&](const std::string& why) { fail_input(where + ": " + why); };
  if (!j.is_object()) bad("quantization args are not a JSON object");
  static const std::set<std::string> known = {"num_bits",   "type",     "symmetric",   "group_size",
                                              "strategy",   "block_structure", "dynamic", "actorder",
                                              "scale_dtype", "zp_dtype", "observer",   "observer_kwargs"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.count(it.key())) bad("unknown quantization args field '" + it.key() + "'");
  }
  const auto field = [&](const char* k) -> const J* {
    const auto it = j.find(k);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  CtArgs a;
  if (const J* v = field("num_bits")) {
    if (!v->is_number_integer() || v->template get<int64_t>() < 1 || v->template get<int64_t>() > 64) {
      bad("num_bits must be an integer 1..64");
    }
    a.num_bits = v->template get<int>();
  }
  if (const J* v = field("type")) {
    if (!v->is_string()) bad("type must be \"int\" or \"float\"");
    a.type = lower(v->template get<std::string>());
    if (a.type != "int" && a.type != "float") bad("type '" + a.type + "' is neither int nor float");
  }
  if (const J* v = field("symmetric")) {
    if (!v->is_boolean()) bad("symmetric must be true or false");
    a.symmetric = v->template get<bool>();
  }
  int64_t group_size = 0;
  bool has_group = false;
  if (const J* v = field("group_size")) {
    if (!v->is_number_integer() || v->template get<int64_t>() < -1 || v->template get<int64_t>() == 0) {
      bad("group_size must be a positive integer, -1 (channel) or null");
    }
    group_size = v->template get<int64_t>();
    has_group = true;
  }
  std::string strategy;
  if (const J* v = field("strategy")) {
    if (!v->is_string()) bad("strategy must be a string");
    strategy = lower(v->template get<std::string>());
    static const std::set<std::string> strategies = {"tensor", "channel", "group", "block",
                                                     "token",  "tensor_group", "attn_head"};
    if (!strategies.count(strategy)) bad("unknown strategy '" + strategy + "'");
  } else {
    strategy = !has_group ? "tensor" : group_size > 0 ? "group" : "channel";
  }
  a.strategy = strategy;
  const bool grouped = strategy == "group" || strategy == "tensor_group";
  if (grouped && !(has_group && group_size > 0)) bad("strategy " + strategy + " needs a positive group_size");
  if (!grouped && has_group && group_size > 0) bad("group_size needs strategy group or tensor_group");
  if (grouped) a.group_size = static_cast<uint64_t>(group_size);
  if (const J* v = field("block_structure")) {
    std::vector<int64_t> dims;
    if (v->is_string()) {
      // The older "RxC" spelling.
      const std::string s = v->template get<std::string>();
      const size_t x = s.find('x');
      try {
        size_t used = 0;
        if (x != std::string::npos) {
          dims.push_back(std::stoll(s.substr(0, x), &used));
          if (used != x) dims.clear();
          dims.push_back(std::stoll(s.substr(x + 1), &used));
          if (used != s.size() - x - 1) dims.clear();
        }
      } catch (const std::exception&) {
        dims.clear();
      }
    } else if (v->is_array()) {
      for (const auto& d : *v) dims.push_back(d.is_number_integer() ? d.template get<int64_t>() : 0);
    }
    if (dims.size() != 2 || dims[0] <= 0 || dims[1] <= 0) {
      bad("block_structure must be two positive integers [rows, cols]");
    }
    a.block_structure = std::array<uint64_t, 2>{static_cast<uint64_t>(dims[0]), static_cast<uint64_t>(dims[1])};
  }
  if ((strategy == "block") != a.block_structure.has_value()) {
    bad("block_structure goes with strategy block, and only with it");
  }
  if (const J* v = field("dynamic")) {
    if (!(v->is_boolean() && !v->template get<bool>())) {
      bad("dynamic weight quantization stores no quantized weights; lowbit reads static ones");
    }
  }
  if (const J* v = field("actorder")) {
    const bool ok = (v->is_boolean() && !v->template get<bool>()) ||
                    (v->is_string() && (lower(v->template get<std::string>()) == "weight" ||
                                        lower(v->template get<std::string>()) == "static"));
    if (!ok) {
      bad("actorder " + v->dump() + " needs weight_g_idx, which lowbit does not read (\"weight\" and null are fine)");
    }
  }
  if (const J* v = field("scale_dtype")) {
    if (!v->is_string()) bad("scale_dtype must be a string such as \"torch.uint8\"");
    std::string s = v->template get<std::string>();
    a.scale_dtype = s.starts_with("torch.") ? s : std::string("torch.").append(s);
  }
  if (const J* v = field("zp_dtype")) {
    if (!v->is_string()) bad("zp_dtype must be a string such as \"torch.int8\"");
  }
  return a;
}

CtQuantizationConfig parse_config(const ojson& root, const std::string& where) {
  const auto bad = [&](const std::string& why) { fail_input(where + ": " + why); };
  if (!root.is_object()) bad("not a JSON object");
  const ojson& qc = root.contains("quantization_config") ? root["quantization_config"] : root;
  if (!qc.is_object()) bad("quantization_config is not a JSON object");
  const auto method = qc.find("quant_method");
  if (method == qc.end() || !method->is_string() || method->get<std::string>() != "compressed-tensors") {
    bad("quant_method is " + (method == qc.end() ? std::string("missing") : method->dump()) +
        ", not \"compressed-tensors\"");
  }
  if (const auto st = qc.find("quantization_status"); st != qc.end() && !st->is_null()) {
    if (!st->is_string() || st->get<std::string>() != "compressed") {
      bad("quantization_status is " + st->dump() + ": the weights are not stored compressed");
    }
  }
  std::string global_format;
  if (const auto f = qc.find("format"); f != qc.end() && !f->is_null()) {
    if (!f->is_string()) bad("format is not a string");
    global_format = f->get<std::string>();
  }
  CtQuantizationConfig out;
  if (const auto ig = qc.find("ignore"); ig != qc.end()) out.ignore = string_list(*ig, where + ": ignore");
  if (const auto kv = qc.find("kv_cache_scheme"); kv != qc.end() && !kv->is_null()) out.kv_cache = true;
  const auto groups = qc.find("config_groups");
  if (groups == qc.end() || !groups->is_object()) bad("config_groups is missing or not a JSON object");
  static const std::set<std::string> group_keys = {"targets", "weights", "input_activations", "output_activations",
                                                   "format"};
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    const std::string gw = where + ": config group '" + it.key() + "'";
    const ojson& g = it.value();
    if (!g.is_object()) fail_input(gw + " is not a JSON object");
    for (auto k = g.begin(); k != g.end(); ++k) {
      if (!group_keys.count(k.key())) fail_input(gw + " has an unknown field '" + k.key() + "'");
    }
    for (const char* act : {"input_activations", "output_activations"}) {
      if (const auto a = g.find(act); a != g.end() && !a->is_null()) out.activations = true;
    }
    const auto w = g.find("weights");
    if (w == g.end() || w->is_null()) continue;  // activations only
    CtQuantizationConfig::Group grp;
    grp.name = it.key();
    grp.targets = string_list(g.contains("targets") ? g["targets"] : ojson(), gw + " targets");
    if (grp.targets.empty()) fail_input(gw + " has no targets");
    std::string fmt = global_format;
    if (const auto f = g.find("format"); f != g.end() && !f->is_null()) {
      if (!f->is_string()) fail_input(gw + ": format is not a string");
      fmt = f->get<std::string>();
    }
    const auto cf = find_ct_format(fmt);
    if (!cf) {
      fail_input(gw + ": format '" + fmt + "' is not one lowbit reads (" + ct_format_names() +
                 (fmt == "mixed-precision" ? "; a mixed-precision config needs a format in each group" : "") + ")");
    }
    grp.format = *cf;
    grp.args = args_from(*w, gw + " weights");
    out.groups.push_back(std::move(grp));
  }
  return out;
}

}  // namespace

nlohmann::json ct_args_to_json(const CtArgs& a) {
  nlohmann::json j = {{"num_bits", a.num_bits}, {"type", a.type},        {"symmetric", a.symmetric},
                      {"strategy", a.strategy}, {"group_size", nullptr}, {"dynamic", false}};
  if (a.group_size) j["group_size"] = *a.group_size;
  if (a.block_structure) j["block_structure"] = {(*a.block_structure)[0], (*a.block_structure)[1]};
  if (a.scale_dtype) j["scale_dtype"] = *a.scale_dtype;
  return j;
}

CtArgs ct_args_from_json(const nlohmann::json& j, const std::string& where) { return args_from(j, where); }

nlohmann::json ct_quantization_config(const std::vector<CtModule>& modules, const std::vector<std::string>& ignore) {
  if (modules.empty()) fail_usage("a compressed-tensors quantization_config needs at least one quantized module");
  std::set<std::string> names;
  struct Group {
    CtFormat format;
    CtArgs args;
    std::vector<std::string> targets;
  };
  std::vector<Group> groups;
  for (const CtModule& m : modules) {
    if (m.name.empty()) fail_usage("quantization_config: a module has an empty name");
    if (!names.insert(m.name).second) fail_usage("quantization_config: module '" + m.name + "' is listed twice");
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const Group& x) { return x.format == m.format && x.args == m.args; });
    if (g == groups.end()) {
      groups.push_back({m.format, m.args, {}});
      g = groups.end() - 1;
    }
    g->targets.push_back(m.name);
  }
  for (const std::string& n : ignore) {
    if (names.count(n)) fail_usage("quantization_config: module '" + n + "' is both quantized and ignored");
  }
  const bool mixed =
      std::any_of(groups.begin(), groups.end(), [&](const Group& g) { return g.format != groups[0].format; });
  nlohmann::json cg = nlohmann::json::object();
  for (size_t i = 0; i < groups.size(); ++i) {
    nlohmann::json g = {{"targets", groups[i].targets},
                        {"weights", ct_args_to_json(groups[i].args)},
                        {"input_activations", nullptr},
                        {"output_activations", nullptr}};
    if (mixed) g["format"] = ct_format_name(groups[i].format);
    cg["group_" + std::to_string(i)] = std::move(g);
  }
  return {{"quant_method", "compressed-tensors"},
          {"format", mixed ? "mixed-precision" : ct_format_name(groups[0].format)},
          {"quantization_status", "compressed"},
          {"config_groups", std::move(cg)},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"global_compression_ratio", nullptr}};
}

CtQuantizationConfig parse_ct_quantization_config(std::string_view text, const std::string& where) {
  check_depth(text, where);
  const ojson j = ojson::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) fail_input(where + ": not valid JSON");
  return parse_config(j, where);
}

bool ct_json_depth_ok(std::string_view json_text) { return depth_ok(json_text); }

CtQuantizationConfig parse_ct_quantization_config_json(const nlohmann::json& j, const std::string& where) {
  return parse_config(ojson::parse(j.dump()), where);
}

struct CtQuantizationConfig::PatternCache {
  std::unordered_map<std::string, NamePattern> compiled;  // by target, "re:" included
};

const CtQuantizationConfig::Group* CtQuantizationConfig::find(std::string_view module,
                                                              std::string_view class_name) const {
  // "re:" targets match from the start of the name, as Python's re.match
  // in vLLM and compressed-tensors.
  if (!patterns_) patterns_ = std::make_shared<PatternCache>();
  const auto regex_matches = [this](const std::string& target, std::string_view name) {
    auto it = patterns_->compiled.find(target);
    if (it == patterns_->compiled.end()) {
      it = patterns_->compiled.emplace(target, NamePattern::compile(target.substr(3), ErrorKind::kInput, "a target")).first;
    }
    return it->second.match_prefix(name);
  };
  const auto name_matches = [&](const std::string& target, std::string_view name) {
    return target.starts_with("re:") ? regex_matches(target, name) : target == name;
  };
  for (const std::string& p : ignore) {
    if (name_matches(p, module)) return nullptr;
  }
  for (const Group& g : groups) {
    for (const std::string& t : g.targets) {
      if (name_matches(t, module)) return &g;
    }
  }
  if (!class_name.empty()) {
    const std::string cls = lower(class_name);
    for (const Group& g : groups) {
      for (const std::string& t : g.targets) {
        if (t.starts_with("re:") ? regex_matches(t, class_name) : cls.find(lower(t)) != std::string::npos) {
          return &g;
        }
      }
    }
  }
  return nullptr;
}

}  // namespace lowbit

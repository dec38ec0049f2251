#include "lowbit/train/train_config.h"

#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {

namespace {

using nlohmann::json;

// Reads the keys of one section, refusing unknown ones.
class Section {
 public:
  Section(const json& root, const char* key, const std::string& name, bool required) : name_(name), key_(key) {
    if (!root.contains(key)) {
      if (required) fail_input(fmt::format("{}: the section \"{}\" is missing", name, key));
      return;
    }
    if (!root[key].is_object()) fail_input(fmt::format("{}: \"{}\" must be an object", name, key));
    j_ = root[key];
  }
  ~Section() = default;

  template <typename T>
  void get(const char* key, T& out, bool required = false) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      if (required) fail_input(fmt::format("{}: \"{}.{}\" is missing", name_, key_, key));
      return;
    }
    const json& v = j_[key];
    bool ok = false;
    if constexpr (std::is_same_v<T, bool>) {
      ok = v.is_boolean();
    } else if constexpr (std::is_integral_v<T>) {
      ok = v.is_number_integer() || v.is_number_unsigned();
    } else if constexpr (std::is_floating_point_v<T>) {
      ok = v.is_number();
    } else if constexpr (std::is_same_v<T, std::string>) {
      ok = v.is_string();
    } else {
      ok = v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
    }
    if (!ok) fail_input(fmt::format("{}: \"{}.{}\" has the wrong type ({})", name_, key_, key, v.dump()));
    out = v.get<T>();
  }

  void refuse_unknown() const {
    for (const auto& [k, v] : j_.items()) {
      if (!seen_.contains(k)) fail_input(fmt::format("{}: unknown key \"{}.{}\"", name_, key_, k));
    }
  }

 private:
  std::string name_, key_;
  json j_ = json::object();
  std::set<std::string> seen_;
};

}  // namespace

TrainConfig parse_train_config(std::string_view json_text, const std::string& name, const std::string& base_dir) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    fail_input(fmt::format("{}: not valid JSON: {}", name, e.what()));
  }
  if (!root.is_object()) fail_input(fmt::format("{}: a training config is a JSON object", name));
  for (const auto& [k, v] : root.items()) {
    if (k != "model" && k != "data" && k != "train" && k != "precision") {
      fail_input(fmt::format("{}: unknown section \"{}\" (expected model, data, train, precision)", name, k));
    }
  }
  TrainConfig c;
  LlamaConfig& m = c.model;
  m.tied_embeddings = true;
  {
    Section s(root, "model", name, true);
    s.get("vocab_size", m.vocab_size);
    s.get("dim", m.dim, true);
    s.get("ffn_dim", m.ffn_dim, true);
    s.get("layers", m.layers, true);
    s.get("heads", m.heads, true);
    m.kv_heads = m.heads;
    s.get("kv_heads", m.kv_heads);
    s.get("context_length", m.context_length, true);
    s.get("rope_theta", m.rope_theta);
    double eps = m.rms_eps;
    s.get("rms_eps", eps);
    m.rms_eps = static_cast<float>(eps);
    s.get("tied_embeddings", m.tied_embeddings);
    s.refuse_unknown();
  }
  {
    Section s(root, "data", name, true);
    s.get("files", c.files, true);
    s.get("tokenizer", c.tokenizer);
    s.get("holdout", c.holdout);
    s.refuse_unknown();
  }
  {
    Section s(root, "train", name, false);
    s.get("batch", c.batch);
    s.get("seq", c.seq);
    s.get("accum", c.accum);
    s.get("steps", c.steps);
    s.get("warmup", c.warmup);
    s.get("lr", c.lr);
    // min_lr defaults to a tenth of the peak, whatever the peak is.
    c.min_lr = -1;
    s.get("min_lr", c.min_lr);
    if (c.min_lr == -1) c.min_lr = c.lr * 0.1;
    s.get("weight_decay", c.weight_decay);
    s.get("beta1", c.beta1);
    s.get("beta2", c.beta2);
    s.get("eps", c.eps);
    s.get("grad_clip", c.grad_clip);
    s.get("seed", c.seed);
    s.get("eval_every", c.eval_every);
    s.get("eval_windows", c.eval_windows);
    s.get("checkpoint_every", c.checkpoint_every);
    s.refuse_unknown();
  }
  if (m.heads > 0 && m.dim % m.heads != 0) {
    fail_input(fmt::format("{}: dim {} is not a multiple of heads {}", name, m.dim, m.heads));
  }
  if (m.heads > 0) m.head_dim = m.dim / m.heads;
  m.rope_dim = m.head_dim;
  const auto positive = [&](int64_t v, const char* key) {
    if (v < 1) fail_input(fmt::format("{}: \"{}\" must be at least 1, not {}", name, key, v));
  };
  positive(c.batch, "train.batch");
  positive(c.seq, "train.seq");
  positive(c.accum, "train.accum");
  positive(c.steps, "train.steps");
  positive(c.eval_every, "train.eval_every");
  positive(c.eval_windows, "train.eval_windows");
  positive(c.checkpoint_every, "train.checkpoint_every");
  if (c.warmup < 0) fail_input(fmt::format("{}: \"train.warmup\" must not be negative", name));
  if (c.seq > m.context_length) {
    fail_input(fmt::format("{}: train.seq {} is longer than model.context_length {}", name, c.seq, m.context_length));
  }
  const auto in_range = [&](double v, double lo, double hi, const char* key) {
    if (!(v >= lo && v <= hi)) fail_input(fmt::format("{}: \"{}\" = {} is outside [{}, {}]", name, key, v, lo, hi));
  };
  in_range(c.lr, 1e-12, 10.0, "train.lr");
  in_range(c.min_lr, 0.0, c.lr, "train.min_lr");
  in_range(c.weight_decay, 0.0, 10.0, "train.weight_decay");
  in_range(c.beta1, 0.0, 0.999999, "train.beta1");
  in_range(c.beta2, 0.0, 0.999999, "train.beta2");
  in_range(c.eps, 1e-30, 1.0, "train.eps");
  in_range(c.grad_clip, 0.0, 1e30, "train.grad_clip");
  in_range(c.holdout, 1e-6, 0.5, "data.holdout");
  for (std::string& f : c.files) {
    if (std::filesystem::path(f).is_relative()) f = (std::filesystem::path(base_dir) / f).lexically_normal().string();
  }
  if (c.tokenizer != "bytes") {
    const std::string_view t = c.tokenizer;
    int64_t n = 0;
    const bool bpe = t.starts_with("bpe:") && t.size() > 4 &&
                     std::from_chars(t.data() + 4, t.data() + t.size(), n).ptr == t.data() + t.size();
    if (!bpe) fail_input(fmt::format("{}: \"data.tokenizer\" is \"bytes\" or \"bpe:N\", not \"{}\"", name, t));
    if (n < 257 || n > (1 << 20)) {
      fail_input(fmt::format("{}: a BPE vocabulary of {} tokens is outside [257, 1048576]", name, n));
    }
  }
  if (root.contains("precision")) {
    const json& p = root["precision"];
    if (p.is_object()) {
      c.precision_json = p.dump();
    } else if (p.is_string()) {
      std::filesystem::path file = p.get<std::string>();
      if (file.is_relative()) file = std::filesystem::path(base_dir) / file;
      const std::vector<std::byte> bytes = read_file(file.string());
      const json r = json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), nullptr,
                                 false);
      if (r.is_discarded() || !r.is_object()) {
        fail_input(fmt::format("{}: the precision recipe '{}' is not a JSON object", name, file.string()));
      }
      c.precision_json = r.dump();
    } else if (!p.is_null()) {
      fail_input(fmt::format("{}: \"precision\" is a recipe object or the path of one", name));
    }
  }
  // The shape check proper (vocab may still be 0 here: the tokenizer's).
  LlamaConfig probe = m;
  if (probe.vocab_size == 0) probe.vocab_size = 1;
  probe.validate(name);
  return c;
}

int32_t TrainConfig::tokenizer_vocab() const {
  if (tokenizer == "bytes") return 257;
  int32_t n = 0;
  std::from_chars(tokenizer.data() + 4, tokenizer.data() + tokenizer.size(), n);
  return n;
}

std::string TrainConfig::identity_json() const {
  const json j = {
      {"model",
       {{"vocab_size", model.vocab_size},
        {"dim", model.dim},
        {"ffn_dim", model.ffn_dim},
        {"layers", model.layers},
        {"heads", model.heads},
        {"kv_heads", model.kv_heads},
        {"context_length", model.context_length},
        {"rope_theta", model.rope_theta},
        {"rms_eps", model.rms_eps},
        {"tied_embeddings", model.tied_embeddings}}},
      {"data", {{"files", files}, {"tokenizer", tokenizer}, {"holdout", holdout}}},
      {"train",
       {{"batch", batch},
        {"seq", seq},
        {"accum", accum},
        {"steps", steps},
        {"warmup", warmup},
        {"lr", lr},
        {"min_lr", min_lr},
        {"weight_decay", weight_decay},
        {"beta1", beta1},
        {"beta2", beta2},
        {"eps", eps},
        {"grad_clip", grad_clip},
        {"seed", seed}}},
      {"precision", precision_json.empty() ? json(nullptr) : json::parse(precision_json)}};
  return j.dump();
}

}  // namespace lowbit

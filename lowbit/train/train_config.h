// `lowbit train --config C.json`: the model's shape, the text it learns
// from, and the optimizer's settings, in one JSON file.
//
//   {
//     "model": {"dim": 256, "ffn_dim": 768, "layers": 6, "heads": 4, "kv_heads": 2,
//               "context_length": 256, "tied_embeddings": true},
//     "data":  {"files": ["web.txt", "jargon.txt"], "tokenizer": "bpe:8192", "holdout": 0.02},
//     "train": {"batch": 16, "seq": 256, "steps": 2000, "lr": 3e-3, "warmup": 100},
//     "precision": "recipes/fp8-te.json"
//   }
//
// Every key but the model's shape and the data files has a default (the
// fields below). Unknown keys are errors: a misspelt "weight_decay" must
// not silently train with the default. Relative paths are relative to the
// config file's directory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/llama_config.h"

namespace lowbit {

struct TrainConfig {
  LlamaConfig model;  // vocab_size 0: the tokenizer's

  std::vector<std::string> files;
  // "bytes" (byte-level: 256 bytes and <|endoftext|>), or "bpe:N": a
  // byte-level BPE of N tokens trained on the training split
  // (bpe_trainer.h). Either is written into the exported GGUF.
  std::string tokenizer = "bytes";
  int32_t tokenizer_vocab() const;  // 257 for "bytes", N for "bpe:N"
  double holdout = 0.02;

  int64_t batch = 16, seq = 256, accum = 1, steps = 1000, warmup = 100;
  double lr = 3e-3, min_lr = 3e-4 /* default: lr / 10 */, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 1.0;
  uint64_t seed = 1;
  int64_t eval_every = 100, eval_windows = 64, checkpoint_every = 500;

  // The precision recipe (precision_recipe.h) as canonical JSON, from the
  // "precision" key: an object, or the path of a JSON file. Empty: float32.
  std::string precision_json;

  // The settings that decide the run's numbers (everything above but the
  // eval and checkpoint cadence, which only change what is reported), as
  // canonical JSON: a checkpoint stores it, and a resume must match it.
  std::string identity_json() const;
};

// ErrorKind::kInput naming `name` and the key for a missing, unknown or
// ill-typed key, or an impossible value (a shape validate() refuses,
// seq > context_length, batch < 1, lr <= 0...).
TrainConfig parse_train_config(std::string_view json_text, const std::string& name, const std::string& base_dir);

}  // namespace lowbit

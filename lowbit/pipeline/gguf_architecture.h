// The llama.cpp architecture of a GGUF written from a safetensors
// checkpoint: the metadata llama.cpp's loader reads and the names it looks
// tensors up by, as llama.cpp's own convert_hf_to_gguf.py writes them, so
// that `lowbit quantize model-dir out.gguf` gives a file llama.cpp runs.
//
//   std::optional<GgufArchitecture> arch = detect_gguf_architecture(dir);
//   if (arch) for (const GgufKv& kv : arch->metadata) writer.add_metadata(kv.key, kv.value);
//   std::string name = arch->tensor_name("encoder.layer.0.attention.self.query.weight");
//                                                  // "blk.0.attn_q.weight"; "" = left out
//
// One architecture so far: BERT sentence-transformers encoders
// (config.json model_type "bert", e.g. all-MiniLM-L6-v2) as llama.cpp's
// LLM_ARCH_BERT with its WordPiece ("bert"/WPM) vocabulary. docs/gguf.md
// ("BERT") lists every key and name and where lowbit deliberately differs
// from the converter.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/io/gguf_value.h"
#include "lowbit/model/bert_config.h"
#include "lowbit/model/wordpiece_tokenizer.h"

namespace lowbit {

struct GgufArchitecture {
  std::string name;               // general.architecture: "bert"
  std::vector<GgufKv> metadata;   // general.architecture first, then the converter's keys
  // The GGUF name of an input tensor, or "" for one the converter leaves
  // out (BERT: position_ids, the pooler, the MLM and NSP heads).
  // ErrorKind::kInput naming a tensor the architecture has no place for.
  std::function<std::string(const std::string&)> tensor_name;
  // Whether a kept 1-D tensor is stored as F32 whatever its input dtype:
  // llama.cpp's converter stores biases and norms so, and its BERT graph
  // adds them to F32 activations.
  bool one_dim_as_f32 = true;
};

// The special tokens as tokenizer_config.json names them (content strings;
// empty where absent) and config.json's *_token_id fallbacks (-1: none).
struct SpecialTokenNames {
  std::string bos, eos, unk, sep, pad, cls, mask;
  int32_t config_pad_id = -1, config_bos_id = -1, config_eos_id = -1;
};

// BERT from its parsed parts (config.json, the sentence-transformers
// pipeline, tokenizer.json, tokenizer_config.json). ErrorKind::kInput for a
// pooling llama.cpp has no type for (max, mean_sqrt_len, several modes).
GgufArchitecture bert_gguf_architecture(const BertConfig& config, const SentencePipeline& pipeline,
                                        const WordPieceConfig& tokenizer, const SpecialTokenNames& special);

// BERT's tensor names (HF -> llama.cpp); see GgufArchitecture::tensor_name.
std::string bert_gguf_tensor_name(const std::string& hf_name);

// The architecture of the safetensors model in directory `dir`, from its
// config.json: std::nullopt when there is no config.json or its model_type
// has no architecture here (the tensors then keep their own names, as
// before). For model_type "bert" the tokenizer.json, the pipeline files and
// tokenizer_config.json are read too; kInput naming the file for anything
// missing or malformed.
std::optional<GgufArchitecture> detect_gguf_architecture(const std::string& dir);

}  // namespace lowbit

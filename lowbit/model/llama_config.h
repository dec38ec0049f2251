// The shape of a Llama decoder and where its weights are named, read from
// a GGUF file's `llama.*` metadata or from a Hugging Face directory's
// config.json (LlamaForCausalLM).
//
// The two containers disagree on one thing that changes results: the order
// of the rows of the Q and K projections. Hugging Face's Llama rotates the
// two halves of each head against each other (rotate_half: x[i] with
// x[i + d/2]); llama.cpp's convert_hf_to_gguf.py permutes the Q and K rows
// of llama models so that ggml's "normal" RoPE, which rotates adjacent
// pairs (x[2i], x[2i+1]), gives the same result. So the RoPE style is a
// property of the checkpoint, not of the architecture: GGUF gets adjacent
// pairs, safetensors gets halves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lowbit/model/rope.h"

namespace lowbit {

class Checkpoint;
class GgufFile;

// Where the tensors of one checkpoint live, by role.
enum class LlamaNaming { kGguf, kHuggingFace };

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t dim = 0;             // embedding_length / hidden_size
  int64_t ffn_dim = 0;         // feed_forward_length / intermediate_size
  int64_t layers = 0;          // block_count / num_hidden_layers
  int64_t heads = 0;           // attention.head_count / num_attention_heads
  int64_t kv_heads = 0;        // attention.head_count_kv / num_key_value_heads
  int64_t head_dim = 0;        // dim / heads
  int64_t rope_dim = 0;        // rope.dimension_count: the leading dims of a head that rotate
  int64_t context_length = 0;  // the context the model was trained for
  double rope_theta = 10000.0;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // the LM head is the token embedding matrix
  RopeStyle rope_style = RopeStyle::kAdjacentPairs;
  LlamaNaming naming = LlamaNaming::kGguf;

  int64_t kv_dim() const noexcept { return kv_heads * head_dim; }
  // ErrorKind::kInput naming `source` when a value is missing, not
  // positive, or inconsistent (heads not a multiple of kv_heads, dim not
  // heads * head_dim, an odd or too large rope_dim...).
  void validate(const std::string& source) const;
};

// The checkpoint's tensor names for each role.
std::string llama_embedding_name(LlamaNaming naming);
std::string llama_output_norm_name(LlamaNaming naming);
std::string llama_output_name(LlamaNaming naming);
// role: attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
// ffn_gate, ffn_up, ffn_down (GGUF's names, mapped for Hugging Face).
std::string llama_layer_tensor_name(LlamaNaming naming, int64_t layer, std::string_view role);
// The inverse for a decoder layer's weight: "model.layers.3.mlp.up_proj.weight"
// -> "blk.3.ffn_up.weight"; "" for any other name. Calibration files name
// weights the GGUF way (as llama-imatrix does), whichever checkpoint the
// model came from.
std::string llama_gguf_layer_name(std::string_view hf_name);

// From `llama.*` metadata. ErrorKind::kInput when general.architecture is
// not "llama" (the message names it and what lowbit runs), or a key is
// missing or of the wrong type. vocab_size is the rows of token_embd.weight
// (else the token list, else llama.vocab_size); tied_embeddings is left false (the loader decides by
// whether output.weight exists).
LlamaConfig llama_config_from_gguf(const GgufFile& file);

// From the text of a Hugging Face config.json; `name` stands for the file
// in messages. model_type must be "llama" (or architectures name a
// LlamaForCausalLM). rope_scaling is refused: lowbit runs plain RoPE only.
LlamaConfig llama_config_from_hf_json(std::string_view json_text, const std::string& name);

// The config of an open checkpoint: GGUF metadata, or config.json in the
// checkpoint's directory. For GGUF, tied_embeddings is set from whether
// output.weight exists.
LlamaConfig llama_config_of(const Checkpoint& checkpoint);

}  // namespace lowbit

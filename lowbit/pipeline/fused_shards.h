// Which weight tensors an inference runtime fuses into one layer. vLLM loads
// the q, k and v projections of an attention block as one QKV layer and the
// gate and up projections of an MLP as one layer; a quantized format with a
// per-tensor scale (NVFP4's global scale) must then give every shard of the
// fused layer the same tensor scale, or vLLM, which keeps one, dequantizes
// the other shards wrongly (docs/compressed_tensors.md).
#pragma once

#include <string>

namespace lowbit {

// The name of the fused layer that the weight `tensor` is a shard of
// ("model.layers.0.self_attn.qkv_proj" for "...self_attn.k_proj.weight"),
// or "" for a tensor that is not fused. Covers the Llama/Mistral/Qwen
// names (q_proj, k_proj, v_proj; gate_proj, up_proj), BERT's
// (attention.self.query, key, value) and GGUF's (attn_q, attn_k, attn_v;
// ffn_gate, ffn_up).
std::string fused_layer_of(const std::string& tensor);

}  // namespace lowbit

#include "lowbit/pipeline/fused_shards.h"

#include <string_view>

namespace lowbit {

std::string fused_layer_of(const std::string& tensor) {
  struct Shard {
    std::string_view suffix, fused;
  };
  static constexpr Shard kShards[] = {
      {".q_proj.weight", ".qkv_proj"},  {".k_proj.weight", ".qkv_proj"},   {".v_proj.weight", ".qkv_proj"},
      {".gate_proj.weight", ".gate_up_proj"}, {".up_proj.weight", ".gate_up_proj"},
      {".attention.self.query.weight", ".attention.self.qkv"},
      {".attention.self.key.weight", ".attention.self.qkv"},
      {".attention.self.value.weight", ".attention.self.qkv"},
      // GGUF's names for the same (llama.cpp fuses none of them, but a GGUF
      // model written out as safetensors keeps them).
      {".attn_q.weight", ".attn_qkv"}, {".attn_k.weight", ".attn_qkv"}, {".attn_v.weight", ".attn_qkv"},
      {".ffn_gate.weight", ".ffn_gate_up"}, {".ffn_up.weight", ".ffn_gate_up"},
  };
  for (const Shard& s : kShards) {
    if (tensor.size() > s.suffix.size() && tensor.ends_with(s.suffix)) {
      return tensor.substr(0, tensor.size() - s.suffix.size()).append(s.fused);
    }
  }
  return "";
}

}  // namespace lowbit

#include "lowbit/train/model_export.h"

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/train/bpe_trainer.h"
#include "lowbit/train/trainable_llama.h"

namespace lowbit {

void export_llama_gguf(const std::string& path, const TrainableLlama& model, const TrainedBpe& tokenizer,
                       const std::map<std::string, std::string>& extra) {
  const LlamaConfig& c = model.config();
  if (static_cast<int64_t>(tokenizer.pieces.size()) != c.vocab_size) {
    fail_input(fmt::format("the model's vocabulary ({}) and the tokenizer's ({}) differ: llama.cpp needs them equal",
                           c.vocab_size, tokenizer.pieces.size()));
  }
  GgufWriter out(path);
  const auto u32 = [](int64_t v) { return GgufValue::of(static_cast<uint32_t>(v)); };
  out.add_metadata("general.architecture", GgufValue::of("llama"));
  for (const auto& [k, v] : extra) out.add_metadata(k, GgufValue::of(v));
  out.add_metadata("general.file_type", u32(0));
  out.add_metadata("llama.context_length", u32(c.context_length));
  out.add_metadata("llama.embedding_length", u32(c.dim));
  out.add_metadata("llama.block_count", u32(c.layers));
  out.add_metadata("llama.feed_forward_length", u32(c.ffn_dim));
  out.add_metadata("llama.attention.head_count", u32(c.heads));
  out.add_metadata("llama.attention.head_count_kv", u32(c.kv_heads));
  out.add_metadata("llama.rope.dimension_count", u32(c.rope_dim));
  out.add_metadata("llama.rope.freq_base", GgufValue::of(static_cast<float>(c.rope_theta)));
  out.add_metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::of(c.rms_eps));
  out.add_metadata("llama.vocab_size", u32(c.vocab_size));
  tokenizer.add_gguf_metadata(out);
  // A QAT model is written as it computes: each block Linear's weight
  // fake-quantized (float32 values on the quantizer's grid), without
  // LSQ+'s own parameters, which llama.cpp would not know.
  std::map<int64_t, int64_t> linear_at;  // parameter offset -> Linear index
  if (model.qat().active()) {
    for (int64_t i = 0; i < c.layers * 7; ++i) {
      int64_t rows = 0, cols = 0;
      linear_at[model.linear_weight(i, &rows, &cols)] = i;
    }
  }
  const auto exported = [](const ParamTensor& t) {
    return !t.name.ends_with(".qat_scale") && !t.name.ends_with(".qat_offset");
  };
  for (const ParamTensor& t : model.layout().tensors()) {
    if (!exported(t)) continue;
    const std::vector<uint64_t> shape(t.shape.begin(), t.shape.end());
    out.declare_tensor(t.name, reverse_dims(shape), GgmlType::kF32);
  }
  out.begin();
  for (const ParamTensor& t : model.layout().tensors()) {
    if (!exported(t)) continue;
    const auto it = linear_at.find(t.offset);
    if (it != linear_at.end()) {
      const std::vector<float> w = model.effective_weight(it->second);
      out.write_tensor_data(t.name, w.data(), w.size() * sizeof(float));
    } else {
      out.write_tensor_data(t.name, model.params().data() + t.offset, static_cast<size_t>(t.size) * sizeof(float));
    }
  }
  out.commit();
}

}  // namespace lowbit

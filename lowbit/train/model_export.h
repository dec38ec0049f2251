// A trained model as a GGUF file that llama.cpp and lowbit both run: the
// `llama` architecture's metadata, the tokenizer it was trained with, and
// every tensor in float32 (general.file_type 0, ALL_F32), under the names
// the trainer already uses. A tied model has no output.weight, which is
// how llama.cpp reads tied embeddings.
#pragma once

#include <map>
#include <string>

namespace lowbit {

class TrainableLlama;
struct TrainedBpe;

// `extra` adds string metadata (general.name, the training command...).
void export_llama_gguf(const std::string& path, const TrainableLlama& model, const TrainedBpe& tokenizer,
                       const std::map<std::string, std::string>& extra);

}  // namespace lowbit

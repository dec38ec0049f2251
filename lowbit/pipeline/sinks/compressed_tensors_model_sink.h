// The compressed-tensors output of `lowbit quantize`: the safetensors
// layout and quantization_config that vLLM loads (lowbit/io/
// compressed_tensors.h, docs/compressed_tensors.md).
//
// OUT is a directory (model.safetensors, config.json with the
// quantization_config, and the input directory's other files: tokenizer,
// configuration, pooling) or, when it ends in ".safetensors", one file whose
// metadata holds the quantization_config. Quantized tensors must be module
// weights ("<module>.weight", 2-D). Kept tensors keep their dtype; GGUF
// block types, which safetensors cannot hold, are kept as float32.
//
// Every quantized tensor is decoded back from the bytes written, and the
// error is measured on that: the report describes the file, not an
// intermediate. The output appears atomically (a temporary directory or
// file renamed at the end); a failed run leaves nothing.
#pragma once

#include <memory>
#include <string>

#include "lowbit/pipeline/model_quantizer.h"

namespace lowbit {

std::unique_ptr<ModelSink> make_compressed_tensors_model_sink(const Checkpoint& in, const std::string& out_path,
                                                const SinkOptions& options = {});

}  // namespace lowbit

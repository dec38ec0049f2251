// The GGUF output of `lowbit quantize`: ggml block types that llama.cpp
// loads, written by the byte-exact codecs of lowbit/ggml/row_codec.h.
//
// Schemes are ggml type names (q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k,
// q6_k, iq4_nl, mxfp4, tq2_0, f16, bf16, f32, in any case); lowbit's own
// schemes (int4/g128/asym, nvfp4, ...) have no ggml type and are refused
// with the list. Methods: rtn is llama.cpp's reference quantizer (byte for
// byte); mse is llama.cpp's weighted search (its imatrix path), with the
// recipe's importance weights or, without them, uniform weights; types with
// no search (q8_0, mxfp4, tq2_0, the float types) refuse mse. hqq needs
// lowbit's asymmetric integer schemes and is refused here.
//
// A row length that is not a whole number of the type's blocks falls back
// as llama.cpp's quantizer does (q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0,
// q2_k/q3_k -> iq4_nl), and to f16 when even 32 does not divide it; the
// report names the type stored. From a GGUF input, all metadata is kept
// (tokenizer included) and only the tensor types and general.file_type
// change; kept tensors are copied byte for byte.
#pragma once

#include <memory>
#include <string>

#include "lowbit/pipeline/model_quantizer.h"

namespace lowbit {

std::unique_ptr<ModelSink> make_gguf_model_sink(const Checkpoint& in, const std::string& out_path,
                                                const SinkOptions& options = {});

}  // namespace lowbit

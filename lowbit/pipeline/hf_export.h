// A Llama GGUF as a Hugging Face model directory: config.json
// (LlamaForCausalLM), model.safetensors (float32, Hugging Face's tensor
// names) and tokenizer.json, so that transformers, vLLM and lowbit read it
// as they read any Llama checkpoint.
//
// Two things change besides the names:
//  - the rows of attn_q and attn_k go back to Hugging Face's RoPE order:
//    llama.cpp's converter permuted each head's rows so that ggml's
//    adjacent-pair rotation equals rotate_half (llama_config.h); row
//    h·d + 2i + j of a GGUF head is row h·d + j·d/2 + i of the Hugging
//    Face one (j = 0, 1; i < d/2);
//  - the tokenizer becomes tokenizer.json: a byte-level BPE
//    (tokenizer.ggml.model "gpt2") with the pre-tokenizer that
//    tokenizer.ggml.pre names, written as Hugging Face's equivalent
//    (gpt2: ByteLevel; digits-first ones such as smollm: Digits with
//    individual digits, then ByteLevel), the control tokens as special
//    added tokens.
// Weights of any GGUF type are written dequantized to float32.
// lowbit-lm's Hugging Face form is made this way (docs/lowbit-lm.md).
#pragma once

#include <string>

namespace lowbit {

// Writes into `out_dir` (an existing, empty directory). ErrorKind::kInput
// for a GGUF that is not a Llama decoder, whose tokenizer is not
// byte-level BPE, or whose pre-tokenizer lowbit cannot name for Hugging
// Face.
void export_llama_hf(const std::string& gguf_path, const std::string& out_dir, int threads);

}  // namespace lowbit

// The parsers that read untrusted input, as fuzz targets. Each function
// feeds one input to one parser and swallows lowbit::Error, the documented
// way to refuse bad input; anything else (a crash, a sanitizer report, an
// escaping std::exception such as bad_alloc from an unchecked size) is a
// bug. libFuzzer drives them (fuzz_main.cc, built with LOWBIT_FUZZ=ON by
// scripts/fuzz.sh); fuzz_regressions_test.cc replays the seeds and every
// input that once crashed, in the normal test suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::fuzz {

void safetensors(const uint8_t* data, size_t size);
void gguf(const uint8_t* data, size_t size);
void scheme_spec(const uint8_t* data, size_t size);
void format_spec(const uint8_t* data, size_t size);
void recipe(const uint8_t* data, size_t size);
void ct_config(const uint8_t* data, size_t size);  // compressed-tensors quantization_config
void tokenizer_json(const uint8_t* data, size_t size);  // Hugging Face tokenizer.json
void gguf_tokenizer(const uint8_t* data, size_t size);  // tokenizer.ggml.* of a GGUF file
void imatrix(const uint8_t* data, size_t size);         // llama.cpp's importance matrix (GGUF)

struct Target {
  std::string name;  // also the folder of its seeds and regressions
  void (*run)(const uint8_t*, size_t);
};
const std::vector<Target>& targets();

}  // namespace lowbit::fuzz

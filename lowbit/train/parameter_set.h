// The trainable tensors of a model, laid out in one flat float32 buffer.
//
// The trainer keeps parameters, gradients and the optimizer's moments as
// flat buffers of the same layout, so that the optimizer, gradient
// clipping and checkpoints are one loop over contiguous memory, and each
// tensor is a slice [offset, offset + size). Names are the GGUF names of
// the Llama decoder (token_embd.weight, blk.0.attn_q.weight...), the names
// the exported model carries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct ParamTensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major, as the checkpoint stores it
  int64_t offset = 0;          // in floats, into the flat buffer
  int64_t size = 0;            // elements
  bool decay = false;          // AdamW's weight decay applies (matrices, not norms)
};

class ParameterSet {
 public:
  // Appends a tensor; returns its offset. Offsets are rounded up to 16
  // floats (64 bytes) so that every tensor starts on a cache line.
  // ErrorKind::kInternal for a duplicate name or a non-positive dimension.
  int64_t add(std::string name, std::vector<int64_t> shape, bool decay);

  const std::vector<ParamTensor>& tensors() const noexcept { return tensors_; }
  // Total floats of the flat buffer (padding included).
  int64_t size() const noexcept { return size_; }
  // Elements of all tensors (padding excluded): the parameter count.
  int64_t count() const noexcept { return count_; }
  const ParamTensor* find(std::string_view name) const noexcept;
  // The tensor that holds flat index `i`, or null for padding.
  const ParamTensor* tensor_at(int64_t i) const noexcept;

 private:
  std::vector<ParamTensor> tensors_;
  int64_t size_ = 0, count_ = 0;
};

}  // namespace lowbit

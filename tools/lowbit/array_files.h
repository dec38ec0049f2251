// Reading and writing the arrays the array subcommands work on: raw
// little-endian files, or NumPy .npy files when the name ends in ".npy".
// Outputs are written to a temporary name and renamed, so a failed command
// never leaves a partial file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit::cli {

// Whether the name ends in .npy, in any case.
bool is_npy(const std::string& path);

// The path checks every array command makes before any work: OUT is a
// file in an existing directory, and is none of `inputs` (IN first).
void check_array_paths(const std::string& out, const std::vector<std::string>& inputs);

struct FloatArray {
  InputType type = InputType::kFloat32;
  std::vector<std::byte> bytes;   // the elements, little-endian
  std::vector<uint64_t> shape;    // {n} for raw files
  size_t size() const;
  const void* data() const { return bytes.data(); }
};

// Raw files hold float32. .npy files may hold float32, float64 or float16.
FloatArray read_floats(const std::string& path);

// The elements as float32: float16 widens exactly, float64 rounds to
// nearest (even) once.
std::vector<float> to_float32(const FloatArray& a);

struct CodeArray {
  std::vector<std::byte> bytes;   // codes (code_bytes each) or the packed layout
  uint64_t count = 0;             // number of codes
  std::vector<uint64_t> shape;
};

// Codes of `format`: code_bytes() bytes each, or packed. A packed file does
// not record its count: `count` (when > 0) gives it, else every whole code
// the bytes hold is decoded.
CodeArray read_codes(const std::string& path, const Format& format, bool packed, uint64_t count);

void write_array(const std::string& path, const char* npy_descr, const std::vector<uint64_t>& shape,
                 const void* data, size_t bytes);

// The .npy descr of codes of `bytes` bytes: |u1, <u2 or <u4.
const char* code_descr(int bytes);

}  // namespace lowbit::cli

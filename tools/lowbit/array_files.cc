#include "tools/lowbit/array_files.h"

#include <cstring>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/npy.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/registry.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

bool is_npy(const std::string& path) { return has_extension(path, ".npy"); }

void check_array_paths(const std::string& out, const std::vector<std::string>& inputs) {
  check_output_file("OUT", out);
  std::vector<NamedPath> in;
  for (size_t i = 0; i < inputs.size(); ++i) in.push_back({i == 0 ? "IN" : "an input", inputs[i]});
  check_paths(in, {{"OUT", out}});
}

size_t FloatArray::size() const {
  const size_t item = type == InputType::kFloat64 ? 8 : (type == InputType::kFloat32 ? 4 : 2);
  return bytes.size() / item;
}

FloatArray read_floats(const std::string& path) {
  FloatArray a;
  if (!is_npy(path)) {
    a.bytes = read_file(path);
    if (a.bytes.size() % 4 != 0) {
      fail_input("'" + path + "' holds " + std::to_string(a.bytes.size()) +
                 " bytes, which is not a multiple of 4: raw input must be little-endian float32");
    }
    a.shape = {a.bytes.size() / 4};
    return a;
  }
  NpyArray npy = npy_read(path);
  if (npy.descr == "<f4") {
    a.type = InputType::kFloat32;
  } else if (npy.descr == "<f8") {
    a.type = InputType::kFloat64;
  } else if (npy.descr == "<f2") {
    a.type = InputType::kFloat16;
  } else {
    fail_input("'" + path + "' holds " + npy.descr + " elements; expected float32 (<f4), float64 (<f8) or float16 (<f2)");
  }
  a.bytes = std::move(npy.data);
  a.shape = std::move(npy.shape);
  return a;
}

const char* code_descr(int bytes) { return bytes == 1 ? "|u1" : bytes == 2 ? "<u2" : "<u4"; }

CodeArray read_codes(const std::string& path, const Format& f, bool packed, uint64_t count) {
  CodeArray c;
  const bool pack = packed && has_packed_layout(f);
  const int cb = pack ? 1 : f.code_bytes();
  if (is_npy(path)) {
    NpyArray npy = npy_read(path);
    if (npy.descr != code_descr(cb)) {
      fail_input("'" + path + "' holds " + npy.descr + " elements; codes of " + f.name +
                 (pack ? " (packed)" : "") + " are " + code_descr(cb));
    }
    c.bytes = std::move(npy.data);
    c.shape = std::move(npy.shape);
  } else {
    c.bytes = read_file(path);
    if (c.bytes.size() % cb != 0) {
      fail_input("'" + path + "' holds " + std::to_string(c.bytes.size()) + " bytes, which is not a multiple of " +
                 std::to_string(cb) + ": codes of " + f.name + " take " + std::to_string(cb) + " bytes each");
    }
    c.shape = {c.bytes.size() / cb};
  }
  if (!pack) {
    c.count = c.bytes.size() / cb;
    if (count > 0 && count != c.count) {
      fail_usage("--count " + std::to_string(count) + " does not match the " + std::to_string(c.count) +
                 " codes in '" + path + "' (--count is for packed input)");
    }
    return c;
  }
  // Every whole code the bytes hold; computed without overflow (the file is
  // far smaller than 2^60 bytes).
  const uint64_t fits = f.ternary ? c.bytes.size() * 5 : c.bytes.size() * 8 / f.bits;
  if (count > 0) {
    if (count > fits || packed_bytes(f, count) != c.bytes.size()) {
      fail_input("--count " + std::to_string(count) + " codes of " + f.name + " do not fill the " +
                 std::to_string(c.bytes.size()) + " packed bytes of '" + path + "' (it holds " +
                 std::to_string(fits) + " codes at most)");
    }
    c.count = count;
  } else {
    c.count = fits;
  }
  c.shape = {c.count};
  return c;
}

void write_array(const std::string& path, const char* npy_descr, const std::vector<uint64_t>& shape,
                 const void* data, size_t bytes) {
  if (is_npy(path)) {
    npy_write_atomic(path, npy_descr, shape, data, bytes);
  } else {
    write_file_atomic(path, data, bytes);
  }
}

}  // namespace lowbit::cli

namespace lowbit::cli {

std::vector<float> to_float32(const FloatArray& a) {
  const size_t n = a.size();
  std::vector<float> out(n);
  if (a.type == InputType::kFloat32) {
    std::memcpy(out.data(), a.data(), n * 4);
  } else if (a.type == InputType::kFloat64) {
    const double* d = static_cast<const double*>(a.data());
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(d[i]);
  } else {
    decode_array(parse_format(a.type == InputType::kFloat16 ? "float16" : "bfloat16"),
                 reinterpret_cast<const uint8_t*>(a.data()), out.data(), n, false, ArrayOptions{});
  }
  return out;
}

}  // namespace lowbit::cli

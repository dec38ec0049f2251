// `lowbit ggml`: raw ggml block codecs on arrays.
//
//   lowbit ggml quantize --type T IN.npy OUT.bin [--importance W.npy] [--threads N]
//   lowbit ggml dequantize --type T --shape R,C IN.bin OUT.npy
//
// quantize writes the concatenated block bytes of each row exactly as a
// GGUF tensor holds them; dequantize reads such bytes back to a float32 .npy.
// See docs/ggml_types.md for the types and the reference each one matches.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/ggml/row_codec.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {

struct GgmlArgs {
  std::string type, in, out, importance, shape;
  ThreadsFlag threads, dequantize_threads;  // one flag object per subcommand
  bool allow_nonfinite = false, timing = false;
};

// The names of the types `can` accepts, from the type table: the help
// never falls behind the codecs.
std::string type_list(bool (*can)(GgmlType)) {
  std::string s;
  for (const GgmlTypeInfo& t : ggml_types()) {
    if (can(t.type)) s.append(s.empty() ? "" : ", ").append(t.name);
  }
  return s;
}

GgmlType parse_type(const std::string& name) {
  const auto t = ggml_type_by_name(name);
  if (!t) fail_usage("unknown ggml type '" + name + "'; use a llama.cpp type name such as Q4_K, Q8_0, MXFP4 or F16");
  return t->type;
}

void check_finite(const std::vector<float>& v, const std::string& path, bool allow) {
  if (allow) return;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      fail_input("'" + path + "' holds a non-finite value at element " + std::to_string(i) +
                 "; pass --allow-nonfinite to encode it as ggml would (docs/ggml_types.md)");
    }
  }
}

void run_quantize(const GgmlArgs& a) {
  const GgmlType t = parse_type(a.type);
  if (!ggml_can_quantize(t)) ggml_quantize_row(t, nullptr, 0, nullptr);  // the usage error listing the types
  if (!is_npy(a.in)) fail_usage("ggml quantize reads a .npy array; got '" + a.in + "'");
  const int threads = a.threads.resolve();
  check_array_paths(a.out, {a.in, a.importance});
  const FloatArray arr = read_floats(a.in);
  if (arr.shape.empty() || arr.shape.size() > 2) {
    fail_input("'" + a.in + "' must be a 1-D (one row) or 2-D (rows x cols) array; it has " +
               std::to_string(arr.shape.size()) + " dimensions");
  }
  const uint64_t rows = arr.shape.size() == 2 ? arr.shape[0] : 1, cols = arr.shape.back();
  if (rows == 0 || cols == 0) fail_input("'" + a.in + "' holds no elements: there is nothing to quantize");
  const std::vector<float> x = to_float32(arr);
  check_finite(x, a.in, a.allow_nonfinite);
  const uint64_t bytes = mul_or_fail(rows, ggml_row_bytes(t, cols, "'" + a.in + "' row"), "output size");
  std::vector<float> w;
  if (!a.importance.empty()) {
    w = to_float32(read_floats(a.importance));
    if (w.size() != cols) {
      fail_input("importance weights '" + a.importance + "' hold " + std::to_string(w.size()) +
                 " values; expected one per column (" + std::to_string(cols) + ")");
    }
    for (float v : w) {
      if (!std::isfinite(v) || v < 0) fail_input("importance weights '" + a.importance + "' must be finite and >= 0");
    }
  }
  std::vector<uint8_t> out(bytes);
  const auto t0 = std::chrono::steady_clock::now();
  ggml_quantize_rows(t, x.data(), rows, cols, out.data(), w.empty() ? nullptr : w.data(), threads);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_file_atomic(a.out, out.data(), out.size());
  if (a.timing) {
    std::fprintf(stderr, "quantized %llu x %llu to %s in %.6f s: %.1f MB/s of float32 input\n",
                 static_cast<unsigned long long>(rows), static_cast<unsigned long long>(cols), a.type.c_str(), s,
                 static_cast<double>(x.size()) * 4 / s / 1e6);
  }
}

uint64_t parse_dim(const std::string& s, const std::string& spec) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
    fail_usage("--shape '" + spec + "' must be R,C with decimal integers");
  }
  return std::stoull(s);
}

void run_dequantize(const GgmlArgs& a) {
  const GgmlType t = parse_type(a.type);
  if (!ggml_can_dequantize(t)) ggml_dequantize_row(t, nullptr, 0, nullptr);
  if (!is_npy(a.out)) fail_usage("ggml dequantize writes a .npy array; got '" + a.out + "'");
  const int threads = a.dequantize_threads.resolve();
  check_array_paths(a.out, {a.in});
  const size_t comma = a.shape.find(',');
  if (comma == std::string::npos) fail_usage("--shape '" + a.shape + "' must be R,C (rows,cols)");
  const uint64_t rows = parse_dim(a.shape.substr(0, comma), a.shape);
  const uint64_t cols = parse_dim(a.shape.substr(comma + 1), a.shape);
  const uint64_t elems = mul_or_fail(rows, cols, "--shape element count");
  const uint64_t bytes = mul_or_fail(rows, ggml_row_bytes(t, cols, "--shape row"), "--shape byte count");
  mul_or_fail(elems, 4, "output size");
  const std::vector<std::byte> in = read_file(a.in);
  if (in.size() != bytes) {
    fail_input("'" + a.in + "' holds " + std::to_string(in.size()) + " bytes; " + std::to_string(rows) + " rows of " +
               std::to_string(cols) + " " + a.type + " elements take " + std::to_string(bytes));
  }
  std::vector<float> out(elems);
  ggml_dequantize_rows(t, reinterpret_cast<const uint8_t*>(in.data()), rows, cols, out.data(), threads);
  write_array(a.out, "<f4", {rows, cols}, out.data(), out.size() * 4);
}

}  // namespace

Action add_ggml_command(CLI::App& app) {
  auto a = std::make_shared<GgmlArgs>();
  auto* cmd = app.add_subcommand("ggml", "Raw ggml (llama.cpp) block codecs: quantize rows to GGUF tensor bytes, or back");
  cmd->require_subcommand(1);
  auto* q = cmd->add_subcommand("quantize", "Encode a float .npy (rows x cols) into concatenated ggml blocks");
  q->add_option("--type", a->type, "ggml type: " + type_list(ggml_can_quantize))->required();
  q->add_option("--importance", a->importance, "importance weights, one per column (.npy), as llama.cpp's imatrix");
  a->threads.add_to(q);
  q->add_flag("--allow-nonfinite", a->allow_nonfinite, "encode NaN/inf as ggml would instead of refusing them");
  q->add_flag("--timing", a->timing, "print the quantization time and rate to stderr");
  q->add_option("IN", a->in, "input array (.npy: float32, float16 or float64; 1-D or 2-D)")->required();
  q->add_option("OUT", a->out, "output file of raw block bytes")->required();
  auto* d = cmd->add_subcommand("dequantize", "Decode concatenated ggml blocks into a float32 .npy");
  d->add_option("--type", a->type, "ggml type: " + type_list(ggml_can_dequantize))->required();
  d->add_option("--shape", a->shape, "rows,cols of the tensor")->required();
  a->dequantize_threads.add_to(d);
  d->add_option("IN", a->in, "input file of raw block bytes")->required();
  d->add_option("OUT", a->out, "output array (.npy, float32)")->required();
  cmd->footer("Example: lowbit ggml quantize --type Q4_K w.npy w.q4k && lowbit ggml dequantize --type Q4_K --shape 4096,4096 w.q4k w2.npy");
  return [a, q] {
    if (q->parsed()) {
      run_quantize(*a);
    } else {
      run_dequantize(*a);
    }
  };
}

}  // namespace lowbit::cli

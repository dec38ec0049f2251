// Array operations: encode, decode and fakequant over whole arrays, split into
// chunks across threads, each chunk run by the best SIMD path for this CPU.
//
// Results are bit-identical to the scalar model (Codec) for every format,
// rounding mode, overflow policy, SIMD target and thread count: chunks are
// fixed-size and independent, and stochastic rounding draws its bits from the
// element index, never from a stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"
#include "lowbit/kernels/kernel_plan.h"

namespace lowbit {

struct ArrayOptions {
  RoundOptions round;
  int threads = 0;            // 0: default_thread_count()
  uint64_t index_offset = 0;  // index of element 0, for stochastic rounding
};

// Element types accepted as input. float16/bfloat16/float32 convert to
// float32 exactly and take the SIMD path; float64 is rounded once by the
// scalar model.
enum class InputType : uint8_t { kFloat32, kFloat64, kFloat16, kBFloat16 };

// Elements per chunk: a multiple of every packing group (2, 4, 5, 8), so
// packed chunks start on byte boundaries.
inline constexpr size_t kChunkElements = 40960;

// Encode n floats to codes: format.code_bytes() bytes each, little-endian,
// or the packed layout (packing.h) when `packed` is true. `out` must hold
// encoded_bytes(format, n, packed) bytes.
uint64_t encoded_bytes(const Format& f, uint64_t n, bool packed);
void encode_array(const Format& f, const float* in, uint8_t* out, size_t n, bool packed,
                  const ArrayOptions& opt);
void encode_array(const Format& f, InputType type, const void* in, uint8_t* out, size_t n,
                  bool packed, const ArrayOptions& opt);

// Decode n codes to float32. Throws Error(kInput) naming a code that is not
// a code of the format (wider than it, or unused: see Codec::is_valid_code).
void decode_array(const Format& f, const uint8_t* in, float* out, size_t n, bool packed,
                  const ArrayOptions& opt);

// out[i] = decode(encode(in[i])). in == out is allowed.
void fakequant_array(const Format& f, const float* in, float* out, size_t n,
                     const ArrayOptions& opt);
void fakequant_array(const Format& f, const double* in, double* out, size_t n,
                     const ArrayOptions& opt);

// The kernel plan of a format and rounding options, honouring
// set_kernel_target(kScalar) (which makes every kernel run the scalar
// model). Throws Error(kUsage) for bad stochastic-rounding bits.
KernelPlan make_kernel_plan(const Format& f, const RoundOptions& round);

// ---- SIMD target control (tests and benchmarks) ----
// kScalar is lowbit's reference model itself; kBaseline is Highway's portable
// target (EMU128 or SCALAR), then the x86 SIMD targets.
enum class KernelTarget : uint8_t { kScalar, kBaseline, kAvx2, kAvx512 };
const char* kernel_target_name(KernelTarget t);
// Targets this build has and this CPU runs, kScalar (the reference model)
// first.
std::vector<KernelTarget> available_targets();
// Restricts dispatch to `t` (kScalar: the reference model, no SIMD);
// process-wide, not thread-safe; reset_kernel_target() restores the default.
void set_kernel_target(KernelTarget t);
void reset_kernel_target();
KernelTarget current_kernel_target();

}  // namespace lowbit

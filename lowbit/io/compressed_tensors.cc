#include "lowbit/io/compressed_tensors.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/format/packing.h"
#include "lowbit/io/compressed_tensors_pack.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/reciprocal_scale.h"
#include "lowbit/quant/scale_coder.h"

namespace lowbit {

namespace {

constexpr struct {
  CtFormat format;
  const char* name;
} kFormats[] = {
    {CtFormat::kPackQuantized, "pack-quantized"},
    {CtFormat::kFloatQuantized, "float-quantized"},
    {CtFormat::kNvfp4PackQuantized, "nvfp4-pack-quantized"},
    {CtFormat::kMxfp4PackQuantized, "mxfp4-pack-quantized"},
    {CtFormat::kMxfp8Quantized, "mxfp8-quantized"},
};

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(shape[i]));
  return s + "]";
}

uint64_t cdiv(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// The scale tensor's dtype for the int and float8 layouts: the scale
// format's own where safetensors has it, else float32, which holds every
// scale value lowbit computes with (scales are float32 values).
DType float_scale_dtype(const Format& f) {
  if (f.name == "float16") return DType::kF16;
  if (f.name == "bfloat16") return DType::kBF16;
  return DType::kF32;
}

bool is_own_dtype(const Format& f, DType dt) {
  return (f.name == "float32" && dt == DType::kF32) || (f.name == "float16" && dt == DType::kF16) ||
         (f.name == "bfloat16" && dt == DType::kBF16);
}

const char* scale_format_of(DType dt) {
  switch (dt) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    default: return nullptr;
  }
}

bool is_e8m0(const Format& f) { return f.name == "float8_e8m0fnu"; }
bool is_ue4m3(const Format& f) { return f.name == "ue4m3"; }

[[noreturn]] void refuse(const std::string& spec, const std::string& name, const std::string& why) {
  std::string msg = "compressed-tensors cannot store ";
  if (!name.empty()) msg += "'" + name + "' with ";
  msg += spec + ": " + why + "; it stores " + ct_storable_schemes();
  fail_usage(msg);
}
[[noreturn]] void refuse(const Scheme& s, const std::string& name, const std::string& why) { refuse(s.spec(), name, why); }

// q's scales as a tensor of dtype dt (its own bytes, or float32 values).
std::vector<uint8_t> scale_bytes(const Format& f, const std::vector<uint8_t>& scales, uint64_t n, DType dt) {
  if (is_own_dtype(f, dt)) return scales;
  const ScaleCoder sc(f);
  const std::vector<uint32_t> codes = load_codes(f, scales, n);
  std::vector<uint8_t> out(n * 4);
  for (uint64_t i = 0; i < n; ++i) {
    const float v = sc.decode(codes[i]);
    std::memcpy(out.data() + i * 4, &v, 4);
  }
  return out;
}

std::string hex_bits(float v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", std::bit_cast<uint32_t>(v));
  return buf;
}

std::vector<uint8_t> le_bytes_f32(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

}  // namespace

const char* ct_format_name(CtFormat f) {
  for (const auto& e : kFormats) {
    if (e.format == f) return e.name;
  }
  return "?";
}

std::optional<CtFormat> find_ct_format(std::string_view name) {
  for (const auto& e : kFormats) {
    if (name == e.name) return e.format;
  }
  return std::nullopt;
}

std::string ct_format_names() {
  std::string s;
  for (const auto& e : kFormats) s += std::string(s.empty() ? "" : ", ") + e.name;
  return s;
}

std::string ct_storable_schemes() {
  return "int2..int8 per channel or per group g<N> (N dividing in_features), symmetric or /asym "
         "(pack-quantized); float8_e4m3fn per tensor, per channel or in R x C blocks such as b128x128 "
         "(float-quantized); nvfp4 (in_features a multiple of 16); mxfp4 and mxfp8_e4m3 (in_features a "
         "multiple of 32); 2-D weights only, without outliers";
}

CtPlan plan_compressed_tensors(const TensorCodec& c, const std::vector<uint64_t>& shape, const std::string& name) {
  if (!c.generic()) {
    refuse(c.spec(), name, "llama.cpp's block layouts are not compressed-tensors layouts (int8/g32 and int4/g32 are)");
  }
  return plan_compressed_tensors(c.scheme(), shape, name);
}

CtPlan plan_compressed_tensors(const Scheme& s, const std::vector<uint64_t>& shape, const std::string& name) {
  if (s.outliers.kind != OutlierPolicy::Kind::kNone) refuse(s, name, "compressed-tensors has no outlier tensors");
  if (shape.size() != 2 || shape[0] == 0 || shape[1] == 0) {
    refuse(s, name, "it holds non-empty 2-D weights [out_features, in_features], not shape " + shape_string(shape));
  }
  const uint64_t out = shape[0], in = shape[1];
  (void)mul_or_fail(out, in, "weight size");
  CtPlan p;
  p.scheme = s;
  p.shape = shape;
  const Format& e = s.element;
  const Granularity& g = s.gran;
  const bool channel0 = g.kind == Granularity::Kind::kChannel && g.axis == 0;
  const auto need_multiple = [&](uint64_t n, const char* what) {
    if (in % n != 0) {
      refuse(s, name, "in_features " + std::to_string(in) + " is not a multiple of " + std::to_string(n) + " (" +
                          what + ")");
    }
  };
  if (s.zero == ZeroPoint::kFloat) {
    refuse(s, name, "zero points are integers in compressed-tensors (/asym, not /asym=float)");
  }

  if (e.family == Family::kInteger && !e.ternary) {
    const int b = e.bits;
    if (b < 2 || b > 8) refuse(s, name, "pack-quantized holds 2- to 8-bit integers");
    if (s.zero == ZeroPoint::kNone && !e.is_signed) refuse(s, name, "unsigned integer elements need /asym");
    if (s.two_level()) refuse(s, name, "integer weights have one level of scales");
    uint64_t groups = 1;
    if (channel0) {
      p.args.strategy = "channel";
    } else if (g.kind == Granularity::Kind::kGroup) {
      need_multiple(g.group, "compressed-tensors and vLLM need whole groups");
      p.args.strategy = "group";
      p.args.group_size = g.group;
      groups = in / g.group;
    } else {
      refuse(s, name, "integer weights are stored per channel or per group (vLLM's pack-quantized loader has no " +
                          g.to_string() + " form)");
    }
    p.format = CtFormat::kPackQuantized;
    p.args.num_bits = b;
    p.args.type = "int";
    p.args.symmetric = s.zero == ZeroPoint::kNone;
    p.tensors.push_back({"weight_packed", DType::kI32, {out, ct_packed_words(in, b, "packed weight")}});
    p.tensors.push_back({"weight_scale", float_scale_dtype(s.scale_format), {out, groups}});
    if (!p.args.symmetric) {
      p.tensors.push_back({"weight_zero_point", DType::kI32, {ct_packed_words(out, b, "packed zero points"), groups}});
    }
    p.tensors.push_back({"weight_shape", DType::kI64, {2}});
    return p;
  }

  if (e.name == "float4_e2m1fn") {
    p.args.num_bits = 4;
    p.args.type = "float";
    p.args.strategy = "group";
    const bool g16 = g.kind == Granularity::Kind::kGroup && g.group == 16;
    const bool g32 = g.kind == Granularity::Kind::kGroup && g.group == 32;
    // Single-level E2M1 with UE4M3 scales is NVFP4 with a global scale of 1.
    const bool nv = g16 && is_ue4m3(s.scale_format) &&
                    (!s.two_level() || s.tensor_scale_format->name == "float32");
    if (nv) {
      need_multiple(16, "NVFP4 groups");
      p.format = CtFormat::kNvfp4PackQuantized;
      p.args.strategy = "tensor_group";
      p.args.group_size = 16;
      p.tensors.push_back({"weight_packed", DType::kU8, {out, in / 2}});
      p.tensors.push_back({"weight_scale", DType::kF8_E4M3, {out, in / 16}});
      p.tensors.push_back({"weight_global_scale", DType::kF32, {1}});
      return p;
    }
    if (g32 && is_e8m0(s.scale_format) && !s.two_level()) {
      need_multiple(32, "MXFP4 groups");
      p.format = CtFormat::kMxfp4PackQuantized;
      p.args.group_size = 32;
      p.tensors.push_back({"weight_packed", DType::kU8, {out, in / 2}});
      p.tensors.push_back({"weight_scale", DType::kU8, {out, in / 32}});
      return p;
    }
    refuse(s, name, "FP4 weights are stored as nvfp4 (g16, fp32*ue4m3 or ue4m3 scales) or mxfp4 (g32, e8m0 scales)");
  }

  if (e.name == "float8_e4m3fn") {
    if (s.two_level()) refuse(s, name, "float8 weights have one level of scales");
    p.args.num_bits = 8;
    p.args.type = "float";
    if (g.kind == Granularity::Kind::kGroup) {
      if (g.group != 32 || !is_e8m0(s.scale_format)) {
        refuse(s, name, "grouped float8 weights are stored only as mxfp8 (g32 with e8m0 scales)");
      }
      need_multiple(32, "MXFP8 groups");
      p.format = CtFormat::kMxfp8Quantized;
      p.args.strategy = "group";
      p.args.group_size = 32;
      p.args.scale_dtype = "torch.uint8";  // vLLM's _is_mxfp8 checks it
      p.tensors.push_back({"weight", DType::kF8_E4M3, {out, in}});
      p.tensors.push_back({"weight_scale", DType::kU8, {out, in / 32}});
      return p;
    }
    std::vector<uint64_t> scale_shape;
    if (g.kind == Granularity::Kind::kTensor) {
      p.args.strategy = "tensor";
      scale_shape = {1};
    } else if (channel0) {
      p.args.strategy = "channel";
      scale_shape = {out, 1};
    } else if (g.kind == Granularity::Kind::kBlock2D) {
      p.args.strategy = "block";
      p.args.block_structure = std::array<uint64_t, 2>{g.rows, g.cols};
      scale_shape = {cdiv(out, g.rows), cdiv(in, g.cols)};
    } else {
      refuse(s, name, "float8 weights are stored per tensor, per channel (axis 0) or in 2-D blocks");
    }
    p.format = CtFormat::kFloatQuantized;
    p.tensors.push_back({"weight", DType::kF8_E4M3, {out, in}});
    p.tensors.push_back({"weight_scale", float_scale_dtype(s.scale_format), scale_shape});
    return p;
  }
  refuse(s, name, "element format " + e.name + " has no compressed-tensors layout");
}

CtEncoded encode_compressed_tensors(const CtPlan& p, const QuantizedTensor& q) {
  if (q.scheme.spec() != p.scheme.spec() || q.shape != p.shape) {
    fail_usage("encode_compressed_tensors: the tensor is " + q.scheme.spec() + " " + shape_string(q.shape) +
               " but the plan is for " + p.scheme.spec() + " " + shape_string(p.shape));
  }
  const Scheme& s = q.scheme;
  const uint64_t out = q.shape[0], in = q.shape[1], n = out * in, nb = q.num_blocks();
  const Format cf = s.code_format();
  const auto check_size = [&](const char* what, uint64_t have, uint64_t want) {
    if (have != want) {
      fail_input(std::string("quantized tensor: ") + what + " hold " + std::to_string(have) + " bytes, " + s.spec() +
                 " " + shape_string(q.shape) + " needs " + std::to_string(want));
    }
  };
  check_size("codes", q.codes.size(), component_bytes(cf, n));
  check_size("scales", q.scales.size(), component_bytes(s.scale_format, nb));
  if (s.zero == ZeroPoint::kInteger) check_size("zero points", q.zeros.size(), component_bytes(cf, nb));

  CtEncoded enc;
  for (const CtTensorDecl& d : p.tensors) {
    CtTensorData t{d, {}};
    t.bytes.resize(*tensor_nbytes(d.dtype, d.shape));
    enc.tensors.push_back(std::move(t));
  }
  const auto tensor = [&](const char* suffix) -> CtTensorData& {
    for (auto& t : enc.tensors) {
      if (t.decl.suffix == suffix) return t;
    }
    fail_internal(std::string("compressed-tensors plan has no ") + suffix);
  };
  const auto data = [&](const char* suffix) -> std::vector<uint8_t>& { return tensor(suffix).bytes; };
  const DType scale_dtype = tensor("weight_scale").decl.dtype;
  switch (p.format) {
    case CtFormat::kPackQuantized: {
      const int b = p.args.num_bits;
      // Symmetric codes are two's complement; compressed-tensors stores
      // value + 2^(b-1). Asym codes are already the unsigned q.
      const uint8_t flip = p.args.symmetric ? static_cast<uint8_t>(1u << (b - 1)) : 0;
      ct_pack_rows(q.codes.data(), out, in, b, flip, data("weight_packed").data());
      data("weight_scale") = scale_bytes(s.scale_format, q.scales, nb, scale_dtype);
      if (!p.args.symmetric) {
        // The zero point z (0..2^b-1) is stored as z - 2^(b-1) + 2^(b-1).
        ct_pack_columns(q.zeros.data(), out, nb / out, b, 0, data("weight_zero_point").data());
      }
      const int64_t dims[2] = {static_cast<int64_t>(out), static_cast<int64_t>(in)};
      std::memcpy(data("weight_shape").data(), dims, sizeof dims);
      break;
    }
    case CtFormat::kFloatQuantized:
      data("weight") = q.codes;
      data("weight_scale") = scale_bytes(s.scale_format, q.scales, nb, scale_dtype);
      break;
    case CtFormat::kNvfp4PackQuantized: {
      data("weight_packed") = q.codes;  // E2M1 nibbles, low nibble first: rows are whole bytes
      for (uint64_t i = 0; i < q.scales.size(); ++i) {
        if (q.scales[i] > 0x7f) {
          fail_input("quantized tensor: block scale " + std::to_string(i) + " has code " +
                     std::to_string(q.scales[i]) + ", not a UE4M3 code (top bit set)");
        }
      }
      data("weight_scale") = q.scales;  // UE4M3 codes are the non-negative float8_e4m3fn bytes
      const float st = s.two_level() ? std::bit_cast<float>(q.tensor_scale) : 1.0f;
      const ReciprocalScale gs = reciprocal_preimage(st);
      if (!gs.exact) {
        enc.inexact = "NVFP4 tensor scale " + std::to_string(st) + " (" + hex_bits(st) +
                      ") is not 1/g for any float32 g; weight_global_scale " + hex_bits(gs.g) +
                      " gives 1/g = " + hex_bits(gs.back) + ", which vLLM and lowbit's reader use";
      }
      data("weight_global_scale") = le_bytes_f32(gs.g);
      break;
    }
    case CtFormat::kMxfp4PackQuantized:
      data("weight_packed") = q.codes;
      data("weight_scale") = q.scales;  // E8M0 codes as uint8
      break;
    case CtFormat::kMxfp8Quantized:
      data("weight") = q.codes;
      data("weight_scale") = q.scales;
      break;
  }
  return enc;
}

namespace {

// Reading one module's tensors, with messages that name them.
struct Reader {
  const std::map<std::string, CtTensorView>& tensors;
  const std::string& module;
  const std::string& file;  // empty: not from a file

  [[noreturn]] void bad(const std::string& why) const {
    std::string msg = "compressed-tensors weight '" + module + "'";
    if (!file.empty()) msg.append(" in '").append(file).append("'");
    fail_input(msg + ": " + why);
  }

  const CtTensorView& need(const char* suffix) const {
    const auto it = tensors.find(suffix);
    if (it == tensors.end()) bad(std::string("the checkpoint has no ") + module + "." + suffix);
    const CtTensorView& v = it->second;
    const auto nbytes = tensor_nbytes(v.dtype, v.shape);
    if (!nbytes || *nbytes != v.bytes.size()) {
      bad(std::string(suffix) + " holds " + std::to_string(v.bytes.size()) + " bytes, not the size of " +
          dtype_name(v.dtype) + " " + shape_string(v.shape));
    }
    return v;
  }

  // The tensor, which must have one of `dtypes` and rank `rank`.
  const CtTensorView& need(const char* suffix, std::initializer_list<DType> dtypes, size_t rank) const {
    const CtTensorView& v = need(suffix);
    bool ok = false;
    std::string names;
    for (DType d : dtypes) {
      ok |= d == v.dtype;
      names += std::string(names.empty() ? "" : " or ") + dtype_name(d);
    }
    if (!ok) bad(std::string(suffix) + " has dtype " + dtype_name(v.dtype) + ", expected " + names);
    if (v.shape.size() != rank) {
      bad(std::string(suffix) + " has shape " + shape_string(v.shape) + ", expected rank " + std::to_string(rank));
    }
    return v;
  }

  void expect_shape(const char* suffix, const CtTensorView& v, const std::vector<uint64_t>& shape) const {
    if (v.shape != shape) {
      bad(std::string(suffix) + " has shape " + shape_string(v.shape) + ", expected " + shape_string(shape));
    }
  }
};

std::vector<uint8_t> bytes_of(const CtTensorView& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.bytes.data());
  return std::vector<uint8_t>(p, p + v.bytes.size());
}

int64_t read_i64(const CtTensorView& v, size_t i) {
  if (v.dtype == DType::kI32) {
    int32_t x;
    std::memcpy(&x, v.bytes.data() + i * 4, 4);
    return x;
  }
  int64_t x;
  std::memcpy(&x, v.bytes.data() + i * 8, 8);
  return x;
}

// Checks the args against what the format can mean.
void check_args(const Reader& r, CtFormat f, const CtArgs& a) {
  const auto want = [&](bool ok, const std::string& what) {
    if (!ok) {
      r.bad(std::string(ct_format_name(f)) + " with " + what + " is not a layout lowbit reads (num_bits " +
            std::to_string(a.num_bits) + ", type " + a.type + ", strategy " + a.strategy + ")");
    }
  };
  switch (f) {
    case CtFormat::kPackQuantized:
      want(a.type == "int" && a.num_bits >= 2 && a.num_bits <= 8, "other than 2..8-bit integers");
      want(a.strategy == "channel" || (a.strategy == "group" && a.group_size && *a.group_size > 0),
           "a strategy other than channel or group");
      break;
    case CtFormat::kFloatQuantized:
      want(a.type == "float" && a.num_bits == 8 && a.symmetric, "other than symmetric float8 weights");
      want(a.strategy == "tensor" || a.strategy == "channel" ||
               (a.strategy == "block" && a.block_structure && (*a.block_structure)[0] > 0 &&
                (*a.block_structure)[1] > 0),
           "a strategy other than tensor, channel or block");
      break;
    case CtFormat::kNvfp4PackQuantized:
      want(a.type == "float" && a.num_bits == 4 && a.symmetric && a.strategy == "tensor_group" && a.group_size &&
               *a.group_size == 16,
           "other than symmetric 4-bit float tensor_group weights of group 16");
      break;
    case CtFormat::kMxfp4PackQuantized:
    case CtFormat::kMxfp8Quantized:
      want(a.type == "float" && a.num_bits == (f == CtFormat::kMxfp4PackQuantized ? 4 : 8) && a.symmetric &&
               a.strategy == "group" && a.group_size && *a.group_size == 32,
           "other than symmetric float group weights of group 32");
      break;
  }
}

QuantizedTensor make(const std::string& spec, uint64_t out, uint64_t in) {
  QuantizedTensor q;
  q.scheme = parse_scheme(spec);
  q.shape = {out, in};
  return q;
}

QuantizedTensor decode_pack(const Reader& r, const CtArgs& a) {
  const int b = a.num_bits;
  const CtTensorView& packed = r.need("weight_packed", {DType::kI32}, 2);
  const CtTensorView& wshape = r.need("weight_shape", {DType::kI64, DType::kI32}, 1);
  r.expect_shape("weight_shape", wshape, {2});
  const int64_t so = read_i64(wshape, 0), si = read_i64(wshape, 1);
  if (so <= 0 || si <= 0) r.bad("weight_shape holds " + std::to_string(so) + ", " + std::to_string(si));
  const uint64_t out = static_cast<uint64_t>(so), in = static_cast<uint64_t>(si);
  (void)mul_or_fail(out, in, "compressed-tensors weight size");
  r.expect_shape("weight_packed", packed, {out, ct_packed_words(in, b, "packed weight")});
  uint64_t groups = 1;
  if (a.strategy == "group") {
    if (in % *a.group_size != 0) {
      r.bad("in_features " + std::to_string(in) + " is not a multiple of group_size " + std::to_string(*a.group_size));
    }
    groups = in / *a.group_size;
  }
  const CtTensorView& scale = r.need("weight_scale", {DType::kF32, DType::kF16, DType::kBF16}, 2);
  r.expect_shape("weight_scale", scale, {out, groups});
  std::string spec = "int:" + std::to_string(b) + "/" +
                     (a.strategy == "group" ? "g" + std::to_string(*a.group_size) : std::string("channel")) +
                     "/sf=" + scale_format_of(scale.dtype);
  if (!a.symmetric) spec += "/asym";
  QuantizedTensor q = make(spec, out, in);
  const Format cf = q.scheme.code_format();
  q.codes.resize(component_bytes(cf, out * in));
  ct_unpack_rows(reinterpret_cast<const uint8_t*>(packed.bytes.data()), out, in, b,
                 a.symmetric ? static_cast<uint8_t>(1u << (b - 1)) : 0, q.codes.data());
  q.scales = bytes_of(scale);
  if (!a.symmetric) {
    const CtTensorView& zp = r.need("weight_zero_point", {DType::kI32}, 2);
    r.expect_shape("weight_zero_point", zp, {ct_packed_words(out, b, "packed zero points"), groups});
    q.zeros.resize(component_bytes(cf, out * groups));
    ct_unpack_columns(reinterpret_cast<const uint8_t*>(zp.bytes.data()), out, groups, b, 0, q.zeros.data());
  }
  return q;
}

QuantizedTensor decode_float8(const Reader& r, const CtArgs& a) {
  const CtTensorView& w = r.need("weight", {DType::kF8_E4M3}, 2);
  const uint64_t out = w.shape[0], in = w.shape[1];
  if (out == 0 || in == 0) r.bad("weight has shape " + shape_string(w.shape));
  const CtTensorView& scale = r.need("weight_scale");
  if (!scale_format_of(scale.dtype)) {
    r.bad(std::string("weight_scale has dtype ") + dtype_name(scale.dtype) + ", expected F32, F16 or BF16");
  }
  std::string gran;
  if (a.strategy == "tensor") {
    gran = "tensor";
    if (scale.shape != std::vector<uint64_t>{1} && !scale.shape.empty()) r.expect_shape("weight_scale", scale, {1});
  } else if (a.strategy == "channel") {
    gran = "channel";
    r.expect_shape("weight_scale", scale, {out, 1});
  } else {
    const auto [br, bc] = *a.block_structure;
    gran = "b" + std::to_string(br) + "x" + std::to_string(bc);
    r.expect_shape("weight_scale", scale, {cdiv(out, br), cdiv(in, bc)});
  }
  QuantizedTensor q = make(std::string("float8_e4m3fn/") + gran + "/sf=" + scale_format_of(scale.dtype), out, in);
  q.codes = bytes_of(w);
  q.scales = bytes_of(scale);
  return q;
}

// NVFP4, MXFP4 and MXFP8: codes and block scales byte for byte.
QuantizedTensor decode_microscaled(const Reader& r, CtFormat f) {
  const bool fp4 = f != CtFormat::kMxfp8Quantized;
  const uint64_t group = f == CtFormat::kNvfp4PackQuantized ? 16 : 32;
  const CtTensorView& w = fp4 ? r.need("weight_packed", {DType::kU8}, 2) : r.need("weight", {DType::kF8_E4M3}, 2);
  const uint64_t out = w.shape[0], in = fp4 ? mul_or_fail(w.shape[1], 2, "weight size") : w.shape[1];
  if (out == 0 || in == 0 || in % group != 0) {
    r.bad(std::string(fp4 ? "weight_packed" : "weight") + " has shape " + shape_string(w.shape) +
          ": in_features must be a positive multiple of " + std::to_string(group));
  }
  (void)mul_or_fail(out, in, "compressed-tensors weight size");
  const bool nv = f == CtFormat::kNvfp4PackQuantized;
  const CtTensorView& scale = r.need("weight_scale", {nv ? DType::kF8_E4M3 : DType::kU8}, 2);
  r.expect_shape("weight_scale", scale, {out, in / group});
  QuantizedTensor q = make(nv ? "nvfp4" : fp4 ? "mxfp4" : "mxfp8_e4m3", out, in);
  q.codes = bytes_of(w);
  q.scales = bytes_of(scale);
  if (nv) {
    for (uint64_t i = 0; i < q.scales.size(); ++i) {
      if (q.scales[i] > 0x7f) {
        r.bad("weight_scale element " + std::to_string(i) + " is negative (byte " + std::to_string(q.scales[i]) +
              "); NVFP4 block scales are UE4M3, the non-negative float8_e4m3fn values");
      }
    }
    const CtTensorView& gs = r.need("weight_global_scale", {DType::kF32}, 1);
    r.expect_shape("weight_global_scale", gs, {1});
    float g;
    std::memcpy(&g, gs.bytes.data(), 4);
    if (!(g > 0.0f)) r.bad("weight_global_scale is " + std::to_string(g) + "; it must be positive");
    // vLLM multiplies the block scales by 1.0f / g (it stores the divisor).
    q.tensor_scale = std::bit_cast<uint32_t>(1.0f / g);
  }
  return q;
}

QuantizedTensor decode(CtFormat format, const CtArgs& args, const std::map<std::string, CtTensorView>& tensors,
                       const std::string& module, const std::string& file) {
  const Reader r{tensors, module, file};
  check_args(r, format, args);
  switch (format) {
    case CtFormat::kPackQuantized: return decode_pack(r, args);
    case CtFormat::kFloatQuantized: return decode_float8(r, args);
    case CtFormat::kNvfp4PackQuantized:
    case CtFormat::kMxfp4PackQuantized:
    case CtFormat::kMxfp8Quantized: return decode_microscaled(r, format);
  }
  fail_internal("unknown compressed-tensors format");
}

}  // namespace

QuantizedTensor decode_compressed_tensors(CtFormat format, const CtArgs& args,
                                          const std::map<std::string, CtTensorView>& tensors,
                                          const std::string& module) {
  return decode(format, args, tensors, module, "");
}

QuantizedTensor load_compressed_tensors_weight(const SafetensorsFile& file, const std::string& module, CtFormat format,
                                               const CtArgs& args) {
  std::map<std::string, CtTensorView> views;
  for (const char* suffix :
       {"weight", "weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_global_scale"}) {
    if (const TensorInfo* t = file.find(module + "." + suffix)) views[suffix] = {t->dtype, t->shape, t->bytes()};
  }
  return decode(format, args, views, module, file.path());
}

std::vector<size_t> declare_compressed_tensors(SafetensorsWriter& w, const std::string& module, const CtPlan& plan) {
  std::vector<size_t> idx;
  for (const CtTensorDecl& d : plan.tensors) idx.push_back(w.declare(module + "." + d.suffix, d.dtype, d.shape));
  return idx;
}

void write_compressed_tensors(SafetensorsWriter& w, const std::vector<size_t>& indices, const CtEncoded& enc) {
  if (indices.size() != enc.tensors.size()) {
    fail_usage("write_compressed_tensors: " + std::to_string(indices.size()) + " declared tensors for " +
               std::to_string(enc.tensors.size()) + " encoded ones");
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto& b = enc.tensors[i].bytes;
    if (w.tensor_nbytes(indices[i]) != b.size()) {
      fail_usage("write_compressed_tensors: tensor " + enc.tensors[i].decl.suffix + " was declared with " +
                 std::to_string(w.tensor_nbytes(indices[i])) + " bytes but encodes to " + std::to_string(b.size()));
    }
    if (!b.empty()) w.write_tensor_data(indices[i], b.data(), b.size());
  }
}

}  // namespace lowbit

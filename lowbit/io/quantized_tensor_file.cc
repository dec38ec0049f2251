#include "lowbit/io/quantized_tensor_file.h"

#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

namespace {

constexpr const char* kLayout = "quantized_tensor/1";

// The safetensors dtype that holds codes of `f` as they are, or a U* of the
// code width.
DType code_dtype(const Format& f) {
  if (f.name == "float32") return DType::kF32;
  if (f.name == "float16") return DType::kF16;
  if (f.name == "bfloat16") return DType::kBF16;
  if (f.name == "float8_e4m3fn") return DType::kF8_E4M3;
  if (f.name == "float8_e5m2") return DType::kF8_E5M2;
  if (f.name == "float8_e8m0fnu") return DType::kF8_E8M0;
  const int cb = f.code_bytes();
  return cb == 1 ? DType::kU8 : cb == 2 ? DType::kU16 : DType::kU32;
}

// Shape of a per-block component: [block rows, blocks per row] when the
// codes are whole bytes; the packed byte count otherwise.
std::vector<uint64_t> block_shape(const Format& f, const QuantizedTensor& q, uint64_t bytes) {
  // A fixed layout's scales are a flat list, one per block.
  if (q.fixed_codec) return {q.num_blocks()};
  if (f.bits >= 8) {
    const BlockGrid g = BlockGrid::make(q.shape, q.scheme.gran);
    return {g.row_mod, g.blocks_per_row};
  }
  return {bytes};
}

DType component_dtype(const Format& f) { return f.bits >= 8 ? code_dtype(f) : DType::kU8; }

std::string tensor_list(const std::vector<std::pair<std::string, const QuantizedTensor*>>& t) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [name, q] : t) j.push_back(name);
  return j.dump();
}

}  // namespace

void save_quantized_tensors(const std::string& path,
                            const std::vector<std::pair<std::string, const QuantizedTensor*>>& tensors) {
  SafetensorsWriter w(path);
  w.add_metadata("lowbit.layout", kLayout);
  w.add_metadata("lowbit.tensors", tensor_list(tensors));
  struct Pending {
    size_t index;
    const void* data;
    size_t bytes;
  };
  std::vector<Pending> pending;
  std::vector<std::vector<uint8_t>> keep;  // tensor-scale bytes live until written
  for (const auto& entry : tensors) {
    // (Not a structured binding: clang, which builds the fuzzers, cannot
    // capture those in the lambda below.)
    const std::string& name = entry.first;
    const QuantizedTensor& q = *entry.second;
    const Scheme& s = q.scheme;
    w.add_metadata(name + ".scheme", q.spec());
    w.add_metadata(name + ".shape", nlohmann::json(q.shape).dump());
    std::ostringstream o;
    o << q.outliers.count << " " << q.outliers.gap_bits << " " << q.outliers.position_bits;
    w.add_metadata(name + ".outliers", o.str());
    const auto add = [&](const std::string& suffix, DType dt, std::vector<uint64_t> shape, const void* data,
                         size_t bytes) {
      const size_t i = w.declare(name + suffix, dt, std::move(shape));
      pending.push_back({i, data, bytes});
    };
    add(".codes", DType::kU8, {q.codes.size()}, q.codes.data(), q.codes.size());
    const Format& sf = s.scale_format;
    add(".scales", component_dtype(sf), block_shape(sf, q, q.scales.size()), q.scales.data(), q.scales.size());
    if (s.two_level()) {
      const Format& tf = *s.tensor_scale_format;
      std::vector<uint8_t> b(tf.code_bytes());
      for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<uint8_t>(q.tensor_scale >> (8 * k));
      keep.push_back(std::move(b));
      add(".tensor_scale", code_dtype(tf), {}, keep.back().data(), keep.back().size());
    }
    if (s.zero != ZeroPoint::kNone) {
      const Format zf = s.zero == ZeroPoint::kInteger ? s.code_format() : sf;
      add(".zeros", component_dtype(zf), block_shape(zf, q, q.zeros.size()), q.zeros.data(), q.zeros.size());
    }
    if (q.outliers.count > 0) {
      add(".outlier_positions", DType::kU8, {q.outliers.positions.size()}, q.outliers.positions.data(),
          q.outliers.positions.size());
      add(".outlier_values", DType::kF16, {q.outliers.count}, q.outliers.values.data(), q.outliers.count * 2);
    }
  }
  w.begin();
  for (const auto& p : pending) {
    if (p.bytes) w.write_tensor_data(p.index, p.data, p.bytes);
  }
  w.commit();
}

QuantizedTensor load_quantized_tensor(const SafetensorsFile& file, const std::string& wanted) {
  const auto& md = file.metadata();
  const auto bad = [&](const std::string& why) -> void {
    fail_input("'" + file.path() + "' is not a lowbit quantized tensor file: " + why);
  };
  const auto layout = md.find("lowbit.layout");
  if (layout == md.end()) bad("no lowbit.layout metadata");
  if (layout->second != kLayout) bad("unknown layout '" + layout->second + "'");
  std::string name = wanted;
  if (name.empty()) {
    const auto list = md.find("lowbit.tensors");
    if (list == md.end()) bad("no lowbit.tensors metadata");
    nlohmann::json j = nlohmann::json::parse(list->second, nullptr, false);
    if (!j.is_array() || j.size() != 1 || !j[0].is_string()) bad("it holds several tensors; name one");
    name = j[0].get<std::string>();
  }
  const auto get = [&](const std::string& key) {
    const auto it = md.find(name + key);
    if (it == md.end()) bad("no " + name + key + " metadata");
    return it->second;
  };
  QuantizedTensor q;
  try {
    const auto codec = parse_codec(get(".scheme"));
    q.scheme = codec->scheme();
    // Fixed layouts are static objects; a generic one is the scheme itself.
    if (!codec->generic()) q.fixed_codec = codec.get();
  } catch (const Error& e) {
    bad(std::string("bad scheme: ") + e.what());
  }
  const nlohmann::json shape = nlohmann::json::parse(get(".shape"), nullptr, false);
  if (!shape.is_array()) bad("shape is not a JSON list");
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    q.shape.push_back(d.get<uint64_t>());
  }
  (void)q.numel();  // overflow check
  {
    std::istringstream in(get(".outliers"));
    in >> q.outliers.count >> q.outliers.gap_bits >> q.outliers.position_bits;
    if (!in) bad("malformed outlier metadata");
  }
  const auto bytes_of = [&](const std::string& suffix, std::vector<uint8_t>& out, uint64_t expect) {
    const TensorInfo& t = file.at(name + suffix);
    if (t.nbytes != expect) {
      bad(name + suffix + " holds " + std::to_string(t.nbytes) + " bytes, the scheme needs " + std::to_string(expect));
    }
    out.assign(reinterpret_cast<const uint8_t*>(t.data), reinterpret_cast<const uint8_t*>(t.data) + t.nbytes);
  };
  const Scheme& s = q.scheme;
  const uint64_t n = q.numel();
  const uint64_t nb = q.num_blocks();
  bytes_of(".codes", q.codes, component_bytes(s.code_format(), n));
  bytes_of(".scales", q.scales, component_bytes(s.scale_format, nb));
  if (s.two_level()) {
    std::vector<uint8_t> b;
    bytes_of(".tensor_scale", b, s.tensor_scale_format->code_bytes());
    q.tensor_scale = 0;
    for (size_t k = 0; k < b.size(); ++k) q.tensor_scale |= static_cast<uint32_t>(b[k]) << (8 * k);
  }
  if (s.zero == ZeroPoint::kInteger) bytes_of(".zeros", q.zeros, component_bytes(s.code_format(), nb));
  if (s.zero == ZeroPoint::kFloat) bytes_of(".zeros", q.zeros, component_bytes(s.scale_format, nb));
  if (q.outliers.count > 0) {
    const TensorInfo& pos = file.at(name + ".outlier_positions");
    q.outliers.positions.assign(reinterpret_cast<const uint8_t*>(pos.data),
                                reinterpret_cast<const uint8_t*>(pos.data) + pos.nbytes);
    std::vector<uint8_t> vals;
    bytes_of(".outlier_values", vals, q.outliers.count * 2);
    q.outliers.values.resize(q.outliers.count);
    std::memcpy(q.outliers.values.data(), vals.data(), vals.size());
  }
  return q;
}

}  // namespace lowbit

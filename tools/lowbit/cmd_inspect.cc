// `lowbit inspect FILE [--json]`: what a GGUF or safetensors file holds,
// its metadata (key, type, value) and every tensor (name, shape in numpy
// order, dtype or ggml type, bytes, bits per element, offset), after the
// container's full validation.
//
// The container is told by content, not by name: a file that starts with
// "GGUF" is GGUF, anything else is read as safetensors. FILE may also be the
// name of an installed model ("smollm2", see installed_models.h), a model
// directory or a sharded checkpoint's index: then every file is listed, in
// shard order.
//
// A compressed-tensors checkpoint (vLLM's format, lowbit's safetensors
// output) also gets the logical view that `lowbit quantize` reads: one row
// per quantized weight ("<module>.weight", its shape, "ct:<format>", the
// bytes of all its stored parts and their bits per element), and the
// activation/KV-cache scales quantize leaves out (checkpoint.h).
//
// --json prints one object:
//   {"file", "container": "gguf" | "safetensors", "file_size", (GGUF:
//    "version", "alignment", "data_start"), "metadata": {key: {"type", "value"}}
//    in file order (arrays: also "element_type" and "length", and "value"
//    holds at most the first 64 elements), "tensors": [{"name", "shape",
//    "dtype", "elements", "bytes", "bits_per_element", "offset"}]}, plus
//    for compressed-tensors "compressed_tensors": [{"name", "shape",
//    "dtype", "elements", "bytes", "bits_per_element"}] and
//    "omitted_tensors": [names]; a directory or index gives {"path",
//    "files": [one such object per file], and those two lists}.
// "offset" is the tensor's absolute position in the file. Floats are JSON
// numbers (exact: a float32 widened to double prints as a decimal that reads
// back to the same float32) except NaN and infinities, which are the strings
// "nan", "inf" and "-inf". Strings that are not UTF-8 show U+FFFD for the
// bad bytes.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kJsonArrayLimit = 64;   // array elements shown in --json
constexpr size_t kTableArrayLimit = 6;   // and in the table
constexpr size_t kTableTextLimit = 72;   // characters of a value in the table

struct InspectArgs {
  std::string file;
  bool json = false;
};

// One row of the tensor list, whatever the container.
struct TensorRow {
  std::string name;
  std::vector<uint64_t> shape;  // numpy order
  std::string dtype;
  uint64_t elements;
  uint64_t bytes;
  double bits_per_element;  // of the type, so also defined for empty tensors
  uint64_t offset;          // absolute, in the file
};

// What the table and the JSON are printed from.
struct Listing {
  Json header;                                     // file, container and its facts
  std::vector<std::pair<std::string, Json>> meta;  // key -> {"type", "value", ...}
  std::vector<TensorRow> tensors;
};

Json float_json(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

// A fixed-size scalar as JSON: integers exactly, floats as float_json.
Json scalar_json(const GgufValue& v) {
  const uint64_t bits = v.bits();
  switch (v.type()) {
    case GgufType::kBool:
      return bits != 0;
    case GgufType::kFloat32:
      return float_json(v.as<float>());
    case GgufType::kFloat64:
      return float_json(v.as<double>());
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: {
      const unsigned shift = 64 - 8 * static_cast<unsigned>(gguf_fixed_size(v.type()));
      return static_cast<int64_t>(bits << shift) >> shift;  // sign-extend
    }
    default:
      return bits;
  }
}

// A value as JSON: {"type", "value"}, arrays with "element_type" and
// "length" and at most `limit` elements.
Json value_json(const GgufValue& v, size_t limit) {
  Json out = {{"type", gguf_type_name(v.type())}};
  if (v.type() == GgufType::kString) {
    out["value"] = v.as_string();
    return out;
  }
  if (!v.is_array()) {
    out["value"] = scalar_json(v);
    return out;
  }
  const GgufType element = v.element_type();
  const size_t n = v.size();
  out["element_type"] = gguf_type_name(element);
  out["length"] = n;
  Json items = Json::array();
  for (size_t i = 0; i < n && i < limit; ++i) {
    if (element == GgufType::kString) {
      items.push_back(v.strings()[i]);
    } else if (element == GgufType::kArray) {
      items.push_back(value_json(v.arrays()[i], limit));
    } else {
      items.push_back(scalar_json(GgufValue::from_bits(element, v.element_bits(i))));
    }
  }
  out["value"] = std::move(items);
  return out;
}

Listing list_gguf(const GgufFile& file) {
  Listing l;
  l.header = {{"file", file.path()},
              {"container", "gguf"},
              {"file_size", file.file_size()},
              {"version", file.version()},
              {"alignment", file.alignment()},
              {"data_start", file.data_start()}};
  for (const GgufKv& kv : file.metadata()) l.meta.emplace_back(kv.key, value_json(kv.value, kJsonArrayLimit));
  for (const GgufTensorInfo& t : file.tensors()) {
    const GgmlTypeInfo type = ggml_type_info(t.type);
    l.tensors.push_back({t.name, t.shape(), std::string(type.name), t.numel, t.nbytes,
                         8.0 * type.block_bytes / type.block_elems, file.data_start() + t.offset});
  }
  return l;
}

Listing list_safetensors(const SafetensorsFile& file) {
  Listing l;
  l.header = {{"file", file.path()}, {"container", "safetensors"}, {"file_size", file.file_size()}};
  for (const auto& [key, value] : file.metadata()) {
    l.meta.emplace_back(key, Json{{"type", "STRING"}, {"value", value}});
  }
  for (const TensorInfo& t : file.tensors()) {
    l.tensors.push_back({t.name, t.shape, dtype_name(t.dtype), t.numel, t.nbytes,
                         static_cast<double>(dtype_bits(t.dtype)), file.data_start() + t.offset});
  }
  return l;
}

Listing list_file(const std::string& path) {
  const MappedFile head = MappedFile::open(path);
  const bool gguf = head.size() >= 4 && std::memcmp(head.data(), kGgufMagic, 4) == 0;
  // A regular file is mapped again by the container's reader; a pipe
  // (lowbit inspect <(cat m.gguf)) can be read only once, so its bytes,
  // already in memory, are handed over.
  const auto bytes = [&] { return std::vector<std::byte>(head.bytes().begin(), head.bytes().end()); };
  if (gguf) return list_gguf(head.is_mapped() ? GgufFile::open(path) : GgufFile::from_memory(bytes(), path));
  try {
    return list_safetensors(head.is_mapped() ? SafetensorsFile::open(path)
                                             : SafetensorsFile::from_memory(bytes(), path));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kInput) throw;
    fail_input(std::string("'").append(path).append(
        "' is neither a GGUF file (it does not start with \"GGUF\") nor a valid safetensors file: ")
                   .append(e.what()));
  }
}

std::string dump(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string shape_text(const std::vector<uint64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// One value as text: JSON, except that a FLOAT32 shows its shortest
// decimal (1e-05, where the JSON has the exact double 9.999999747378752e-06).
std::string value_text(const Json& value, bool float32) {
  if (float32 && value.is_number()) return fmt::format("{}", static_cast<float>(value.get<double>()));
  return dump(value);
}

// A metadata value in one table cell: arrays cut to a few elements,
// everything cut to a line.
std::string cell(const Json& entry) {
  std::string text;
  if (entry.contains("length")) {
    const bool float32 = entry["element_type"] == "FLOAT32";
    std::string items;
    for (size_t i = 0; i < entry["value"].size() && i < kTableArrayLimit; ++i) {
      if (i > 0) items += ", ";
      items += value_text(entry["value"][i], float32);
    }
    const size_t n = entry["length"].get<size_t>();
    text = fmt::format("{} elements: [{}{}]", n, items, n > kTableArrayLimit ? ", ..." : "");
  } else {
    text = value_text(entry["value"], entry["type"] == "FLOAT32");
  }
  if (text.size() > kTableTextLimit) text = text.substr(0, kTableTextLimit - 3).append("...");
  return text;
}

std::string type_cell(const Json& entry) {
  std::string type = entry["type"].get<std::string>();
  if (entry.contains("element_type")) type += fmt::format("[{}]", entry["element_type"].get<std::string>());
  return type;
}

// Tensor rows as aligned columns: name, shape, dtype (or format), bytes,
// bits per element, and the file offset where rows have one.
void print_rows(const std::vector<TensorRow>& rows, const char* dtype_title, bool offsets) {
  size_t name_width = 4, shape_width = 5, dtype_width = std::strlen(dtype_title);
  for (const TensorRow& t : rows) {
    name_width = std::max(name_width, t.name.size());
    shape_width = std::max(shape_width, shape_text(t.shape).size());
    dtype_width = std::max(dtype_width, t.dtype.size());
  }
  const auto w = [](size_t n) { return static_cast<int>(n); };
  std::printf("  %-*s  %-*s  %-*s  %14s  %9s", w(name_width), "name", w(shape_width), "shape", w(dtype_width),
              dtype_title, "bytes", "bits/elem");
  if (offsets) std::printf("  %14s", "offset");
  std::printf("\n");
  for (const TensorRow& t : rows) {
    std::printf("  %-*s  %-*s  %-*s  %14llu  %9.6g", w(name_width), t.name.c_str(), w(shape_width),
                shape_text(t.shape).c_str(), w(dtype_width), t.dtype.c_str(), static_cast<unsigned long long>(t.bytes),
                t.bits_per_element);
    if (offsets) {
      std::printf("  %14llu\n", static_cast<unsigned long long>(t.offset));
    } else {
      std::printf("\n");
    }
  }
}

void print_table(const Listing& l) {
  const Json& h = l.header;
  std::printf("%s: %s", h["file"].get<std::string>().c_str(), h["container"].get<std::string>().c_str());
  if (h.contains("version")) {
    std::printf(" v%u, alignment %u, data at byte %llu", h["version"].get<unsigned>(), h["alignment"].get<unsigned>(),
                static_cast<unsigned long long>(h["data_start"].get<uint64_t>()));
  }
  std::printf(", %llu bytes\n", static_cast<unsigned long long>(h["file_size"].get<uint64_t>()));

  std::printf("\nmetadata (%zu entries)\n", l.meta.size());
  size_t key_width = 3, type_width = 4;
  for (const auto& [key, entry] : l.meta) {
    key_width = std::max(key_width, key.size());
    type_width = std::max(type_width, type_cell(entry).size());
  }
  for (const auto& [key, entry] : l.meta) {
    std::printf("  %-*s  %-*s  %s\n", static_cast<int>(key_width), key.c_str(), static_cast<int>(type_width),
                type_cell(entry).c_str(), cell(entry).c_str());
  }

  std::printf("\ntensors (%zu)\n", l.tensors.size());
  print_rows(l.tensors, "dtype", true);
  uint64_t elements = 0, bytes = 0;
  for (const TensorRow& t : l.tensors) {
    elements += t.elements;
    bytes += t.bytes;
  }
  std::printf("\ntotal: %zu tensors, %llu elements, %llu bytes", l.tensors.size(),
              static_cast<unsigned long long>(elements), static_cast<unsigned long long>(bytes));
  if (elements > 0) std::printf(", %.4f bits per element", 8.0 * static_cast<double>(bytes) / static_cast<double>(elements));
  std::printf("\n");
}

// One tensor row as JSON; "offset" only where the row has one in a file.
Json row_json(const TensorRow& t, bool offset) {
  Json j = {{"name", t.name},          {"shape", t.shape}, {"dtype", t.dtype},
            {"elements", t.elements},  {"bytes", t.bytes}, {"bits_per_element", t.bits_per_element}};
  if (offset) j["offset"] = t.offset;
  return j;
}

Json listing_json(const Listing& l) {
  Json out = l.header;
  Json meta = Json::object();
  for (const auto& [key, entry] : l.meta) meta[key] = entry;
  out["metadata"] = std::move(meta);
  Json tensors = Json::array();
  for (const TensorRow& t : l.tensors) tensors.push_back(row_json(t, true));
  out["tensors"] = std::move(tensors);
  return out;
}

// The weights as lowbit reads them, where that differs from the stored
// tensors: compressed-tensors modules (empty otherwise).
struct LogicalView {
  std::vector<TensorRow> weights;  // offset 0: their parts lie apart
  std::vector<std::string> omitted;
};

void warn_unreadable(const std::string& why) {
  std::fprintf(stderr, "lowbit: warning: the compressed-tensors weights cannot be read: %s\n", why.c_str());
}

LogicalView logical_view(const Checkpoint& c) {
  LogicalView v;
  for (size_t i = 0; i < c.tensors().size(); ++i) {
    if (!c.is_compressed_weight(i)) continue;
    const CheckpointTensor& t = c.tensors()[i];
    v.weights.push_back({t.name, t.shape, t.dtype, t.numel, t.nbytes,
                         t.numel ? 8.0 * static_cast<double>(t.nbytes) / static_cast<double>(t.numel) : 0.0, 0});
  }
  v.omitted = c.omitted_activation_tensors();
  if (!c.undecodable_compressed_tensors().empty()) {
    warn_unreadable(c.undecodable_compressed_tensors());
  }
  return v;
}

void print_logical_table(const LogicalView& v) {
  if (v.weights.empty()) return;
  std::printf("\ncompressed-tensors weights, as lowbit quantize reads them (%zu)\n", v.weights.size());
  print_rows(v.weights, "format", false);
  if (!v.omitted.empty()) {
    std::printf("\nactivation/KV-cache scales that quantize leaves out (%zu): %s%s\n", v.omitted.size(),
                v.omitted[0].c_str(), v.omitted.size() > 1 ? ", ..." : "");
  }
}

Json logical_json(const LogicalView& v) {
  Json weights = Json::array();
  for (const TensorRow& t : v.weights) weights.push_back(row_json(t, false));
  return weights;
}

void run_inspect(const InspectArgs& a) {
  const std::string path = resolve_installed_model(a.file).value_or(a.file);
  std::error_code ec;
  std::vector<Listing> listings;
  LogicalView view;
  const bool model = std::filesystem::is_directory(path, ec) || path.ends_with(".json");
  if (model) {
    // Checkpoint finds the files (an index, one .safetensors or .gguf) and
    // validates them and any compressed-tensors layout.
    const Checkpoint c = Checkpoint::open(path);
    for (const std::string& f : c.files()) listings.push_back(list_file(f));
    view = logical_view(c);
  } else {
    listings.push_back(list_file(path));
    // A lone file may carry a compressed-tensors config (in its metadata,
    // or config.json beside it). A pipe cannot be read twice; and a layout
    // the reader refuses still leaves the stored tensors listed above.
    if (listings[0].header["container"] == "safetensors" && std::filesystem::is_regular_file(path, ec)) {
      try {
        view = logical_view(Checkpoint::open(path));
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kInput) throw;
        warn_unreadable(e.what());
      }
    }
  }
  if (a.json) {
    Json out;
    if (model) {
      out = {{"path", path}, {"files", Json::array()}};
      for (const Listing& l : listings) out["files"].push_back(listing_json(l));
    } else {
      out = listing_json(listings[0]);
    }
    if (!view.weights.empty()) out["compressed_tensors"] = logical_json(view);
    if (!view.omitted.empty()) out["omitted_tensors"] = view.omitted;
    std::printf("%s\n", dump(out, 1).c_str());
  } else {
    for (size_t i = 0; i < listings.size(); ++i) {
      if (i > 0) std::printf("\n");
      print_table(listings[i]);
    }
    print_logical_table(view);
  }
}

}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "List the metadata and tensors of a GGUF or safetensors file or model");
  cmd->add_flag("--json", a->json, "print one JSON object (arrays: the first 64 elements and the length)");
  cmd->add_option("FILE", a->file,
                  "a .gguf or .safetensors file, a model directory or sharded index, or an installed model name "
                  "such as smollm2")
      ->required();
  cmd->footer("Example: lowbit inspect smollm2 --json");
  return [a] { run_inspect(*a); };
}

}  // namespace lowbit::cli

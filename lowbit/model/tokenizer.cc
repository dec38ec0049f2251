#include "lowbit/model/tokenizer.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/io/gguf_format.h"
#include "lowbit/io/gguf_reader.h"

namespace lowbit {

Tokenizer::Tokenizer(Vocabulary vocab, SpecialTokenIds special) : vocab_(std::move(vocab)), special_(special) {
  const std::pair<const char*, int32_t> ids[] = {
      {"BOS", special_.bos}, {"EOS", special_.eos}, {"unknown", special_.unk}, {"padding", special_.pad}};
  for (const auto& [name, id] : ids) {
    if (id != -1 && !vocab_.contains(id)) {
      fail_input(fmt::format("the {} token id {} is outside the vocabulary (0..{})", name, id, vocab_.size() - 1));
    }
  }
  if (special_.add_bos && special_.bos < 0) fail_input("the tokenizer adds a BOS token but names none");
  if (special_.add_eos && special_.eos < 0) fail_input("the tokenizer adds an EOS token but names none");
}

namespace {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_json_file(const fs::path& path) {
  const std::vector<std::byte> bytes = read_file(path.string());
  return load_tokenizer_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                             path.string());
}

bool starts_with_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof kGgufMagic] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == sizeof magic && std::memcmp(magic, kGgufMagic, sizeof magic) == 0;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (ec || !fs::exists(st)) fail_input(fmt::format("model '{}' does not exist", path));
  if (fs::is_directory(st)) {
    const fs::path json = p / "tokenizer.json";
    if (!fs::exists(json, ec)) {
      fail_input(fmt::format("model directory '{}' has no tokenizer.json (lowbit reads a model directory's "
                             "tokenizer from it; a GGUF file carries its own)",
                             path));
    }
    return load_json_file(json);
  }
  if (starts_with_gguf_magic(p)) return load_gguf_tokenizer(GgufFile::open(path));
  if (p.extension() == ".json") return load_json_file(p);
  // A checkpoint that carries no tokenizer (safetensors): the Hugging Face
  // layout keeps it beside the weights.
  const fs::path beside = p.parent_path() / "tokenizer.json";
  if (fs::exists(beside, ec)) return load_json_file(beside);
  fail_input(fmt::format("'{}' carries no tokenizer: it is not a GGUF file and no tokenizer.json lies beside it in "
                         "'{}'",
                         path, p.parent_path().empty() ? "." : p.parent_path().string()));
}

}  // namespace lowbit

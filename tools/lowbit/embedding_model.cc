#include "tools/lowbit/embedding_model.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/text.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/model/unicode.h"

namespace lowbit::cli {

namespace {

std::unique_ptr<Tokenizer> wordpiece_tokenizer(const std::string& path) {
  std::unique_ptr<Tokenizer> tok = load_tokenizer(path);
  if (std::string(tok->kind()) != "wordpiece") {
    fail_input(fmt::format("'{}': a BERT model needs a WordPiece tokenizer, not {}", path, tok->describe()));
  }
  return tok;
}

}  // namespace

bool is_bert_directory(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path cfg = std::filesystem::path(path) / "config.json";
  if (!std::filesystem::is_directory(path, ec) || !std::filesystem::is_regular_file(cfg, ec)) return false;
  const std::vector<std::byte> bytes = read_file(cfg.string());
  const nlohmann::json j = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                                                  bytes.size()),
                                                 nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("model_type") && j["model_type"] == "bert";
}

VerseLines verse_lines(const std::vector<VersePair>& pairs) {
  VerseLines v;
  for (const VersePair& p : pairs) {
    if (!unicode::is_valid_utf8(p.kjv) || !unicode::is_valid_utf8(p.web)) {
      fail_input(fmt::format("corpus 'kjv-web': {} is not valid UTF-8", quote_untrusted(p.reference)));
    }
    v.kjv.push_back(p.kjv);
    v.web.push_back(p.web);
  }
  return v;
}

Checkpoint open_embedding_checkpoint(const std::string& path, std::string_view command) {
  Checkpoint ck = Checkpoint::open(path);
  if (ck.container() == Container::kGguf) {
    std::string arch = "unknown";
    if (const GgufFile* g = ck.gguf(); g && g->find("general.architecture")) {
      arch = g->get_string("general.architecture");
    }
    fail_input(fmt::format("'{}' is a GGUF model of architecture {}; {} runs BERT encoders "
                           "(a safetensors model directory with config.json, such as minilm)",
                           ck.path(), quote_untrusted(arch), command));
  }
  return ck;
}

EmbeddingModel::EmbeddingModel(const Checkpoint& ck, std::string path, int threads)
    : path_(std::move(path)),
      config_(load_bert_config(ck.directory())),
      pipeline_(load_sentence_pipeline(ck.directory(), config_)),
      tokenizer_(wordpiece_tokenizer(path_)),
      model_(BertModel::load(ck, config_, threads)) {}

std::vector<std::vector<int32_t>> EmbeddingModel::tokenize(std::span<const std::string_view> lines, int threads,
                                                           size_t* truncated) const {
  std::vector<std::vector<int32_t>> ids(lines.size());
  // The tokenizer is immutable and thread-safe; each line is its own task.
  ThreadPool::global().parallel_for(lines.size(), threads, [&](size_t i) {
    ids[i] = truncate_tokens(tokenizer_->encode(lines[i], /*add_special=*/true), pipeline_.max_seq_length);
  });
  if (truncated) {
    *truncated = 0;
    for (const auto& s : ids) *truncated += static_cast<int64_t>(s.size()) == pipeline_.max_seq_length;
  }
  return ids;
}

std::vector<float> EmbeddingModel::embed(std::span<const std::string_view> lines, size_t batch, int threads,
                                         const std::function<void(size_t)>& on_batch, size_t* at_limit) const {
  const int64_t d = dim();
  std::vector<float> out(lines.size() * static_cast<size_t>(d));
  size_t truncated = 0;
  for (size_t b0 = 0; b0 < lines.size(); b0 += batch) {
    const size_t n = std::min(batch, lines.size() - b0);
    size_t at = 0;
    const std::vector<std::vector<int32_t>> ids = tokenize(lines.subspan(b0, n), threads, &at);
    truncated += at;
    const std::vector<float> e = model_.embed(ids, pipeline_, threads);
    std::copy(e.begin(), e.end(), out.begin() + static_cast<int64_t>(b0) * d);
    if (on_batch) on_batch(b0 + n);
  }
  if (at_limit) *at_limit = truncated;
  return out;
}

}  // namespace lowbit::cli

#include "lowbit/train/training_data.h"

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/train/mix64.h"

namespace lowbit {

namespace {


}  // namespace

TextSplit split_text_files(const std::vector<std::string>& files, double holdout) {
  if (!(holdout > 0.0 && holdout <= 0.5)) {
    fail_input(fmt::format("the held-out fraction must lie in (0, 0.5], not {}", holdout));
  }
  if (files.empty()) fail_input("the training config names no text files");
  TextSplit split;
  for (const std::string& path : files) {
    const std::vector<std::byte> bytes = read_file(path);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - holdout));
    if (cut > 0 && cut < text.size() && text[cut - 1] != '\n') {
      const size_t nl = text.find('\n', cut);
      if (nl != std::string_view::npos && nl + 1 < text.size()) cut = nl + 1;
    }
    if (cut == 0 || cut >= text.size()) {
      fail_input(fmt::format("'{}' has {} bytes: too few to split off held-out text", path, text.size()));
    }
    split.train.emplace_back(text.substr(0, cut));
    split.heldout.emplace_back(text.substr(cut));
  }
  return split;
}

TokenCorpus tokenize_split(const TextSplit& split, const Tokenizer& tokenizer) {
  TokenCorpus c;
  c.vocab_size = tokenizer.vocab_size();
  for (const std::string& t : split.train) {
    const std::vector<int32_t> ids = tokenizer.encode(t, /*add_special=*/false);
    c.train.insert(c.train.end(), ids.begin(), ids.end());
  }
  for (const std::string& t : split.heldout) {
    const std::vector<int32_t> ids = tokenizer.encode(t, /*add_special=*/false);
    c.heldout.insert(c.heldout.end(), ids.begin(), ids.end());
  }
  return c;
}

void training_batch(const std::vector<int32_t>& train, uint64_t seed, int64_t step, int64_t micro, int64_t batch,
                    int64_t seq, std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
  const auto n = static_cast<int64_t>(train.size());
  if (n < seq + 1) {
    fail_input(fmt::format("the training split has {} tokens, fewer than one sequence of {} plus 1", n, seq));
  }
  const auto starts = static_cast<uint64_t>(n - seq);  // windows [s, s + seq] for s < n - seq
  inputs.resize(static_cast<size_t>(batch * seq));
  targets.resize(static_cast<size_t>(batch * seq));
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t key = mix64(seed * 0x9E3779B97F4A7C15ull + mix64(static_cast<uint64_t>(step) * 0x100000001B3ull +
                                                               mix64(static_cast<uint64_t>(micro) * 65537 +
                                                                   static_cast<uint64_t>(b) + 1)));
    const auto s = static_cast<int64_t>(key % starts);
    for (int64_t i = 0; i < seq; ++i) {
      inputs[static_cast<size_t>(b * seq + i)] = train[static_cast<size_t>(s + i)];
      targets[static_cast<size_t>(b * seq + i)] = train[static_cast<size_t>(s + i + 1)];
    }
  }
}

int64_t heldout_window_count(const std::vector<int32_t>& heldout, int64_t seq, int64_t max_windows) {
  const int64_t n = heldout.empty() ? 0 : (static_cast<int64_t>(heldout.size()) - 1) / seq;
  return n < max_windows ? n : max_windows;
}

void heldout_batch(const std::vector<int32_t>& heldout, int64_t first, int64_t count, int64_t seq,
                   std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
  inputs.resize(static_cast<size_t>(count * seq));
  targets.resize(static_cast<size_t>(count * seq));
  for (int64_t w = 0; w < count; ++w) {
    const int64_t s = (first + w) * seq;
    for (int64_t i = 0; i < seq; ++i) {
      inputs[static_cast<size_t>(w * seq + i)] = heldout[static_cast<size_t>(s + i)];
      targets[static_cast<size_t>(w * seq + i)] = heldout[static_cast<size_t>(s + i + 1)];
    }
  }
}

}  // namespace lowbit

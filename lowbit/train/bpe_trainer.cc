#include "lowbit/train/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/model/bpe_tokenizer.h"
#include "lowbit/model/byte_level.h"
#include "lowbit/model/vocabulary.h"

namespace lowbit {

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Candidate {
  int64_t count;
  uint64_t key;
  // The heap's top: the highest count, then the lowest key.
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : key > o.key; }
};

}  // namespace

TrainedBpe train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options,
                     const std::function<void(int64_t done, int64_t total)>& progress) {
  if (options.vocab_size < 257) {
    fail_input(fmt::format("a byte-level BPE vocabulary needs at least 257 tokens (256 bytes and <|endoftext|>), "
                           "not {}",
                           options.vocab_size));
  }
  const auto pre = find_bpe_pre_tokenizer(options.pre_tokenizer);
  if (!pre) {
    fail_input(fmt::format("unknown pre-tokenizer '{}'; lowbit implements {}", options.pre_tokenizer,
                           supported_bpe_pre_tokenizers()));
  }
  // 1. Distinct words and their counts.
  std::unordered_map<std::string_view, int64_t> counts;
  std::vector<size_t> ends;
  for (std::string_view text : texts) {
    ends.clear();
    split_bpe_words(text, *pre, ends);
    size_t begin = 0;
    for (size_t end : ends) {
      ++counts[text.substr(begin, end - begin)];
      begin = end;
    }
  }
  // In a fixed order (the map's is not): by the word's bytes.
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (char c : sorted[w].first) words[w].push_back(static_cast<uint8_t>(c));
    freq[w] = sorted[w].second;
  }
  // 2. Pair counts and where each pair occurs.
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }
  std::priority_queue<Candidate> heap;
  for (const auto& [k, c] : pair_count) heap.push({c, k});

  TrainedBpe out;
  out.pre_tokenizer = options.pre_tokenizer;
  std::vector<std::string> pieces;  // by symbol
  std::unordered_map<std::string, int32_t> symbol_of;
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
    symbol_of[pieces.back()] = b;
  }
  const int64_t wanted = options.vocab_size - 257;  // new symbols
  std::vector<int32_t> stamp(words.size(), -1);
  std::unordered_map<uint64_t, int64_t> delta;
  int32_t merge_index = 0;
  while (static_cast<int64_t>(pieces.size()) - 256 < wanted && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.key);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale
    if (top.count < options.min_pair_count) break;
    const auto a = static_cast<int32_t>(top.key >> 32), b = static_cast<int32_t>(top.key & 0xFFFFFFFFu);
    // Two merges may spell the same string ("ab"+"c", "a"+"bc"): the
    // second reuses the first's token, as Hugging Face's trainer does.
    const std::string merged = pieces[static_cast<size_t>(a)] + pieces[static_cast<size_t>(b)];
    int32_t s;
    if (auto f = symbol_of.find(merged); f != symbol_of.end()) {
      s = f->second;
    } else {
      s = static_cast<int32_t>(pieces.size());
      pieces.push_back(merged);
      symbol_of[merged] = s;
    }
    out.merges.push_back(pieces[static_cast<size_t>(a)] + " " + pieces[static_cast<size_t>(b)]);
    delta.clear();
    const std::vector<int32_t> affected = std::move(where[top.key]);
    where.erase(top.key);
    for (int32_t w : affected) {
      if (stamp[static_cast<size_t>(w)] == merge_index) continue;
      stamp[static_cast<size_t>(w)] = merge_index;
      std::vector<int32_t>& sym = words[static_cast<size_t>(w)];
      const int64_t f = freq[static_cast<size_t>(w)];
      bool found = false;
      for (size_t i = 0; i + 1 < sym.size() && !found; ++i) found = sym[i] == a && sym[i + 1] == b;
      if (!found) continue;
      for (size_t i = 0; i + 1 < sym.size(); ++i) delta[pair_key(sym[i], sym[i + 1])] -= f;
      std::vector<int32_t> next;
      next.reserve(sym.size());
      for (size_t i = 0; i < sym.size(); ++i) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          next.push_back(s);
          ++i;
        } else {
          next.push_back(sym[i]);
        }
      }
      sym = std::move(next);
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const uint64_t k = pair_key(sym[i], sym[i + 1]);
        delta[k] += f;
        if (sym[i] == s || sym[i + 1] == s) {
          auto& list = where[k];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    // Apply the net changes in key order (the heap's contents then do not
    // depend on the map's iteration order).
    std::vector<std::pair<uint64_t, int64_t>> changes(delta.begin(), delta.end());
    std::sort(changes.begin(), changes.end());
    for (const auto& [k, d] : changes) {
      if (d == 0) continue;
      int64_t& c = pair_count[k];
      c += d;
      if (c > 0) {
        heap.push({c, k});
      } else {
        pair_count.erase(k);
      }
    }
    pair_count.erase(top.key);
    ++merge_index;
    if (progress && merge_index % 256 == 0) progress(static_cast<int64_t>(pieces.size()) - 256, wanted);
  }
  out.pieces = std::move(pieces);
  out.types.assign(out.pieces.size(), static_cast<int32_t>(TokenType::kNormal));
  out.eos = static_cast<int32_t>(out.pieces.size());
  out.pieces.emplace_back(kEndOfText);
  out.types.push_back(static_cast<int32_t>(TokenType::kControl));
  if (progress) progress(wanted, wanted);
  return out;
}

std::unique_ptr<BpeTokenizer> TrainedBpe::tokenizer() const {
  SpecialTokenIds special;
  special.bos = eos;
  special.eos = eos;
  return std::make_unique<BpeTokenizer>(Vocabulary(pieces, types), merges, special,
                                        *find_bpe_pre_tokenizer(pre_tokenizer), pre_tokenizer);
}

void TrainedBpe::add_gguf_metadata(GgufWriter& out) const {
  out.add_metadata("tokenizer.ggml.model", GgufValue::of("gpt2"));
  out.add_metadata("tokenizer.ggml.pre", GgufValue::of(pre_tokenizer));
  out.add_metadata("tokenizer.ggml.tokens", GgufValue::array(pieces));
  out.add_metadata("tokenizer.ggml.token_type", GgufValue::array(types));
  out.add_metadata("tokenizer.ggml.merges", GgufValue::array(merges));
  out.add_metadata("tokenizer.ggml.bos_token_id", GgufValue::of(static_cast<uint32_t>(eos)));
  out.add_metadata("tokenizer.ggml.eos_token_id", GgufValue::of(static_cast<uint32_t>(eos)));
  out.add_metadata("tokenizer.ggml.add_bos_token", GgufValue::of(false));
  out.add_metadata("tokenizer.ggml.add_eos_token", GgufValue::of(false));
}

}  // namespace lowbit

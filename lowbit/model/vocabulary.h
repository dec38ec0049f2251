// A tokenizer's vocabulary: the piece (the token's text as the model file
// stores it) and the type of every token id, and the reverse lookup.
//
// Token types are GGUF's tokenizer.ggml.token_type values, which every
// tokenizer uses, whatever file it came from: a tokenizer.json's special
// added tokens are kControl, its other added tokens kUserDefined.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {

enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // BOS, EOS, chat markers: matched in text only when asked
  kUserDefined = 4,  // always matched in text, never split
  kUnused = 5,
  kByte = 6,         // "<0xNN>": one raw byte (SentencePiece byte fallback)
};

// The GGUF name ("normal", "control"...).
const char* token_type_name(TokenType t) noexcept;

// SentencePiece's byte-fallback pieces: "<0x0A>" for byte 10 (two
// uppercase hex digits, as SentencePiece and llama.cpp write them; lowercase
// digits are read too).
std::string byte_piece_name(uint8_t byte);
std::optional<uint8_t> byte_piece_value(std::string_view piece) noexcept;

// Appends what decoding renders for a token that is not of type kNormal
// (each tokenizer decodes its normal tokens its own way; the others render
// alike, as llama.cpp does): control and unknown tokens as their text unless
// skip_special, user-defined ones as their text, "<0xNN>" byte tokens as
// their byte (another byte piece as its text), unused and undefined tokens
// as nothing. Returns false, appending nothing, for a kNormal token.
bool append_special_piece(std::string& out, TokenType type, const std::string& piece, bool skip_special);

// Hashing for lookups by string_view without building a std::string.
struct PieceHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Vocabulary {
 public:
  Vocabulary() = default;
  // `types` may be empty (every token kNormal) or have one entry per
  // piece; an integer outside 0..6 is kUndefined, as llama.cpp reads it.
  // ErrorKind::kInput for an empty vocabulary, a length mismatch, or more
  // pieces than int32_t ids hold.
  Vocabulary(std::vector<std::string> pieces, std::vector<int32_t> types);

  int32_t size() const noexcept { return static_cast<int32_t>(pieces_.size()); }
  bool contains(int32_t id) const noexcept { return id >= 0 && id < size(); }
  // ErrorKind::kInput "token id N is outside the vocabulary (0..M-1)".
  void check(int32_t id) const;
  const std::string& piece(int32_t id) const;
  TokenType type(int32_t id) const;
  // The id whose piece is exactly `piece`. A piece listed twice maps to
  // its last id, as in llama.cpp (whose text-to-id map overwrites).
  std::optional<int32_t> find(std::string_view piece) const;

 private:
  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> ids_;
};

}  // namespace lowbit

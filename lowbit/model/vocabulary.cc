#include "lowbit/model/vocabulary.h"

#include <fmt/format.h>

#include <limits>

#include "lowbit/core/error.h"

namespace lowbit {

const char* token_type_name(TokenType t) noexcept {
  switch (t) {
    case TokenType::kUndefined: return "undefined";
    case TokenType::kNormal: return "normal";
    case TokenType::kUnknown: return "unknown";
    case TokenType::kControl: return "control";
    case TokenType::kUserDefined: return "user_defined";
    case TokenType::kUnused: return "unused";
    case TokenType::kByte: return "byte";
  }
  return "undefined";
}

std::string byte_piece_name(uint8_t byte) { return fmt::format("<0x{:02X}>", byte); }

std::optional<uint8_t> byte_piece_value(std::string_view piece) noexcept {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return std::nullopt;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

Vocabulary::Vocabulary(std::vector<std::string> pieces, std::vector<int32_t> types) : pieces_(std::move(pieces)) {
  if (pieces_.empty()) fail_input("the vocabulary has no tokens");
  if (pieces_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    fail_input(fmt::format("the vocabulary has {} tokens, more than 32-bit ids can number", pieces_.size()));
  }
  if (!types.empty() && types.size() != pieces_.size()) {
    fail_input(fmt::format("the vocabulary has {} tokens but {} token types", pieces_.size(), types.size()));
  }
  types_.resize(pieces_.size(), TokenType::kNormal);
  for (size_t i = 0; i < types.size(); ++i) {
    types_[i] = types[i] >= 0 && types[i] <= 6 ? static_cast<TokenType>(types[i]) : TokenType::kUndefined;
  }
  ids_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) ids_.insert_or_assign(pieces_[i], static_cast<int32_t>(i));
}

void Vocabulary::check(int32_t id) const {
  if (!contains(id)) fail_input(fmt::format("token id {} is outside the vocabulary (0..{})", id, size() - 1));
}

const std::string& Vocabulary::piece(int32_t id) const {
  check(id);
  return pieces_[static_cast<size_t>(id)];
}

TokenType Vocabulary::type(int32_t id) const {
  check(id);
  return types_[static_cast<size_t>(id)];
}

std::optional<int32_t> Vocabulary::find(std::string_view piece) const {
  const auto it = ids_.find(piece);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

bool append_special_piece(std::string& out, TokenType type, const std::string& piece, bool skip_special) {
  switch (type) {
    case TokenType::kNormal:
      return false;
    case TokenType::kControl:
    case TokenType::kUnknown:
      if (!skip_special) out += piece;
      break;
    case TokenType::kUserDefined:
      out += piece;
      break;
    case TokenType::kByte:
      if (const std::optional<uint8_t> b = byte_piece_value(piece)) {
        out.push_back(static_cast<char>(*b));
      } else {
        out += piece;
      }
      break;
    case TokenType::kUnused:
    case TokenType::kUndefined:
      break;
  }
  return true;
}

}  // namespace lowbit

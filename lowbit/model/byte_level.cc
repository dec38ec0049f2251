#include "lowbit/model/byte_level.h"

#include <array>

#include "lowbit/model/unicode.h"

namespace lowbit {

namespace {

struct ByteLevelTable {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 0x144> to_byte{};  // characters U+0000..U+0143; -1: none
  ByteLevelTable() {
    to_byte.fill(-1);
    const auto printable = [](unsigned b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      to_char[b] = printable(b) ? b : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTable& table() {
  static const ByteLevelTable t;
  return t;
}

}  // namespace

char32_t byte_level_char(uint8_t byte) noexcept { return table().to_char[byte]; }

std::optional<uint8_t> byte_level_byte(char32_t ch) noexcept {
  if (ch >= table().to_byte.size() || table().to_byte[ch] < 0) return std::nullopt;
  return static_cast<uint8_t>(table().to_byte[ch]);
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) unicode::append_utf8(out, byte_level_char(static_cast<uint8_t>(c)));
  return out;
}

void byte_level_decode_append(std::string& out, std::string_view piece) {
  for (size_t pos = 0; pos < piece.size();) {
    const unicode::Utf8Unit u = unicode::decode_utf8(piece, pos);
    const std::optional<uint8_t> b = u.valid ? byte_level_byte(u.code_point) : std::nullopt;
    if (b) {
      out.push_back(static_cast<char>(*b));
    } else {
      out.append(piece.substr(pos, u.length));
    }
    pos += u.length;
  }
}

}  // namespace lowbit

// GPT-2's byte-level alphabet: every byte stands for one printable
// character, so that a vocabulary of Unicode strings covers all byte
// strings and BPE never meets an unknown symbol.
//
// The printable bytes '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for
// themselves; the other 68 (controls, space, U+007F..U+00A0, U+00AD) stand
// for U+0100, U+0101, ... in byte order, so the space is 'Ġ' (U+0120) and
// the newline 'Ċ' (U+010A). This is the table of GPT-2's encoder.py
// (bytes_to_unicode), which Hugging Face's ByteLevel and llama.cpp share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

char32_t byte_level_char(uint8_t byte) noexcept;
// The byte a character stands for, or nullopt if it stands for none.
std::optional<uint8_t> byte_level_byte(char32_t ch) noexcept;

// Each byte as its character, UTF-8 encoded ("a b" -> "aĠb").
std::string byte_level_encode(std::string_view bytes);
// The inverse: each character of a (UTF-8) piece back to its byte. A
// character that stands for no byte, or an invalid UTF-8 byte, is copied
// as it is (llama.cpp writes "[UNK_BYTE_...]" there; a well-formed
// vocabulary has neither).
void byte_level_decode_append(std::string& out, std::string_view piece);

}  // namespace lowbit

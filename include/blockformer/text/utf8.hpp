// SPDX-License-Identifier: Apache-2.0
#pragma once
// UTF-8 scanning shared by the tokenizer and the streaming decoder. Invalid bytes are replaced the way
// Rust's String::from_utf8_lossy (and so HF tokenizers' decode) does: each maximal prefix of a well-formed
// sequence becomes one U+FFFD (the Unicode "maximal subpart" practice), so any chunking of a byte stream
// decodes to the same text as the whole stream.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blockformer::detail {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

/// What starts at some position of a byte string.
struct Utf8Step {
  enum Kind { kValid, kInvalid, kTruncated } kind;
  std::size_t length;  // kValid: the sequence; kInvalid: the bytes one U+FFFD replaces; kTruncated: bytes left
  char32_t code_point;  // kValid only
};

/// Classifies the sequence at `at` (< bytes.size()). kTruncated means a well-formed prefix that the end of
/// `bytes` cut short: more bytes could still complete it.
inline Utf8Step utf8_step(std::string_view bytes, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  const std::uint8_t lead = byte(at);
  if (lead < 0x80) return {Utf8Step::kValid, 1, lead};
  std::size_t need;
  std::uint8_t second_low = 0x80, second_high = 0xBF;
  char32_t code_point;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    code_point = lead & 0x0F;
    if (lead == 0xE0) second_low = 0xA0;   // overlong
    if (lead == 0xED) second_high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    code_point = lead & 0x07;
    if (lead == 0xF0) second_low = 0x90;   // overlong
    if (lead == 0xF4) second_high = 0x8F;  // above U+10FFFF
  } else {
    return {Utf8Step::kInvalid, 1, 0};
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (at + k >= bytes.size()) return {Utf8Step::kTruncated, k, 0};
    const std::uint8_t continuation = byte(at + k);
    const std::uint8_t low = k == 1 ? second_low : 0x80, high = k == 1 ? second_high : 0xBF;
    if (continuation < low || continuation > high) return {Utf8Step::kInvalid, k, 0};
    code_point = (code_point << 6) | (continuation & 0x3F);
  }
  return {Utf8Step::kValid, need + 1, code_point};
}

/// Byte offset of the first byte that does not start or continue well-formed UTF-8, if any.
inline std::optional<std::size_t> first_invalid_utf8(std::string_view bytes) {
  for (std::size_t at = 0; at < bytes.size();) {
    if (static_cast<std::uint8_t>(bytes[at]) < 0x80) {
      ++at;
      continue;
    }
    const Utf8Step step = utf8_step(bytes, at);
    if (step.kind != Utf8Step::kValid) return at;
    at += step.length;
  }
  return std::nullopt;
}

/// Appends `bytes` to `out` as valid UTF-8, each invalid subpart replaced by U+FFFD. Unless `final`, a
/// truncated sequence at the end is left undecoded; returns how many bytes were consumed.
inline std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool final) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    std::size_t ascii_end = at;
    while (ascii_end < bytes.size() && static_cast<std::uint8_t>(bytes[ascii_end]) < 0x80) ++ascii_end;
    out.append(bytes.substr(at, ascii_end - at));
    at = ascii_end;
    if (at == bytes.size()) break;
    const Utf8Step step = utf8_step(bytes, at);
    if (step.kind == Utf8Step::kValid) {
      out.append(bytes.substr(at, step.length));
    } else if (step.kind == Utf8Step::kInvalid || final) {
      out.append(kReplacementCharacter);
    } else {
      break;
    }
    at += step.length;
  }
  return at;
}

/// Appends the UTF-8 encoding of a code point (no validation: callers pass scalar values).
inline void append_utf8(std::string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

}  // namespace blockformer::detail

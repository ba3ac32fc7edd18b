// SPDX-License-Identifier: Apache-2.0
#pragma once
// The Unicode data the tokenizer needs, all from ICU: NFC, and the character classes that HF tokenizers
// takes from Rust's regex crate for added tokens (`\w` for single_word, `\s` for lstrip/rstrip).
#include <cstdint>
#include <string>
#include <string_view>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>

#include "blockformer/error.hpp"

namespace blockformer::detail {

inline const icu::Normalizer2& nfc_normalizer() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || normalizer == nullptr) {
    throw Error(std::string("ICU has no NFC data: ") + u_errorName(status));
  }
  return *normalizer;
}

/// NFC of valid UTF-8. `scratch` holds the result when the input is not already normalized, so
/// the common already-NFC text costs one quick check and no copy.
inline std::string_view nfc(std::string_view text, std::string& scratch) {
  const icu::Normalizer2& normalizer = nfc_normalizer();
  const icu::StringPiece piece(text.data(), static_cast<std::int32_t>(text.size()));
  UErrorCode status = U_ZERO_ERROR;
  if (normalizer.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return text;
  scratch.clear();
  icu::StringByteSink<std::string> sink(&scratch);
  status = U_ZERO_ERROR;
  normalizer.normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) throw Error(std::string("NFC normalization failed: ") + u_errorName(status));
  return scratch;
}

/// Rust regex's Unicode `\s`: the White_Space property.
inline bool is_white_space(char32_t code_point) {
  return u_hasBinaryProperty(static_cast<UChar32>(code_point), UCHAR_WHITE_SPACE);
}

/// Rust regex's Unicode `\w`: Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
inline bool is_word_character(char32_t code_point) {
  const auto c = static_cast<UChar32>(code_point);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) return true;
  const std::int32_t category_mask = U_GET_GC_MASK(c);
  return (category_mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

}  // namespace blockformer::detail

// SPDX-License-Identifier: Apache-2.0
#pragma once
// The GPT-2 split pattern of the ByteLevel pre-tokenizer, compiled once with PCRE2 (UTF + UCP, JIT).
//
// HF tokenizers runs the pattern with Oniguruma, whose Unicode `\s` is U+0009-U+000D, U+0085 and the Z
// categories. PCRE2's `\s` also takes U+180E (through `\h`), so the pattern spells the Oniguruma class out.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "blockformer/error.hpp"

namespace blockformer::detail {

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ with \s as above.
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\x{09}-\x{0D}\x{85}\p{Z}\p{L}\p{N}]+)"
    R"(|[\x{09}-\x{0D}\x{85}\p{Z}]+(?![^\x{09}-\x{0D}\x{85}\p{Z}])|[\x{09}-\x{0D}\x{85}\p{Z}]+)";

class SplitRegex {
 public:
  explicit SplitRegex(std::string_view pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error_code, &error_offset, nullptr));
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof message);
      throw Error("split pattern does not compile at offset " + std::to_string(error_offset) + ": " +
                  reinterpret_cast<const char*>(message));
    }
    // Without JIT (a PCRE2 built without it) pcre2_match interprets the same pattern, only slower.
    pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);
  }

  /// Calls on_piece(string_view) for each match and each unmatched gap of `text` (valid UTF-8), in order:
  /// HF's SplitDelimiterBehavior::Isolated.
  template <class OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const {
    const std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!match) throw Error("out of memory for a regex match");
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::size_t at = 0;
    while (at < text.size()) {
      const int rc = pcre2_match(code_.get(), subject, text.size(), at, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw Error("split regex failed at byte " + std::to_string(at) + ": " +
                    reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* span = pcre2_get_ovector_pointer(match.get());
      if (span[0] > at) on_piece(text.substr(at, span[0] - at));
      if (span[1] == span[0]) throw Error("split regex matched the empty string at byte " + std::to_string(at));
      on_piece(text.substr(span[0], span[1] - span[0]));
      at = span[1];
    }
    if (at < text.size()) on_piece(text.substr(at));
  }

 private:
  struct CodeDeleter {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  struct MatchDataDeleter {
    void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
  };
  std::unique_ptr<pcre2_code, CodeDeleter> code_;
};

/// The compiled GPT-2 pattern, shared: pcre2 code is read-only during matching.
inline const SplitRegex& gpt2_split_regex() {
  static const SplitRegex regex(kGpt2SplitPattern);
  return regex;
}

}  // namespace blockformer::detail

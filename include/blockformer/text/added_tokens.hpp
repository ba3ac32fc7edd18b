// SPDX-License-Identifier: Apache-2.0
#pragma once
// Added tokens (tokenizer.json's "added_tokens") and how HF tokenizers finds them in text: a
// leftmost-longest search (HF: Aho-Corasick, MatchKind::LeftmostLongest), then single_word, lstrip and
// rstrip applied to each match exactly as AddedVocabulary::find_matches does.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blockformer/tensor.hpp"
#include "blockformer/text/unicode.hpp"
#include "blockformer/text/utf8.hpp"

namespace blockformer {

/// One entry of tokenizer.json's "added_tokens", with HF's matching options.
struct AddedToken {
  std::string content;
  Token id = 0;
  bool special = false;      // skipped by decode(..., skip_special_tokens = true)
  bool single_word = false;  // only matches when not inside a word
  bool lstrip = false;       // the match swallows the whitespace before it
  bool rstrip = false;       // the match swallows the whitespace after it
  bool normalized = true;    // matched in the normalized text rather than the raw text
};

namespace detail {

/// A run of text or one matched added token, as byte offsets into the searched string.
struct TextSegment {
  std::size_t begin;
  std::size_t end;
  Token token;  // kNoToken for plain text
};
inline constexpr Token kNoToken = -1;

/// Leftmost-longest search for a fixed set of byte strings.
class TokenMatcher {
 public:
  TokenMatcher() : nodes_(1) {}

  /// Patterns added earlier win ties, like Aho-Corasick's pattern order.
  void add(std::string_view pattern, Token token) {
    if (pattern.empty()) return;
    std::size_t node = 0;
    for (const char c : pattern) {
      const auto byte = static_cast<std::uint8_t>(c);
      std::size_t child = find_child(node, byte);
      if (child == kNone) {
        child = nodes_.size();
        nodes_[node].children.emplace_back(byte, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    if (nodes_[node].token == kNoToken) nodes_[node].token = token;
    starts_[static_cast<std::uint8_t>(pattern.front())] = true;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  /// The longest pattern starting at `at`: its length and token, or length 0.
  std::pair<std::size_t, Token> longest_at(std::string_view text, std::size_t at) const {
    std::pair<std::size_t, Token> best{0, kNoToken};
    if (!starts_[static_cast<std::uint8_t>(text[at])]) return best;
    std::size_t node = 0;
    for (std::size_t i = at; i < text.size(); ++i) {
      node = find_child(node, static_cast<std::uint8_t>(text[i]));
      if (node == kNone) break;
      if (nodes_[node].token != kNoToken) best = {i + 1 - at, nodes_[node].token};
    }
    return best;
  }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  struct Node {
    std::vector<std::pair<std::uint8_t, std::size_t>> children;
    Token token = kNoToken;
  };
  std::size_t find_child(std::size_t node, std::uint8_t byte) const {
    for (const auto& [child_byte, child] : nodes_[node].children) {
      if (child_byte == byte) return child;
    }
    return kNone;
  }
  std::vector<Node> nodes_;
  std::array<bool, 256> starts_{};
  bool empty_ = true;
};

inline char32_t last_code_point(std::string_view text) {
  std::size_t start = text.size() - 1;
  while (start > 0 && (static_cast<std::uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return utf8_step(text, start).code_point;
}

/// Start of the whitespace run that ends `text` (text.size() when there is none).
inline std::size_t trailing_white_space_start(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<std::uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_white_space(utf8_step(text, start).code_point)) break;
    end = start;
  }
  return end;
}

/// Length of the whitespace run that starts `text`.
inline std::size_t leading_white_space_length(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const Utf8Step step = utf8_step(text, at);
    if (!is_white_space(step.code_point)) break;
    at += step.length;
  }
  return at;
}

/// Splits valid UTF-8 `sentence` into plain runs and added-token matches (HF's find_matches: the
/// segments cover the sentence; a stripped match also covers the whitespace it swallowed).
inline std::vector<TextSegment> find_added_tokens(std::string_view sentence, const TokenMatcher& matcher,
                                                  const std::unordered_map<Token, AddedToken>& tokens) {
  std::vector<TextSegment> segments;
  if (matcher.empty()) {
    segments.push_back({0, sentence.size(), kNoToken});
    return segments;
  }
  std::size_t start_offset = 0;
  std::size_t at = 0;
  while (at < sentence.size()) {
    const auto [length, id] = matcher.longest_at(sentence, at);
    if (length == 0) {
      ++at;
      continue;
    }
    std::size_t start = at;
    std::size_t stop = at + length;
    at = stop;
    const AddedToken& token = tokens.at(id);
    if (token.single_word) {
      const bool word_before = start > 0 && is_word_character(last_code_point(sentence.substr(0, start)));
      const bool word_after = stop < sentence.size() && is_word_character(utf8_step(sentence, stop).code_point);
      if (word_before || word_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_white_space_start(sentence.substr(0, start)), start_offset);
    if (token.rstrip) stop += leading_white_space_length(sentence.substr(stop));
    if (start_offset < start) segments.push_back({start_offset, start, kNoToken});
    segments.push_back({start, stop, id});
    start_offset = stop;
  }
  if (start_offset < sentence.size()) segments.push_back({start_offset, sentence.size(), kNoToken});
  return segments;
}

}  // namespace detail
}  // namespace blockformer

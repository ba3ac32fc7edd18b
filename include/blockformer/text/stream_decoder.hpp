// SPDX-License-Identifier: Apache-2.0
#pragma once
// Streaming detokenization: ids go in one at a time, only complete UTF-8 comes out. A token may end in
// the middle of a character (byte-level BPE splits multi-byte characters freely), so the bytes of an
// unfinished character wait for the next token. Whatever the chunking, the concatenated output equals
// Tokenizer::decode of all the ids (HF's decode), U+FFFD included.
#include <string>
#include <string_view>

#include "blockformer/tensor.hpp"
#include "blockformer/text/tokenizer.hpp"
#include "blockformer/text/utf8.hpp"

namespace blockformer {

class StreamDecoder {
 public:
  /// `tokenizer` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

  /// The text that `id` completes; empty while a character is still unfinished.
  std::string push(Token id) {
    std::string text;
    if (const auto bytes = tokenizer_->token_bytes(id, skip_special_tokens_)) {
      pending_.append(*bytes);
      pending_.erase(0, detail::append_utf8_lossy(pending_, text, /*final=*/false));
    }
    return text;
  }

  /// Ends the stream: an unfinished character left over becomes U+FFFD, as in decode().
  std::string flush() {
    std::string text;
    detail::append_utf8_lossy(pending_, text, /*final=*/true);
    pending_.clear();
    return text;
  }

  /// Bytes held back, waiting for the rest of a character (at most 3).
  std::string_view pending() const { return pending_; }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace blockformer

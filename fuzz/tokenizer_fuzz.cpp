// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the tokenizer: the input is a tokenizer.json, optionally followed by a NUL byte
// and a text to encode with it (without one, a few fixed texts are encoded). Loading must either build a
// whole tokenizer or throw blockformer::Error. With a tokenizer built, its contract must hold: valid UTF-8
// always encodes and invalid UTF-8 is always refused; every id it returns is one the tokenizer knows; decode
// gives valid UTF-8; the streaming decoder, fed one id at a time, gives exactly decode's text.
#include <blockformer/text.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void contract_violated(const char* what) {
  std::fprintf(stderr, "tokenizer_fuzz: contract violated: %s\n", what);
  std::abort();
}

void check_decoding(const blockformer::Tokenizer& tokenizer, const std::vector<blockformer::Token>& ids,
                    bool skip_special_tokens) {
  const std::string text = tokenizer.decode(ids, skip_special_tokens);
  if (blockformer::detail::first_invalid_utf8(text)) contract_violated("decode() returned invalid UTF-8");
  blockformer::StreamDecoder stream(tokenizer, skip_special_tokens);
  std::string streamed;
  for (const blockformer::Token id : ids) {
    const std::string piece = stream.push(id);
    if (blockformer::detail::first_invalid_utf8(piece)) contract_violated("the stream emitted invalid UTF-8");
    streamed += piece;
  }
  streamed += stream.flush();
  if (streamed != text) contract_violated("streamed text differs from decode()");
}

void exercise(const blockformer::Tokenizer& tokenizer, std::string_view text) {
  const bool valid = !blockformer::detail::first_invalid_utf8(text).has_value();
  std::vector<blockformer::Token> ids;
  try {
    ids = tokenizer.encode(text);
  } catch (const blockformer::Error&) {
    if (valid) contract_violated("encode() refused valid UTF-8");
    return;
  }
  if (!valid) contract_violated("encode() accepted invalid UTF-8");
  for (const blockformer::Token id : ids) {
    if (!tokenizer.id_to_token(id)) contract_violated("encode() returned an id the tokenizer does not know");
  }
  check_decoding(tokenizer, ids, false);
  check_decoding(tokenizer, ids, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t separator = input.find('\0');
  const std::string_view json = input.substr(0, separator);
  std::optional<blockformer::Tokenizer> tokenizer;
  try {
    tokenizer.emplace(blockformer::Tokenizer::from_json(json));
  } catch (const blockformer::Error&) {
    return 0;
  }
  if (separator != std::string_view::npos) {
    exercise(*tokenizer, input.substr(separator + 1));
  } else {
    for (const std::string_view text : {"Hello world, it's  a   test<|endoftext|>  \n\n x",
                                        "e\xCC\x81 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\t\t",
                                        "bad \xC3( utf-8"}) {
      exercise(*tokenizer, text);
    }
  }
  // Random ids, including unknown and negative ones, must decode like any others.
  std::vector<blockformer::Token> ids;
  for (std::size_t i = 0; i + 2 <= json.size() && ids.size() < 64; i += 7) {
    ids.push_back(static_cast<blockformer::Token>(static_cast<std::int16_t>(data[i] | (data[i + 1] << 8))));
  }
  check_decoding(*tokenizer, ids, false);
  return 0;
}

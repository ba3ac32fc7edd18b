// SPDX-License-Identifier: Apache-2.0
#pragma once
// Byte-level BPE tokenizer loaded from a HuggingFace tokenizer.json (GPT-2 / GPT-NeoX / Pythia family),
// encoding and decoding exactly as HF tokenizers 0.15 does:
//   added tokens in the raw text -> NFC -> added tokens in the normalized text -> ByteLevel pre-tokenizer
//   (GPT-2 split regex, optional prefix space) -> BPE by merge rank;  ids -> ByteLevel decoder -> UTF-8.
// Contract for text that is not valid UTF-8: encode() throws blockformer::Error naming the byte offset. HF's
// Python binding can only receive a str, which is always valid, so it never tokenizes such bytes either.
// decode() follows HF: ids it does not know are skipped, and bytes that do not form UTF-8 become U+FFFD.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockformer/error.hpp"
#include "blockformer/tensor.hpp"
#include "blockformer/text/added_tokens.hpp"
#include "blockformer/text/bpe.hpp"
#include "blockformer/text/split_regex.hpp"
#include "blockformer/text/unicode.hpp"
#include "blockformer/text/utf8.hpp"

namespace blockformer {

namespace detail {

/// Lets string-keyed maps be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
template <class Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

/// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes for
/// U+0100 upwards, so that every byte is one visible character of a token string.
inline constexpr std::array<char32_t, 256> kByteToCodePoint = [] {
  std::array<char32_t, 256> table{};
  char32_t next_unprintable = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<char32_t>(b) : next_unprintable++;
  }
  return table;
}();

/// The inverse of kByteToCodePoint over U+0000-U+0143; -1 where a code point stands for no byte.
inline constexpr std::array<int, 324> kCodePointToByte = [] {
  std::array<int, 324> table{};
  table.fill(-1);
  for (int b = 0; b < 256; ++b) table[kByteToCodePoint[b]] = b;
  return table;
}();

/// HF's ByteLevel decoder for one token: the bytes its characters stand for, or the token's own UTF-8
/// when some character stands for no byte (added tokens such as GPT-NeoX's runs of spaces).
inline std::string byte_level_decode(std::string_view token) {
  std::string bytes;
  for (std::size_t at = 0; at < token.size();) {
    const Utf8Step step = utf8_step(token, at);
    if (step.kind != Utf8Step::kValid || step.code_point >= kCodePointToByte.size() ||
        kCodePointToByte[step.code_point] < 0) {
      return std::string(token);
    }
    bytes += static_cast<char>(kCodePointToByte[step.code_point]);
    at += step.length;
  }
  return bytes;
}

inline std::string byte_level_encode(std::string_view bytes) {
  std::string token;
  for (const char c : bytes) append_utf8(token, kByteToCodePoint[static_cast<std::uint8_t>(c)]);
  return token;
}

/// Reads tokenizer.json fields with errors that name the field.
class JsonReader {
 public:
  explicit JsonReader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(origin_ + ": " + what); }

  const nlohmann::json& object(const nlohmann::json& parent, std::string_view key, std::string_view where) const {
    const auto it = parent.find(key);
    if (it == parent.end()) fail(std::string(where) + std::string(key) + " is missing");
    if (!it->is_object()) fail(std::string(where) + std::string(key) + " must be an object");
    return *it;
  }

  /// The "type" of an optional component, or nullopt when the component is null or absent.
  std::optional<std::string> component_type(const nlohmann::json& root, std::string_view key) const {
    const auto it = root.find(key);
    if (it == root.end() || it->is_null()) return std::nullopt;
    if (!it->is_object()) fail(std::string(key) + " must be an object or null");
    return string(*it, "type", std::string(key) + ".");
  }

  std::string string(const nlohmann::json& parent, std::string_view key, const std::string& where) const {
    const auto it = parent.find(key);
    if (it == parent.end()) fail(where + std::string(key) + " is missing");
    if (!it->is_string()) fail(where + std::string(key) + " must be a string");
    return it->get<std::string>();
  }

  std::optional<std::string> optional_string(const nlohmann::json& parent, std::string_view key,
                                             const std::string& where) const {
    const auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(where + std::string(key) + " must be a string or null");
    return it->get<std::string>();
  }

  bool boolean(const nlohmann::json& parent, std::string_view key, bool fallback, const std::string& where) const {
    const auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + std::string(key) + " must be true or false");
    return it->get<bool>();
  }

  Token id(const nlohmann::json& value, const std::string& where) const {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > 0x7FFFFFFF) {
      fail(where + " must be a token id (an integer 0..2147483647), not " + value.dump());
    }
    return static_cast<Token>(value.get<std::uint64_t>());
  }

 private:
  std::string origin_;
};

}  // namespace detail

/// A byte-level BPE tokenizer. Immutable once built, so one instance may encode and decode from many
/// threads at once.
class Tokenizer {
 public:
  /// Reads and validates a tokenizer.json; throws blockformer::Error naming the file and the culprit.
  static Tokenizer load(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw Error("cannot open tokenizer file " + path.string());
    const std::string json((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (file.bad()) throw Error("cannot read tokenizer file " + path.string());
    return from_json(json, path.string());
  }

  /// Builds from tokenizer.json text; `origin` names it in error messages.
  static Tokenizer from_json(std::string_view json, std::string origin = "tokenizer.json") {
    const detail::JsonReader reader(std::move(origin));
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(json);
    } catch (const nlohmann::json::parse_error& e) {
      reader.fail("malformed JSON at byte " + std::to_string(e.byte) + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
      reader.fail(std::string("malformed JSON: ") + e.what());
    }
    if (!root.is_object()) reader.fail("the top level must be a JSON object");
    Tokenizer tokenizer;
    try {
      tokenizer.read_components(root, reader);
      tokenizer.read_model(reader.object(root, "model", ""), reader);
      tokenizer.read_added_tokens(root, reader);
    } catch (const nlohmann::json::exception& e) {  // a type the checks above did not foresee
      reader.fail(std::string("unexpected JSON content: ") + e.what());
    }
    return tokenizer;
  }

  /// Token ids of UTF-8 `text`, as HF's Tokenizer.encode(text).ids. Throws blockformer::Error when
  /// `text` is not valid UTF-8 (the message gives the byte offset).
  std::vector<Token> encode(std::string_view text) const {
    if (const auto bad = detail::first_invalid_utf8(text)) {
      throw Error("tokenizer: text to encode is not valid UTF-8 at byte " + std::to_string(*bad));
    }
    EncodeState state;
    std::vector<Token> ids;
    ids.reserve(text.size() / 3);
    for (const detail::TextSegment& raw : detail::find_added_tokens(text, raw_matcher_, added_by_id_)) {
      if (raw.token != detail::kNoToken) {
        ids.push_back(raw.token);
        continue;
      }
      if (raw.begin == raw.end) continue;
      std::string scratch;
      const std::string_view piece = text.substr(raw.begin, raw.end - raw.begin);
      const std::string_view normalized = nfc_ ? detail::nfc(piece, scratch) : piece;
      for (const detail::TextSegment& segment :
           detail::find_added_tokens(normalized, normalized_matcher_, added_by_id_)) {
        if (segment.token != detail::kNoToken) {
          ids.push_back(segment.token);
        } else if (segment.end > segment.begin) {
          encode_pre_tokenized(normalized.substr(segment.begin, segment.end - segment.begin), state, ids);
        }
      }
    }
    return ids;
  }

  /// Text of `ids`, as HF's Tokenizer.decode(ids, skip_special_tokens).
  std::string decode(std::span<const Token> ids, bool skip_special_tokens = false) const {
    std::string bytes;
    for (const Token id : ids) {
      if (const auto piece = token_bytes(id, skip_special_tokens)) bytes.append(*piece);
    }
    std::string text;
    detail::append_utf8_lossy(bytes, text, /*final=*/true);
    return text;
  }

  /// The bytes `id` decodes to (possibly part of a UTF-8 character); nullopt for an id decode()
  /// skips: an unknown one, or a special token when `skip_special_tokens`.
  std::optional<std::string_view> token_bytes(Token id, bool skip_special_tokens = false) const {
    if (!known(id) || (skip_special_tokens && special_[static_cast<std::size_t>(id)])) return std::nullopt;
    return decoded_[static_cast<std::size_t>(id)];
  }

  /// The token's string as tokenizer.json spells it (byte-level characters, e.g. "Ġthe").
  std::optional<std::string_view> id_to_token(Token id) const {
    if (!known(id)) return std::nullopt;
    return tokens_[static_cast<std::size_t>(id)];
  }

  /// Id of a token string (added tokens first, as HF).
  std::optional<Token> token_to_id(std::string_view token) const {
    if (const auto it = added_ids_.find(token); it != added_ids_.end()) return it->second;
    if (const auto it = vocab_.find(token); it != vocab_.end()) return it->second;
    return std::nullopt;
  }

  bool is_special(Token id) const { return known(id) && special_[static_cast<std::size_t>(id)]; }

  /// One more than the largest id: the embedding rows a model needs for this tokenizer.
  std::size_t vocab_size() const { return tokens_.size(); }

  /// tokenizer.json's added tokens in file order (ids as HF assigns them, checked against the file).
  const std::vector<AddedToken>& added_tokens() const { return added_tokens_; }

 private:
  Tokenizer() = default;

  // Words seen in this encode() call and their ids, so repeated words skip BPE (HF keeps a similar cache).
  struct EncodeState {
    detail::StringMap<std::pair<std::uint32_t, std::uint32_t>> word_cache;  // offset, count
    std::vector<Token> cached_ids;
    std::vector<Token> symbols;
    std::string prefixed;
  };

  bool known(Token id) const {
    return id >= 0 && static_cast<std::size_t>(id) < tokens_.size() && known_[static_cast<std::size_t>(id)];
  }

  void encode_pre_tokenized(std::string_view text, EncodeState& state, std::vector<Token>& ids) const {
    if (add_prefix_space_ && text.front() != ' ') {
      state.prefixed.assign(" ");
      state.prefixed.append(text);
      text = state.prefixed;
    }
    if (!use_regex_) {
      encode_word(text, state, ids);
      return;
    }
    detail::gpt2_split_regex().split(text, [&](std::string_view word) { encode_word(word, state, ids); });
  }

  void encode_word(std::string_view word, EncodeState& state, std::vector<Token>& ids) const {
    if (const auto hit = state.word_cache.find(word); hit != state.word_cache.end()) {
      const auto [offset, count] = hit->second;
      ids.insert(ids.end(), state.cached_ids.begin() + offset, state.cached_ids.begin() + offset + count);
      return;
    }
    std::vector<Token>& symbols = state.symbols;
    symbols.clear();
    if (const auto whole = ignore_merges_ ? vocab_.find(detail::byte_level_encode(word)) : vocab_.end();
        whole != vocab_.end()) {
      symbols.push_back(whole->second);
    } else {
      initial_symbols(word, symbols);
      detail::bpe_merge(symbols, merges_);
    }
    state.word_cache.emplace(word, std::pair{static_cast<std::uint32_t>(state.cached_ids.size()),
                                             static_cast<std::uint32_t>(symbols.size())});
    state.cached_ids.insert(state.cached_ids.end(), symbols.begin(), symbols.end());
    ids.insert(ids.end(), symbols.begin(), symbols.end());
  }

  // One symbol per byte; a byte missing from the vocab becomes unk_token (runs fused when fuse_unk) or,
  // without unk_token, is dropped: HF's BPE::merge_word.
  void initial_symbols(std::string_view word, std::vector<Token>& symbols) const {
    bool previous_was_unknown = false;
    for (const char c : word) {
      const Token id = byte_tokens_[static_cast<std::uint8_t>(c)];
      if (id != detail::kNoToken) {
        symbols.push_back(id);
        previous_was_unknown = false;
      } else if (unk_token_ != detail::kNoToken) {
        if (!(fuse_unk_ && previous_was_unknown)) symbols.push_back(unk_token_);
        previous_was_unknown = true;
      }
    }
  }

  void read_components(const nlohmann::json& root, const detail::JsonReader& reader) {
    if (const auto type = reader.component_type(root, "normalizer")) {
      if (*type != "NFC") reader.fail("normalizer " + *type + " is not supported (only NFC or null)");
      nfc_ = true;
    }
    const auto pre_tokenizer = reader.component_type(root, "pre_tokenizer");
    if (pre_tokenizer != "ByteLevel") {
      reader.fail("pre_tokenizer " + pre_tokenizer.value_or("null") + " is not supported (only ByteLevel)");
    }
    add_prefix_space_ = reader.boolean(root["pre_tokenizer"], "add_prefix_space", true, "pre_tokenizer.");
    use_regex_ = reader.boolean(root["pre_tokenizer"], "use_regex", true, "pre_tokenizer.");
    const auto decoder = reader.component_type(root, "decoder");
    if (decoder != "ByteLevel") {
      reader.fail("decoder " + decoder.value_or("null") + " is not supported (only ByteLevel)");
    }
    // ByteLevel post-processing only trims offsets; any other would add tokens around the ids.
    if (const auto type = reader.component_type(root, "post_processor"); type && *type != "ByteLevel") {
      reader.fail("post_processor " + *type + " is not supported (only ByteLevel or null)");
    }
  }

  void read_model(const nlohmann::json& model, const detail::JsonReader& reader) {
    if (const auto type = reader.optional_string(model, "type", "model."); type && *type != "BPE") {
      reader.fail("model type " + *type + ": " + *type + " is not supported (only BPE)");
    }
    if (const auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
      if (!it->is_number() || it->get<double>() != 0.0) reader.fail("BPE dropout is not supported (it makes encoding random)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (const auto affix = reader.optional_string(model, key, "model."); affix && !affix->empty()) {
        reader.fail(std::string("model.") + key + " is not supported (byte-level BPE has none)");
      }
    }
    if (reader.boolean(model, "byte_fallback", false, "model.")) reader.fail("model.byte_fallback is not supported");
    fuse_unk_ = reader.boolean(model, "fuse_unk", false, "model.");
    ignore_merges_ = reader.boolean(model, "ignore_merges", false, "model.");

    const nlohmann::json& vocab = reader.object(model, "vocab", "model.");
    std::size_t largest_id = 0;
    for (const auto& [token, value] : vocab.items()) {
      largest_id = std::max(largest_id, static_cast<std::size_t>(reader.id(value, "model.vocab[\"" + token + "\"]")));
    }
    // The id tables are sized by the largest id, which comes from an untrusted file: real vocabularies are
    // dense, so an id far beyond the token count is refused rather than allocated for.
    if (largest_id >= 2 * vocab.size() + 1024) {
      reader.fail("model.vocab has " + std::to_string(vocab.size()) + " tokens but an id as large as " +
                  std::to_string(largest_id));
    }
    tokens_.resize(vocab.empty() ? 0 : largest_id + 1);
    known_.resize(tokens_.size(), false);
    for (const auto& [token, value] : vocab.items()) {
      const auto id = static_cast<Token>(value.get<std::uint64_t>());
      place_token(id, token, reader);
      vocab_.emplace(token, id);
    }

    const auto merges = model.find("merges");
    if (merges == model.end()) reader.fail("model.merges is missing");
    if (!merges->is_array()) reader.fail("model.merges must be an array");
    for (std::size_t rank = 0; rank < merges->size(); ++rank) {
      const std::pair<std::string, std::string> pair = merge_pair((*merges)[rank], rank, reader);
      const std::string& left = pair.first;  // not structured bindings: clang 14 cannot capture those
      const std::string& right = pair.second;
      const auto where = [&] { return "model.merges[" + std::to_string(rank) + "] (\"" + left + " " + right + "\")"; };
      const Token left_id = vocab_id(left, where, reader);
      const Token right_id = vocab_id(right, where, reader);
      const Token merged_id = vocab_id(left + right, where, reader);
      merges_.insert(left_id, right_id, {static_cast<std::uint32_t>(rank), merged_id});
    }

    if (const auto unk = reader.optional_string(model, "unk_token", "model.")) {
      const auto it = vocab_.find(*unk);
      if (it == vocab_.end()) reader.fail("model.unk_token \"" + *unk + "\" is not in model.vocab");
      unk_token_ = it->second;
    }
    for (int b = 0; b < 256; ++b) {
      std::string character;
      detail::append_utf8(character, detail::kByteToCodePoint[b]);
      const auto it = vocab_.find(character);
      byte_tokens_[b] = it == vocab_.end() ? detail::kNoToken : it->second;
    }
  }

  static std::pair<std::string, std::string> merge_pair(const nlohmann::json& merge, std::size_t rank,
                                                        const detail::JsonReader& reader) {
    const std::string where = "model.merges[" + std::to_string(rank) + "]";
    if (merge.is_string()) {  // "left right", split on its one space like HF
      const std::string& text = merge.get_ref<const std::string&>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        reader.fail(where + " \"" + text + "\" must be two tokens separated by one space");
      }
      return {text.substr(0, space), text.substr(space + 1)};
    }
    if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      return {merge[0].get<std::string>(), merge[1].get<std::string>()};
    }
    reader.fail(where + " must be a \"left right\" string or a [left, right] pair, not " + merge.dump());
  }

  template <class Where>
  Token vocab_id(const std::string& token, const Where& where, const detail::JsonReader& reader) const {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) reader.fail(where() + " names token \"" + token + "\", which is not in model.vocab");
    return it->second;
  }

  void place_token(Token id, const std::string& token, const detail::JsonReader& reader) {
    const auto index = static_cast<std::size_t>(id);
    if (known_[index]) {
      reader.fail("duplicate id " + std::to_string(id) + ": \"" + tokens_[index] + "\" and \"" + token + "\"");
    }
    tokens_[index] = token;
    known_[index] = true;
  }

  // HF adds the file's tokens one by one (Tokenizer deserialization -> AddedVocabulary::add_tokens); the id
  // it assigns is the vocab's id for the content, else the next free one. A file whose ids disagree would
  // tokenize differently from what it says, so it is rejected.
  void read_added_tokens(const nlohmann::json& root, const detail::JsonReader& reader) {
    const auto list = root.find("added_tokens");
    if (list == root.end() || list->is_null()) {
      finish_tables();
      return;
    }
    if (!list->is_array()) reader.fail("added_tokens must be an array");
    const std::size_t model_vocab_size = vocab_.size();
    std::unordered_set<std::string> special_contents;
    std::vector<AddedToken> special_order, plain_order;
    const auto same_token = [](const AddedToken& a, const AddedToken& b) {
      return a.content == b.content && a.special == b.special && a.single_word == b.single_word &&
             a.lstrip == b.lstrip && a.rstrip == b.rstrip && a.normalized == b.normalized;
    };
    for (std::size_t i = 0; i < list->size(); ++i) {
      const nlohmann::json& entry = (*list)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "].";
      if (!entry.is_object()) reader.fail("added_tokens[" + std::to_string(i) + "] must be an object");
      AddedToken token;
      token.content = reader.string(entry, "content", where);
      const auto id = entry.find("id");
      if (id == entry.end()) reader.fail(where + "id is missing");
      token.id = reader.id(*id, where + "id");
      token.special = reader.boolean(entry, "special", false, where);
      token.single_word = reader.boolean(entry, "single_word", false, where);
      token.lstrip = reader.boolean(entry, "lstrip", false, where);
      token.rstrip = reader.boolean(entry, "rstrip", false, where);
      token.normalized = reader.boolean(entry, "normalized", !token.special, where);
      if (token.content.empty()) reader.fail(where + "content is empty");
      if (token.special && special_contents.insert(token.content).second) special_order.push_back(token);
      const bool already_added = std::any_of(added_by_id_.begin(), added_by_id_.end(),
                                             [&](const auto& entry) { return same_token(entry.second, token); });
      if (already_added) continue;  // HF ignores an exact repeat
      Token assigned;
      if (const auto it = added_ids_.find(token.content); it != added_ids_.end()) {
        assigned = it->second;
      } else if (const auto in_vocab = vocab_.find(token.content); in_vocab != vocab_.end()) {
        assigned = in_vocab->second;
      } else {
        Token largest = -1;
        for (const auto& [content, added_id] : added_ids_) largest = std::max(largest, added_id);
        const auto vocab_size = static_cast<Token>(model_vocab_size);
        assigned = largest < 0 ? vocab_size : (largest >= vocab_size || vocab_size == 0 ? largest + 1 : vocab_size);
      }
      if (assigned != token.id) {
        reader.fail(where + "id is " + std::to_string(token.id) + " but HF tokenizers assigns \"" + token.content +
                    "\" the id " + std::to_string(assigned) + " (the vocab's id, else the next free one)");
      }
      added_ids_[token.content] = assigned;
      added_by_id_[assigned] = token;
      if (!special_contents.contains(token.content)) plain_order.push_back(token);
      added_tokens_.push_back(token);
    }
    for (const std::vector<AddedToken>* order : {&special_order, &plain_order}) {
      for (const AddedToken& token : *order) {
        const Token id = added_ids_.at(token.content);
        if (token.normalized) {
          std::string scratch;
          normalized_matcher_.add(nfc_ ? detail::nfc(token.content, scratch) : std::string_view(token.content), id);
        } else {
          raw_matcher_.add(token.content, id);
        }
      }
    }
    for (const auto& [id, token] : added_by_id_) {
      const auto index = static_cast<std::size_t>(id);
      if (index >= tokens_.size()) {
        tokens_.resize(index + 1);
        known_.resize(index + 1, false);
      }
      tokens_[index] = token.content;
      known_[index] = true;
    }
    finish_tables();
    for (const auto& content : special_contents) {
      if (const auto id = token_to_id(content)) special_[static_cast<std::size_t>(*id)] = true;
    }
  }

  void finish_tables() {
    decoded_.resize(tokens_.size());
    special_.assign(tokens_.size(), false);
    for (std::size_t id = 0; id < tokens_.size(); ++id) {
      if (known_[id]) decoded_[id] = detail::byte_level_decode(tokens_[id]);
    }
  }

  bool nfc_ = false;
  bool add_prefix_space_ = true;
  bool use_regex_ = true;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  Token unk_token_ = detail::kNoToken;
  detail::StringMap<Token> vocab_;
  detail::MergeTable merges_;
  std::array<Token, 256> byte_tokens_{};
  std::vector<std::string> tokens_;  // by id: the vocab's string, or the added token's content
  std::vector<bool> known_;
  std::vector<std::string> decoded_;  // by id: ByteLevel-decoded bytes
  std::vector<bool> special_;
  detail::StringMap<Token> added_ids_;
  std::unordered_map<Token, AddedToken> added_by_id_;
  std::vector<AddedToken> added_tokens_;
  detail::TokenMatcher raw_matcher_;
  detail::TokenMatcher normalized_matcher_;
};

}  // namespace blockformer

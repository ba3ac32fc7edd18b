// SPDX-License-Identifier: Apache-2.0
#pragma once
// Text through the models: prompts in as strings, continuations out as strings and streamed as text
// pieces that never split a UTF-8 character, texts scored, long texts scored with sliding windows.
// A thin layer over any model's generate() and score() (BlockTransformer, GptNeoxLM, any backend);
// Request keeps taking ids for users who tokenize themselves.
#include <algorithm>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "blockformer/config.hpp"
#include "blockformer/error.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/scoring.hpp"
#include "blockformer/text/stream_decoder.hpp"
#include "blockformer/text/tokenizer.hpp"

namespace blockformer {

/// One prompt to continue, as text.
struct TextRequest {
  std::string prompt;
  /// Everything of a Request but the prompt ids, which must be left empty: the prompt's tokens go
  /// there. A sampling.vocab_limit of 0 becomes the tokenizer's vocab_size() when the model has more
  /// embedding rows (GPT-NeoX: 50304 rows, 50277 ids), so no id without text is ever sampled.
  Request options{};
  /// Generation of this sequence stops once its text contains one of these (non-empty) strings;
  /// the text ends just before it, as OpenAI's `stop`, and Generation::stop is kStopString. The ids
  /// keep every token sampled, the one that completed the string included. Text that may still
  /// turn out to begin a stop string is held back from on_text until it cannot.
  std::vector<std::string> stop_strings{};
};

/// Receives each piece of generated text as soon as its UTF-8 is complete (never an empty piece);
/// returning false stops that sequence, as TokenCallback does.
using TextCallback = std::function<bool(int sequence, std::string_view piece)>;

struct TextGenerateOptions {
  TextCallback on_text{};
  TokenPositions token_positions = TokenPositions::kTraining;
  /// Leave special tokens (<|endoftext|>) out of the text, as HF's decode(skip_special_tokens).
  bool skip_special_tokens = false;
  int threads = 0;  // as GenerateOptions::threads
};

struct TextGeneration {
  /// The continuation, prompt excluded: the streamed pieces joined, which is the tokenizer's decode()
  /// of the generated ids (U+FFFD for a character the last token left unfinished).
  std::string text;
  Generation generation;  // prompt + generated ids, why it stopped, log-probabilities
};

namespace detail {
template <class Model>
inline constexpr bool is_block_model = std::is_same_v<std::remove_cv_t<decltype(Model::kConfig)>, BlockConfig>;

/// Tokens score() treats as context only at the start of a sequence, and the granularity windows
/// must keep: one block for a block model, one token for a vanilla one.
template <class Model>
constexpr int context_unit() {
  if constexpr (is_block_model<Model>) return Model::kConfig.block_length;
  else return 1;
}

/// One sequence's text as it grows: what was handed to on_text, and where a stop string ended it.
struct TextStream {
  std::string text;
  std::size_t delivered = 0;
  bool stopped = false;

  /// Appends a piece; returns the part that can be delivered now. A stop string found in the text
  /// cuts it there (and stops); else the longest tail that could begin a stop string waits.
  std::string_view append(std::string_view piece, std::span<const std::string> stops, bool final) {
    const std::size_t before = text.size();
    text += piece;
    std::size_t longest = 0;
    for (const std::string& stop : stops) longest = std::max(longest, stop.size());
    // A match can only involve the new piece and the stop-length - 1 bytes before it.
    const std::size_t from = before >= longest ? before - longest + 1 : 0;
    std::size_t cut = std::string::npos;
    for (const std::string& stop : stops) cut = std::min(cut, text.find(stop, from));
    if (cut != std::string::npos) {
      // Held-back text is never delivered, so a match cannot begin in what was; max() only makes
      // that assumption safe.
      text.resize(std::max(cut, delivered));
      stopped = true;
    }
    std::size_t ready = text.size();
    if (!stopped && !final)
      for (const std::string& stop : stops)
        for (std::size_t n = std::min(stop.size() - 1, text.size() - delivered); n > 0; --n)
          if (text.compare(text.size() - n, n, stop, 0, n) == 0) {
            ready = std::min(ready, text.size() - n);
            break;
          }
    const std::string_view out = std::string_view(text).substr(delivered, ready - delivered);
    delivered = ready;
    return out;
  }
};
}  // namespace detail

/// Throws, naming both sizes, when the tokenizer has ids the model has no embedding row for: they
/// would be refused, or worse read out of bounds, only once compute has begun.
template <class Model>
void check_tokenizer_fits(const Tokenizer& tokenizer) {
  constexpr int rows = Model::kConfig.vocab;
  if (tokenizer.vocab_size() > std::size_t(rows))
    throw Error("the tokenizer has " + std::to_string(tokenizer.vocab_size()) + " ids but the model embeds only " +
                std::to_string(rows) + " (its vocab); use the tokenizer the model was trained with");
}

/// Tokenizes each prompt, generates with the model's generate(), streams each sequence's text through
/// its own StreamDecoder, and returns the texts with the Generation results. Everything is checked
/// (tokenizer size, UTF-8, the requests) before any compute.
template <class Model>
std::vector<TextGeneration> generate_text(const Model& model, const Tokenizer& tokenizer,
                                          std::span<const TextRequest> requests,
                                          const TextGenerateOptions& options = {}) {
  check_tokenizer_fits<Model>(tokenizer);
  std::vector<Request> id_requests;
  id_requests.reserve(requests.size());
  for (std::size_t s = 0; s < requests.size(); ++s) {
    if (!requests[s].options.prompt.empty())
      throw Error("text request " + std::to_string(s) +
                  ": options.prompt must be empty (the tokens of the text prompt go there)");
    for (const std::string& stop : requests[s].stop_strings)
      if (stop.empty()) throw Error("text request " + std::to_string(s) + ": a stop string is empty");
    Request& r = id_requests.emplace_back(requests[s].options);
    r.prompt = tokenizer.encode(requests[s].prompt);
    if (r.sampling.vocab_limit == 0 && tokenizer.vocab_size() < std::size_t(Model::kConfig.vocab))
      r.sampling.vocab_limit = int(tokenizer.vocab_size());
  }

  std::vector<StreamDecoder> decoders(requests.size(), StreamDecoder(tokenizer, options.skip_special_tokens));
  std::vector<detail::TextStream> texts(requests.size());
  // Returns whether the sequence goes on: not after a stop string, nor when on_text says stop.
  const auto deliver = [&](int s, const std::string& piece, bool final) {
    const std::string_view ready = texts[s].append(piece, requests[s].stop_strings, final);
    const bool wanted = ready.empty() || !options.on_text || options.on_text(s, ready);
    return wanted && !texts[s].stopped;
  };
  GenerateOptions id_options{.on_token = [&](int s, Token t) { return deliver(s, decoders[s].push(t), false); },
                             .token_positions = options.token_positions,
                             .threads = options.threads};
  std::vector<Generation> generations = model.generate(std::span<const Request>(id_requests), id_options);

  std::vector<TextGeneration> results(requests.size());
  for (std::size_t s = 0; s < requests.size(); ++s) {
    if (!texts[s].stopped) deliver(int(s), decoders[s].flush(), true);  // ended: what it returns is moot
    if (texts[s].stopped) generations[s].stop = Generation::Stop::kStopString;
    results[s] = TextGeneration{std::move(texts[s].text), std::move(generations[s])};
  }
  return results;
}
/// generate_text() for a braced list: generate_text(model, tokenizer, {{.prompt = "Once upon"}}).
template <class Model>
std::vector<TextGeneration> generate_text(const Model& model, const Tokenizer& tokenizer,
                                          std::initializer_list<TextRequest> requests,
                                          const TextGenerateOptions& options = {}) {
  return generate_text(model, tokenizer, std::span<const TextRequest>(requests.begin(), requests.size()), options);
}

/// The model's score() of each text's tokens (see the model for which tokens are context only), with
/// its default padding; `threads` as GenerateOptions::threads.
template <class Model>
std::vector<SequenceScore> score_text(const Model& model, const Tokenizer& tokenizer,
                                      std::span<const std::string> texts, int threads = 0) {
  check_tokenizer_fits<Model>(tokenizer);
  std::vector<std::vector<Token>> sequences;
  sequences.reserve(texts.size());
  for (const std::string& text : texts) sequences.push_back(tokenizer.encode(text));
  const auto views = std::span<const std::vector<Token>>(sequences);
  if constexpr (detail::is_block_model<Model>) return model.score(views, Model::kConfig.score_padding, threads);
  else return model.score(views, threads);
}
template <class Model>
std::vector<SequenceScore> score_text(const Model& model, const Tokenizer& tokenizer,
                                      std::initializer_list<std::string> texts, int threads = 0) {
  return score_text(model, tokenizer, std::span<const std::string>(texts.begin(), texts.size()), threads);
}

/// Windows for scoring a sequence longer than the model's context, as in HF's "Perplexity of
/// fixed-length models" guide.
struct SlidingWindow {
  int window = 0;  // tokens each window sees; 0: the trained max positions (kConfig.max_positions)
  int stride = 0;  // tokens each window starts after the previous one; 0: window / 2
  int threads = 0;  // of each window's score() call, as GenerateOptions::threads
};

struct SlidingScore {
  SequenceScore score;  // over every token some window scored
  int windows = 0;
  SlidingWindow used;   // the window and stride after defaults
};

/// Called after each window with the windows done and the total.
using WindowCallback = std::function<void(int done, int windows)>;

/// Sliding-window log-likelihood of `ids`: each window scores only the tokens no earlier window has,
/// the earlier ones being its context (HF's method), so each token is scored once, with up to
/// window - stride tokens of context. For a block model the sequence is left-padded to whole blocks
/// once, as score() pads it, and window and stride must be multiples of the block length, so every
/// window starts on a block boundary; with one window the result is score()'s. A window's new tokens
/// are scored as score(window) - score(its context), both of the model's score().
template <class Model>
SlidingScore score_sliding(const Model& model, std::span<const Token> ids, SlidingWindow sliding = {},
                           const WindowCallback& on_window = {}) {
  constexpr int unit = detail::context_unit<Model>();
  const int max_positions = model.max_positions();
  const std::string unit_name = unit == 1 ? "token" : "block of " + std::to_string(unit) + " tokens";
  if (sliding.window == 0) sliding.window = Model::kConfig.max_positions;
  if (sliding.stride == 0) sliding.stride = std::max(unit, sliding.window / 2 / unit * unit);
  if (sliding.window < 2 * unit || sliding.window > max_positions || sliding.window % unit != 0)
    throw Error("window " + std::to_string(sliding.window) + " must lie in [" + std::to_string(2 * unit) + ", " +
                std::to_string(max_positions) + "] (the model's max positions)" +
                (unit > 1 ? " and be a multiple of the block length " + std::to_string(unit) : ""));
  if (sliding.stride < unit || sliding.stride > sliding.window || sliding.stride % unit != 0)
    throw Error("stride " + std::to_string(sliding.stride) + " must lie in [" + std::to_string(unit) + ", " +
                std::to_string(sliding.window) + "] (the window)" +
                (unit > 1 ? " and be a multiple of the block length " + std::to_string(unit) : ""));
  if (ids.size() <= std::size_t(unit))
    throw Error("score: " + std::to_string(ids.size()) + (ids.size() == 1 ? " token" : " tokens") +
                "; at least " + std::to_string(unit + 1) + " are needed, as the first " + unit_name +
                " is context only and nothing would be scored");

  std::vector<Token> padded((unit - ids.size() % unit) % unit, Token{0});
  padded.insert(padded.end(), ids.begin(), ids.end());
  const std::size_t n = padded.size();
  struct Window {
    std::size_t begin, end, context;
  };
  std::vector<Window> windows;
  for (std::size_t begin = 0, scored_to = 0;; begin += std::size_t(sliding.stride)) {
    const std::size_t end = std::min(begin + std::size_t(sliding.window), n);
    // With stride == window a last window of one unit has nothing score() can predict.
    if (end - begin > std::size_t(unit)) windows.push_back({begin, end, scored_to - begin});
    if (end == n) break;
    scored_to = end;
  }

  SlidingScore result{.score = {}, .windows = int(windows.size()), .used = sliding};
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const Window& window = windows[w];
    std::vector<std::vector<Token>> sequences{{padded.begin() + window.begin, padded.begin() + window.end}};
    // A context of at most one unit holds no token score() would score: nothing to subtract.
    if (window.context > std::size_t(unit))
      sequences.emplace_back(padded.begin() + window.begin, padded.begin() + window.begin + window.context);
    const auto views = std::span<const std::vector<Token>>(sequences);
    std::vector<SequenceScore> scores;
    if constexpr (detail::is_block_model<Model>) scores = model.score(views, Model::kConfig.score_padding, sliding.threads);
    else scores = model.score(views, sliding.threads);
    result.score.nll += scores[0].nll - (scores.size() > 1 ? scores[1].nll : 0.0);
    result.score.tokens += scores[0].tokens - (scores.size() > 1 ? scores[1].tokens : 0);
    if (on_window) on_window(int(w) + 1, result.windows);
  }
  return result;
}

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Requests, options and per-sequence bookkeeping shared by every model's generate().
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/sampling.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer {

/// One sequence to continue. The prompt is raw token ids: no padding, no BOS added.
struct Request {
  std::vector<Token> prompt{};
  /// At least 1: 0 is refused, as HF refuses it, rather than silently returning the prompt (score()
  /// gives a prompt's likelihood). 16 when not given, as OpenAI's completions.
  int max_new_tokens = 16;
  SamplingParams sampling{};
  std::optional<Token> eos{};    // generation of this sequence stops after it samples eos
  std::vector<Token> stop_ids{};  // ... or after any of these (Generation::Stop::kStopId)
  /// Record Generation::logprobs, the log-probability of each generated token (see
  /// Sampler::log_probabilities for which distribution).
  bool logprobs = false;
  /// Record also the top_logprobs most likely ids at each step in Generation::top_logprobs; > 0
  /// implies logprobs.
  int top_logprobs = 0;
};

/// Called for every generated token; returning false stops that sequence (the token is kept).
using TokenCallback = std::function<bool(int sequence, Token token)>;

/// Where the token decoder places its inputs (block models only).
enum class TokenPositions {
  kTraining,         // prefix at 0..R-1, fed tokens at R.. (forward() and the fixtures)
  kAuthorsGenerate,  // prefix all at 0, fed tokens at 1.. (the authors' released generate())
};

struct GenerateOptions {
  TokenCallback on_token{};
  TokenPositions token_positions = TokenPositions::kTraining;
  /// CPU threads the call uses, the caller's included: 0 is default_threads() (one per physical
  /// core), 1 runs on the caller's thread alone; negative counts are an Error. The session keeps
  /// its workers between calls. Backends without CPU threads (CUDA) ignore it.
  int threads = 0;
};

/// A finished sequence: the prompt followed by what was generated.
struct Generation {
  std::vector<Token> tokens;
  int prompt_length = 0;
  /// Why it ended: max_new_tokens reached, eos or one of stop_ids sampled (the last token; a stop
  /// token sampled as the last allowed one counts as the stop), or the callback returned false.
  /// kStopString: generate_text() saw one of the request's stop strings (text/text_generation.hpp).
  enum class Stop { kLength, kEos, kStopId, kCallback, kStopString } stop = Stop::kLength;
  /// One per generated token when Request::logprobs or top_logprobs was set, else empty.
  std::vector<float> logprobs;
  /// Request::top_logprobs entries per generated token, best first: [generated][top_logprobs].
  std::vector<TokenLogprob> top_logprobs;

  /// The top_logprobs entries of generated token i.
  std::span<const TokenLogprob> top_logprobs_at(int i) const {
    const std::size_t n = logprobs.empty() ? 0 : top_logprobs.size() / logprobs.size();
    return std::span(top_logprobs).subspan(std::size_t(i) * n, n);
  }
};

namespace detail {

/// Validates a whole batch before any compute. `padded_length(prompt_length)` gives the tokens
/// the sequence occupies in the cache once the model has laid out its prompt.
template <class PaddedLength>
void validate_requests(std::span<const Request> requests, int vocab, int max_positions,
                       int max_batch, int capacity_tokens, PaddedLength padded_length) {
  if (requests.empty()) throw Error("generate: no sequences in the batch");
  if (int(requests.size()) > max_batch)
    throw Error("batch size " + std::to_string(requests.size()) + " exceeds session capacity " +
                std::to_string(max_batch));
  for (std::size_t s = 0; s < requests.size(); ++s) {
    const Request& r = requests[s];
    const std::string name = "prompt " + std::to_string(s);
    if (r.prompt.empty()) throw Error(name + " is empty");
    for (std::size_t i = 0; i < r.prompt.size(); ++i)
      check_token(r.prompt[i], vocab, "prompt[" + std::to_string(s) + "][" + std::to_string(i) + "]");
    if (r.eos) check_token(*r.eos, vocab, "request " + std::to_string(s) + " eos");
    for (std::size_t i = 0; i < r.stop_ids.size(); ++i)
      check_token(r.stop_ids[i], vocab, "request " + std::to_string(s) + " stop_ids[" + std::to_string(i) + "]");
    if (r.max_new_tokens <= 0)
      throw Error("request " + std::to_string(s) + ": max_new_tokens " + std::to_string(r.max_new_tokens) +
                  (r.max_new_tokens < 0 ? " is negative" : " would generate nothing") + "; it must be at least 1");
    r.sampling.validate(vocab, "request " + std::to_string(s));
    const int choosable = r.sampling.allowed_ids(vocab);
    if (r.top_logprobs < 0 || r.top_logprobs > choosable)
      throw Error("request " + std::to_string(s) + ": top_logprobs " + std::to_string(r.top_logprobs) +
                  " not in [0, " + std::to_string(choosable) + "]");
    const long long total = padded_length(int(r.prompt.size())) + (long long)r.max_new_tokens;
    if (total > max_positions)
      throw Error(name + ": " + std::to_string(total) +
                  " tokens (padded prompt + max_new_tokens) exceed the model's max positions " +
                  std::to_string(max_positions));
    if (total > capacity_tokens)
      throw Error(name + ": " + std::to_string(total) +
                  " tokens (padded prompt + max_new_tokens) exceed session capacity " +
                  std::to_string(capacity_tokens));
  }
}

/// Session tokens that fit every request of a batch, capped at the model's positions so a
/// request beyond them is reported by validate_requests rather than allocated.
template <class PaddedLength>
int session_tokens_for(std::span<const Request> requests, int max_positions, PaddedLength padded_length) {
  long long tokens = 1;
  for (const Request& r : requests)
    tokens = std::max(tokens, padded_length(int(r.prompt.size())) + (long long)std::max(r.max_new_tokens, 0));
  return int(std::min<long long>(tokens, max_positions));
}

/// Checks a session dimension before anything is allocated for it.
inline int check_session_size(int value, const char* what, int limit) {
  if (value <= 0 || value > limit)
    throw Error(std::string("session ") + what + " " + std::to_string(value) + " not in [1, " +
                std::to_string(limit) + "]");
  return value;
}

/// Per-sequence progress: outputs, samplers, stop decisions. Everything a sequence can record is
/// reserved here, so sample() never allocates.
class GenerationState {
 public:
  GenerationState(std::span<const Request> requests, int vocab, const TokenCallback& callback)
      : requests_(requests), callback_(callback) {
    samplers_.reserve(requests.size());
    results_.resize(requests.size());
    for (std::size_t s = 0; s < requests.size(); ++s) {
      const Request& r = requests[s];
      Generation& g = results_[s];
      samplers_.emplace_back(r.sampling, vocab);
      g.tokens = r.prompt;
      g.tokens.reserve(r.prompt.size() + r.max_new_tokens);
      g.prompt_length = int(r.prompt.size());
      if (records_logprobs(r)) {
        g.logprobs.reserve(r.max_new_tokens);
        g.top_logprobs.reserve(std::size_t(r.max_new_tokens) * r.top_logprobs);
      }
      finished_.push_back(false);
    }
  }

  bool finished(int s) const { return finished_[s]; }
  const std::vector<Token>& tokens(int s) const { return results_[s].tokens; }
  int generated(int s) const { return int(results_[s].tokens.size()) - results_[s].prompt_length; }

  /// Samples sequence s's next token from its logits row and records it (and its log-probabilities
  /// when asked), then decides whether the sequence stops.
  Token sample(int s, std::span<const float> logits) {
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (!std::isfinite(logits[i]))
        throw Error("non-finite logit " + std::to_string(logits[i]) + " at vocab index " +
                    std::to_string(i) + " for sequence " + std::to_string(s) + " at generation step " +
                    std::to_string(generated(s)));
    const Request& r = requests_[s];
    Generation& g = results_[s];
    Sampler& sampler = samplers_[s];
    const Token t = sampler.sample(logits, g.tokens, std::size_t(g.prompt_length));
    if (records_logprobs(r)) {
      const std::size_t at = g.top_logprobs.size();
      g.top_logprobs.resize(at + std::size_t(r.top_logprobs));  // within the capacity reserved
      g.logprobs.push_back(sampler.log_probabilities(t, std::span(g.top_logprobs).subspan(at)));
    }
    g.tokens.push_back(t);
    if (r.eos && t == *r.eos) {
      finish(s, Generation::Stop::kEos);
    } else if (std::find(r.stop_ids.begin(), r.stop_ids.end(), t) != r.stop_ids.end()) {
      finish(s, Generation::Stop::kStopId);
    } else if (generated(s) >= r.max_new_tokens) {
      finish(s, Generation::Stop::kLength);
    }
    if (callback_ && !callback_(s, t) && !finished_[s]) finish(s, Generation::Stop::kCallback);
    return t;
  }

  std::vector<Generation> take() { return std::move(results_); }

 private:
  static bool records_logprobs(const Request& r) { return r.logprobs || r.top_logprobs > 0; }
  void finish(int s, Generation::Stop why) {
    finished_[s] = true;
    results_[s].stop = why;
  }
  std::span<const Request> requests_;
  const TokenCallback& callback_;
  std::vector<Sampler> samplers_;
  std::vector<Generation> results_;
  std::vector<bool> finished_;
};

}  // namespace detail
}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Log-likelihood scoring results: per-sequence negative log-likelihood and perplexity.
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/sampling.hpp"  // detail::check_token
#include "blockformer/tensor.hpp"

namespace blockformer {

/// Sum of -log p(token | context) over the tokens the model predicts, and how many those were
/// (at least 1: score() refuses a sequence too short to predict anything).
struct SequenceScore {
  double nll = 0.0;
  int tokens = 0;
  double mean_nll() const { return tokens ? nll / tokens : 0.0; }
  double perplexity() const { return std::exp(mean_nll()); }
};

namespace detail {
/// Rejects, before any compute, what score() cannot score, naming the sequence as the caller indexes
/// it: an empty one, an id outside the vocab, or fewer than `min_tokens` tokens, where nothing would
/// be predicted (0 tokens scored, perplexity 1). `context_only` says which leading tokens are context.
inline void check_scorable(std::span<const std::vector<Token>> sequences, int vocab, std::size_t min_tokens,
                           const std::string& context_only) {
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const std::vector<Token>& sequence = sequences[s];
    if (sequence.empty()) throw Error("sequence " + std::to_string(s) + " is empty");
    for (std::size_t i = 0; i < sequence.size(); ++i)
      check_token(sequence[i], vocab, "sequence[" + std::to_string(s) + "][" + std::to_string(i) + "]");
    if (sequence.size() < min_tokens)
      throw Error("score: sequence " + std::to_string(s) + " has " + std::to_string(sequence.size()) +
                  (sequence.size() == 1 ? " token" : " tokens") + "; at least " + std::to_string(min_tokens) +
                  " are needed, as " + context_only + " is context only and nothing would be scored");
  }
}

/// Throws unless every logit is finite: "<where>: non-finite logit nan at vocab index 77". forward,
/// score and generate report a NaN or Inf from the model (bad weights, overflow) the same way.
template <class Where>
void require_finite_logits(std::span<const float> logits, Where&& where) {
  for (std::size_t i = 0; i < logits.size(); ++i)
    if (!std::isfinite(logits[i]))
      throw Error(where() + ": non-finite logit " + std::to_string(logits[i]) + " at vocab index " + std::to_string(i));
}

/// -log softmax(logits)[target], accumulated in double; the logits must be finite.
inline double token_nll(std::span<const float> logits, Token target) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float v : logits) sum += std::exp(double(v) - max);
  return std::log(sum) - (double(logits[target]) - max);
}
}  // namespace detail

}  // namespace blockformer

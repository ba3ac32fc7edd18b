// SPDX-License-Identifier: Apache-2.0
#pragma once
// Log-likelihood scoring results: per-sequence negative log-likelihood and perplexity.
#include <algorithm>
#include <cmath>
#include <span>

#include "blockformer/tensor.hpp"

namespace blockformer {

/// Sum of -log p(token | context) over the tokens the model predicts, and how many those were.
struct SequenceScore {
  double nll = 0.0;
  int tokens = 0;
  double mean_nll() const { return tokens ? nll / tokens : 0.0; }
  double perplexity() const { return std::exp(mean_nll()); }
};

namespace detail {
/// -log softmax(logits)[target], accumulated in double.
inline double token_nll(std::span<const float> logits, Token target) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float v : logits) sum += std::exp(double(v) - max);
  return std::log(sum) - (double(logits[target]) - max);
}
}  // namespace detail

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Token selection from one row of logits: greedy, or temperature -> top-k -> top-p -> min-p
// (HF's warper order) with a per-request seeded generator, so a request's samples depend on its
// own seed and logits only, never on what else shares the batch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer {

/// How one request picks its tokens. temperature 0 means greedy (argmax, lowest id on ties).
struct SamplingParams {
  float temperature = 0.0f;
  int top_k = 0;        // 0: no limit
  float top_p = 1.0f;   // (0, 1]
  float min_p = 0.0f;   // [0, 1]
  std::uint64_t seed = 0;

  /// Throws naming `who` and the first invalid parameter; `vocab` bounds top_k.
  void validate(int vocab, const std::string& who = "sampling") const {
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
      throw Error(who + ": temperature " + std::to_string(temperature) + " must be finite and >= 0");
    if (top_k < 0 || top_k > vocab)
      throw Error(who + ": top_k " + std::to_string(top_k) + " not in [0, " + std::to_string(vocab) + "]");
    if (!(top_p > 0.0f && top_p <= 1.0f))
      throw Error(who + ": top_p " + std::to_string(top_p) + " not in (0, 1]");
    if (!(min_p >= 0.0f && min_p <= 1.0f))
      throw Error(who + ": min_p " + std::to_string(min_p) + " not in [0, 1]");
  }
};

/// Samples tokens for one request. Holds its generator and a scratch list sized once per vocab.
class Sampler {
 public:
  Sampler(const SamplingParams& params, int vocab) : params_(params), rng_(params.seed) {
    if (params.temperature > 0.0f) candidates_.reserve(vocab);
  }

  Token sample(std::span<const float> logits) {
    if (params_.temperature == 0.0f) return argmax(logits);
    candidates_.clear();
    // Raw logits: dividing by the temperature first would overflow float for tiny temperatures
    // (3 / 1e-40 = inf) and turn the softmax into inf - inf = NaN. The order is the same either way.
    for (std::size_t i = 0; i < logits.size(); ++i) candidates_.push_back({logits[i], Token(i)});
    const auto by_logit = [](const Candidate& a, const Candidate& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    std::size_t keep = candidates_.size();
    if (params_.top_k > 0 && std::size_t(params_.top_k) < keep) {
      keep = params_.top_k;
      std::nth_element(candidates_.begin(), candidates_.begin() + keep - 1, candidates_.end(), by_logit);
    }
    const bool needs_order = params_.top_p < 1.0f;
    if (needs_order) std::sort(candidates_.begin(), candidates_.begin() + keep, by_logit);
    const double max_logit =
        std::max_element(candidates_.begin(), candidates_.begin() + keep, [](auto& a, auto& b) {
          return a.logit < b.logit;
        })->logit;
    double total = 0.0;
    for (std::size_t i = 0; i < keep; ++i) {
      // In double: a finite logit difference over a positive float temperature stays finite (<= 0).
      candidates_[i].prob = std::exp((double(candidates_[i].logit) - max_logit) / params_.temperature);
      total += candidates_[i].prob;
    }
    if (needs_order) {  // smallest prefix whose mass reaches top_p; always keeps the top token
      double mass = 0.0;
      std::size_t i = 0;
      while (i < keep) {
        mass += candidates_[i].prob / total;
        ++i;
        if (mass >= params_.top_p) break;
      }
      keep = i;
    }
    // min_p keeps tokens whose probability is at least min_p times the top token's (prob 1 here).
    double kept_total = 0.0;
    for (std::size_t i = 0; i < keep; ++i) {
      if (candidates_[i].prob < params_.min_p) candidates_[i].prob = 0.0;
      kept_total += candidates_[i].prob;
    }
    double u = std::uniform_real_distribution<double>(0.0, kept_total)(rng_);
    for (std::size_t i = 0; i < keep; ++i) {
      u -= candidates_[i].prob;
      if (u < 0.0 && candidates_[i].prob > 0.0) return candidates_[i].id;
    }
    for (std::size_t i = keep; i-- > 0;)  // rounding left u >= 0: the last kept candidate
      if (candidates_[i].prob > 0.0) return candidates_[i].id;
    return candidates_[0].id;
  }

  static Token argmax(std::span<const float> logits) {
    return Token(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

 private:
  struct Candidate {
    float logit;
    Token id;
    double prob = 0.0;
  };
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
};

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Token selection from one row of logits: logits processors first (repetition, frequency and
// presence penalties, logit bias, banned ids, vocab limit), then greedy or temperature -> top-k ->
// top-p -> min-p (HF's order), with a per-request seeded generator, so a request's samples depend on
// its own seed, logits and tokens only, never on what else shares the batch.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer {

/// One entry of SamplingParams::logit_bias.
struct TokenBias {
  Token token = 0;
  float bias = 0.0f;
};

/// A token and its log-probability (Generation::top_logprobs).
struct TokenLogprob {
  Token token = 0;
  float logprob = 0.0f;
};

namespace detail {

inline void check_token(Token id, int vocab, const std::string& where) {
  if (id < 0 || id >= vocab)
    throw Error(where + ": token id " + std::to_string(id) + " out of range [0, " +
                std::to_string(vocab) + ")");
}

/// A double uniform in [0, 1) from the top 53 bits of one 64-bit draw. Ours, bit for bit: the
/// standard fixes mt19937_64's output but not std::uniform_real_distribution's algorithm, which
/// libstdc++ and libc++ implement differently, so the same seed sampled different tokens.
inline double unit_interval(std::uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }

/// Occurrences of each id in the window [begin, end) of a sequence that only grows, moved forward
/// incrementally so a step costs the tokens entering and leaving the window, not its length.
struct WindowCounts {
  std::vector<int> count;  // per id; empty when the penalty that needs it is off
  std::size_t begin = 0, end = 0;

  void advance(std::span<const Token> sequence, std::size_t new_begin) {
    if (sequence.size() < end)
      throw Error("sampler: the sequence shrank from " + std::to_string(end) + " to " +
                  std::to_string(sequence.size()) + " tokens (one Sampler follows one growing sequence)");
    for (; end < sequence.size(); ++end) {
      const Token t = sequence[end];
      if (t < 0 || std::size_t(t) >= count.size())
        throw Error("sampler: sequence token " + std::to_string(t) + " at index " + std::to_string(end) +
                    " out of range [0, " + std::to_string(count.size()) + ")");
      ++count[t];
    }
    for (; begin < new_begin; ++begin) --count[sequence[begin]];
  }
};

}  // namespace detail

/// How one request picks its tokens.
struct SamplingParams {
  /// 0 means greedy: the argmax of the processed logits, lowest id on ties. top_k, top_p and min_p
  /// are then ignored, silently (HF warns): temperature 0 with top_k 50 is plain greedy.
  float temperature = 0.0f;
  int top_k = 0;        // 0: no limit
  float top_p = 1.0f;   // (0, 1]
  float min_p = 0.0f;   // [0, 1]
  std::uint64_t seed = 0;

  // Logits processors, in the order applied, each off at its default. They run before greedy and
  // before temperature / top-k / top-p / min-p, as in HF, so greedy decoding sees them too.

  /// HF's RepetitionPenaltyLogitsProcessor: every id present in the prompt or the generated tokens
  /// has its logit divided by this when positive, multiplied by it when negative. > 0; 1 is off.
  float repetition_penalty = 1.0f;
  /// OpenAI's (and llama.cpp's) penalties: logit -= frequency_penalty * count + presence_penalty *
  /// (count > 0), count being the id's occurrences among the generated tokens (not the prompt).
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  /// 0: the token sets above. n > 0: all three penalties count only the last n tokens of prompt +
  /// generated, as llama.cpp's penalty_last_n.
  int penalty_last_n = 0;
  /// Added to the logits of these ids after the penalties; biases of a repeated id add up.
  std::vector<TokenBias> logit_bias{};
  /// Never chosen: their logit becomes -inf.
  std::vector<Token> banned_ids{};
  /// 0: any id of the model may be chosen. n > 0: only ids below n, for embeddings padded beyond the
  /// tokenizer (the GPT-NeoX / Pythia models have 50304 rows, their tokenizer 50277 ids).
  int vocab_limit = 0;

  /// The ids that may be chosen: [0, allowed_ids(vocab)).
  int allowed_ids(int vocab) const { return vocab_limit > 0 ? vocab_limit : vocab; }

  /// Throws naming `who` and the first invalid parameter; `vocab` bounds top_k and the ids.
  void validate(int vocab, const std::string& who = "sampling") const {
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
      throw Error(who + ": temperature " + std::to_string(temperature) + " must be finite and >= 0");
    if (top_k < 0 || top_k > vocab)
      throw Error(who + ": top_k " + std::to_string(top_k) + " not in [0, " + std::to_string(vocab) + "]");
    if (!(top_p > 0.0f && top_p <= 1.0f))
      throw Error(who + ": top_p " + std::to_string(top_p) + " not in (0, 1]");
    if (!(min_p >= 0.0f && min_p <= 1.0f))
      throw Error(who + ": min_p " + std::to_string(min_p) + " not in [0, 1]");
    if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
      throw Error(who + ": repetition_penalty " + std::to_string(repetition_penalty) + " must be finite and > 0");
    if (!std::isfinite(frequency_penalty))
      throw Error(who + ": frequency_penalty " + std::to_string(frequency_penalty) + " must be finite");
    if (!std::isfinite(presence_penalty))
      throw Error(who + ": presence_penalty " + std::to_string(presence_penalty) + " must be finite");
    if (penalty_last_n < 0)
      throw Error(who + ": penalty_last_n " + std::to_string(penalty_last_n) + " is negative");
    if (vocab_limit < 0 || vocab_limit > vocab)
      throw Error(who + ": vocab_limit " + std::to_string(vocab_limit) + " not in [0, " + std::to_string(vocab) + "]");
    for (std::size_t i = 0; i < logit_bias.size(); ++i) {
      const std::string name = who + " logit_bias[" + std::to_string(i) + "]";
      detail::check_token(logit_bias[i].token, vocab, name);
      if (!std::isfinite(logit_bias[i].bias))
        throw Error(name + ": bias " + std::to_string(logit_bias[i].bias) + " must be finite (ban with banned_ids)");
    }
    if (banned_ids.empty()) return;
    const int allowed = allowed_ids(vocab);
    std::vector<bool> banned(allowed, false);
    int banned_allowed = 0;
    for (std::size_t i = 0; i < banned_ids.size(); ++i) {
      const Token t = banned_ids[i];
      detail::check_token(t, vocab, who + " banned_ids[" + std::to_string(i) + "]");
      if (t < allowed && !banned[t]) {
        banned[t] = true;
        ++banned_allowed;
      }
    }
    if (banned_allowed == allowed)
      throw Error(who + ": banned_ids ban every id below " + std::to_string(allowed) + ": nothing is left to choose");
  }
};

/// Samples the tokens of one sequence. Holds its generator, the token counts the penalties need and
/// a scratch row for the processed logits, all sized once at construction: sampling never allocates.
class Sampler {
 public:
  Sampler(const SamplingParams& params, int vocab)
      : params_(params), rng_(params.seed), vocab_(vocab), allowed_(params.allowed_ids(vocab)) {
    params.validate(vocab, "sampler");
    if (params.repetition_penalty != 1.0f) repetition_.count.assign(vocab, 0);
    if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) occurrences_.count.assign(vocab, 0);
    if (!params.logit_bias.empty() || !params.banned_ids.empty()) {
      offsets_.assign(allowed_, 0.0f);
      for (const TokenBias& b : params.logit_bias)
        if (b.token < allowed_) offsets_[b.token] += b.bias;
      for (Token t : params.banned_ids)
        if (t < allowed_) offsets_[t] = -INFINITY;
    }
    if (!repetition_.count.empty() || !occurrences_.count.empty() || !offsets_.empty()) processed_.resize(allowed_);
    if (params.temperature > 0.0f) candidates_.reserve(allowed_);
  }

  /// Picks the next token from one row of `vocab` logits. `sequence` is the sequence so far, its
  /// first `prompt_length` tokens the prompt; successive calls pass it extended by the tokens picked
  /// (the penalties count them). Without penalties it may be left empty.
  Token sample(std::span<const float> logits, std::span<const Token> sequence = {}, std::size_t prompt_length = 0) {
    if (logits.size() != std::size_t(vocab_))
      throw Error("sampler: " + std::to_string(logits.size()) + " logits for a vocab of " + std::to_string(vocab_));
    last_ = process(logits.first(allowed_), sequence, prompt_length);
    return params_.temperature == 0.0f ? argmax(last_) : draw(last_);
  }

  /// After sample(): log_softmax of the row it picked from: the logits after the penalties, logit
  /// bias, banned ids and vocab_limit, before temperature, top_k, top_p and min_p (so for greedy
  /// decoding it is log_softmax of HF's output_scores; HF's output_logits are the raw logits).
  /// Returns the chosen token's and fills `top` with the top.size() most likely ids, best first,
  /// lowest id on ties. Computed in double, as scoring, so -logprob equals detail::token_nll.
  float log_probabilities(Token chosen, std::span<TokenLogprob> top) const {
    const double max = *std::max_element(last_.begin(), last_.end());  // finite: some id is not banned
    double sum = 0.0;
    for (float v : last_) sum += std::exp(double(v) - max);
    const double log_sum = std::log(sum);
    const auto logprob = [&](float v) { return float(-(log_sum - (double(v) - max))); };
    // Insertion into the few best so far, one pass over the vocab, no scratch (and no <ranges>
    // pipeline, which clang 14 cannot compile against libstdc++ 12).
    const auto better = [](const TokenLogprob& a, const TokenLogprob& b) {
      return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
    };
    std::size_t filled = 0;
    for (std::size_t i = 0; i < last_.size() && !top.empty(); ++i) {
      const TokenLogprob entry{Token(i), last_[i]};
      if (filled == top.size() && !better(entry, top[filled - 1])) continue;
      std::size_t j = filled < top.size() ? filled++ : filled - 1;
      for (; j > 0 && better(entry, top[j - 1]); --j) top[j] = top[j - 1];
      top[j] = entry;
    }
    for (TokenLogprob& e : top.first(filled)) e.logprob = logprob(e.logprob);
    return logprob(last_[chosen]);
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

  /// The row with the logits processors applied (the input itself when none is on).
  std::span<const float> process(std::span<const float> logits, std::span<const Token> sequence, std::size_t prompt_length) {
    if (processed_.empty()) return logits;
    const std::size_t last_n = std::size_t(params_.penalty_last_n);
    const std::size_t window_begin = last_n > 0 && sequence.size() > last_n ? sequence.size() - last_n : 0;
    if (!repetition_.count.empty()) repetition_.advance(sequence, window_begin);
    if (!occurrences_.count.empty())
      occurrences_.advance(sequence, last_n > 0 ? window_begin : std::min(prompt_length, sequence.size()));
    const double penalty = params_.repetition_penalty;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      // In double: a float logit over a tiny penalty, or a large count times a penalty, overflows
      // float; the result is clamped back to finite floats so only banned ids are -inf.
      double x = logits[i];
      if (!repetition_.count.empty() && repetition_.count[i] > 0) x = x > 0.0 ? x / penalty : x * penalty;
      if (!occurrences_.count.empty() && occurrences_.count[i] > 0)
        x -= double(params_.frequency_penalty) * occurrences_.count[i] + params_.presence_penalty;
      if (!offsets_.empty()) x += offsets_[i];
      processed_[i] = x == -INFINITY ? -INFINITY : float(std::clamp(x, -double(FLT_MAX), double(FLT_MAX)));
    }
    return processed_;
  }

  Token draw(std::span<const float> logits) {
    candidates_.clear();
    // Raw logits: dividing by the temperature first would overflow float for tiny temperatures
    // (3 / 1e-40 = inf) and turn the softmax into inf - inf = NaN. The order is the same either way.
    // Banned ids (-inf) have probability 0 and are left out.
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (logits[i] != -INFINITY) candidates_.push_back({logits[i], Token(i)});
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
    double u = detail::unit_interval(rng_()) * kept_total;
    for (std::size_t i = 0; i < keep; ++i) {
      u -= candidates_[i].prob;
      if (u < 0.0 && candidates_[i].prob > 0.0) return candidates_[i].id;
    }
    for (std::size_t i = keep; i-- > 0;)  // rounding left u >= 0: the last kept candidate
      if (candidates_[i].prob > 0.0) return candidates_[i].id;
    return candidates_[0].id;
  }

  SamplingParams params_;
  std::mt19937_64 rng_;  // the standard fixes its output sequence, so it is the same in every library
  int vocab_, allowed_;
  detail::WindowCounts repetition_, occurrences_;
  std::vector<float> offsets_;    // [allowed]: summed logit_bias, -inf for banned ids; empty when neither
  std::vector<float> processed_;  // [allowed]: scratch for the processed row; empty when no processor is on
  std::span<const float> last_;   // the row the last sample() picked from
  std::vector<Candidate> candidates_;
};

}  // namespace blockformer

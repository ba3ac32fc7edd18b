// SPDX-License-Identifier: Apache-2.0
// Generation features on hand-written logits (no model): the library-independent sampler stream,
// repetition / frequency / presence penalties, logit bias, banned ids, vocab_limit, stop ids, finish
// reasons, log-probabilities and their validation; then each model end to end (banned ids, finish
// reasons, log-probabilities against forward()).
#include <cmath>
#include <random>

#include "fixtures.hpp"

using namespace blockformer;

namespace sampling_features {

constexpr int kHuge = 1 << 20;  // session and model limits that never bind in these tests

/// Samples every sequence of the batch from the same logits row until all have stopped.
std::vector<Generation> run(const std::vector<Request>& requests, const std::vector<float>& logits,
                            const TokenCallback& callback = {}) {
  const int vocab = int(logits.size());
  detail::validate_requests(requests, vocab, kHuge, int(requests.size()), kHuge, [](int n) { return n; });
  detail::GenerationState state(requests, vocab, callback);
  for (bool sampled = true; sampled;) {
    sampled = false;
    for (int s = 0; s < int(requests.size()); ++s)
      if (!state.finished(s)) {
        state.sample(s, logits);
        sampled = true;
      }
  }
  return state.take();
}

std::vector<Token> generated(const Generation& g) { return {g.tokens.begin() + g.prompt_length, g.tokens.end()}; }

/// log_softmax of hand-processed logits, in double.
std::vector<double> log_softmax(const std::vector<double>& x) {
  double max = -INFINITY;
  for (double v : x) max = std::max(max, v);
  double sum = 0.0;
  for (double v : x) sum += std::exp(v - max);
  std::vector<double> out;
  for (double v : x) out.push_back(v - max - std::log(sum));
  return out;
}

/// The log-probability of every id at generated step `step`, by id (from top_logprobs = vocab).
std::vector<float> logprobs_by_id(const Generation& g, int step) {
  const auto top = g.top_logprobs_at(step);
  std::vector<float> by_id(top.size(), NAN);
  for (const TokenLogprob& e : top) by_id[e.token] = e.logprob;
  return by_id;
}

void check_logprobs(const std::vector<float>& got, const std::vector<double>& processed) {
  const auto expected = log_softmax(processed);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-6));
  }
}

std::string request_error(const Request& r, int vocab = 8) {
  return fixtures::error_of([&] {
    detail::validate_requests(std::span(&r, 1), vocab, kHuge, 1, kHuge, [](int n) { return n; });
  });
}

// The test cases live in the namespace too: a using-directive would leak these helpers into the
// test files the unity build compiles after this one.

TEST_CASE("sampling: a fixed seed draws the committed tokens on fixed logits, in every standard library") {
  // The expected tokens were also produced by an independent Python implementation of mt19937_64
  // and of this sampler (tests/scripts/sampler_reference.py); they change only if the formula does.
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 1.0f, 0.0f, 1.5f, -0.5f, 0.25f};
  const auto draws = [&](const SamplingParams& p) {
    Sampler sampler(p, int(logits.size()));
    std::vector<Token> out;
    for (int i = 0; i < 24; ++i) out.push_back(sampler.sample(logits));
    return out;
  };
  CHECK(draws({.temperature = 1.0f, .seed = 2024}) ==
        std::vector<Token>{3, 5, 2, 2, 0, 2, 7, 3, 2, 3, 3, 3, 6, 5, 0, 2, 2, 7, 5, 2, 7, 2, 2, 5});
  CHECK(draws({.temperature = 0.7f, .top_k = 5, .top_p = 0.9f, .min_p = 0.05f, .seed = 7}) ==
        std::vector<Token>{5, 0, 2, 3, 2, 2, 3, 3, 2, 5, 5, 5, 2, 2, 3, 2, 0, 0, 3, 2, 5, 2, 2, 2});
}

TEST_CASE("sampling: the uniform draw is our formula on a generator the standard fixes") {
  std::mt19937_64 standard;  // [rand.predef]: the 10000th output of a default-constructed mt19937_64
  standard.discard(9999);
  CHECK(standard() == 9981545732273789042ull);
  CHECK(detail::unit_interval(0) == 0.0);
  CHECK(detail::unit_interval(1ull << 63) == 0.5);
  CHECK(detail::unit_interval(~0ull) == 1.0 - 0x1.0p-53);
  CHECK(detail::unit_interval((1ull << 11) - 1) == 0.0);  // the low 11 bits are dropped
}

TEST_CASE("sampling: repetition penalty divides positive and multiplies negative logits of prompt and generated ids (HF)") {
  const std::vector<float> logits{2.0f, -1.0f, 1.5f, 0.0f, 0.5f};
  Request r{.prompt = {0, 1, 3}, .max_new_tokens = 2, .sampling = {.repetition_penalty = 2.0f}, .top_logprobs = 5};
  const Generation g = run({r}, logits)[0];
  // Step 0: ids 0, 1, 3 are in the prompt: 2 / 2, -1 * 2, 0 stays 0. Greedy sees the penalized row.
  check_logprobs(logprobs_by_id(g, 0), {1.0, -2.0, 1.5, 0.0, 0.5});
  // Step 1: the generated id 2 is penalized too (1.5 / 2), so id 0 wins again.
  check_logprobs(logprobs_by_id(g, 1), {1.0, -2.0, 0.75, 0.0, 0.5});
  CHECK(generated(g) == std::vector<Token>{2, 0});
  // Sampling at a tiny temperature picks the same argmax of the penalized row.
  r.sampling.temperature = 1e-3f;
  CHECK(generated(run({r}, logits)[0]) == std::vector<Token>{2, 0});
  // penalty_last_n = 1: only the prompt's last id (0) is penalized, so 2 (1.5) beats 0 (1.0).
  r = {.prompt = {2, 0}, .max_new_tokens = 1, .sampling = {.repetition_penalty = 2.0f}};
  CHECK(generated(run({r}, logits)[0]) == std::vector<Token>{0});
  r.sampling.penalty_last_n = 1;
  CHECK(generated(run({r}, logits)[0]) == std::vector<Token>{2});
}

TEST_CASE("sampling: frequency and presence penalties count generated ids, or the last n tokens (OpenAI, llama.cpp)") {
  const std::vector<float> logits{1.0f, 1.0f, 0.8f, 0.0f};
  Request r{.prompt = {0}, .max_new_tokens = 5, .sampling = {.frequency_penalty = 0.3f, .presence_penalty = 0.5f},
            .top_logprobs = 4};
  const Generation g = run({r}, logits)[0];
  // The prompt's id 0 is not counted: 0 and 1 tie, the lowest id wins. Then each pick is penalized
  // by 0.3 per occurrence + 0.5 once: 0 -> 0.2; 1 -> 0.2; 2 -> 0.0; 0 again (0.2, lowest id).
  CHECK(generated(g) == std::vector<Token>{0, 1, 2, 0, 1});
  check_logprobs(logprobs_by_id(g, 4), {1.0 - 2 * 0.3 - 0.5, 1.0 - 0.3 - 0.5, 0.8 - 0.3 - 0.5, 0.0});
  // penalty_last_n = 2: the last two tokens of prompt + generated, the prompt included.
  r.sampling.penalty_last_n = 2;
  r.max_new_tokens = 3;
  // [0] penalizes 0 -> 1; [0 1] -> 2 (0.8 beats 0.2, 0.2); [1 2] leave 0 unpenalized -> 0.
  CHECK(generated(run({r}, logits)[0]) == std::vector<Token>{1, 2, 0});
}

TEST_CASE("sampling: logit bias is added after the penalties; banned ids and ids beyond vocab_limit are never chosen") {
  const std::vector<float> logits{0.0f, 1.0f, 2.0f, 3.0f};
  Request r{.prompt = {1}, .max_new_tokens = 1, .top_logprobs = 4};
  r.sampling.logit_bias = {{0, 5.0f}, {0, -1.0f}, {3, -2.5f}};  // a repeated id's biases add up
  Generation g = run({r}, logits)[0];
  check_logprobs(logprobs_by_id(g, 0), {4.0, 1.0, 2.0, 0.5});
  CHECK(generated(g) == std::vector<Token>{0});
  r.sampling.banned_ids = {0};
  g = run({r}, logits)[0];
  CHECK(generated(g) == std::vector<Token>{2});
  CHECK(g.top_logprobs_at(0).back().token == 0);
  CHECK(g.top_logprobs_at(0).back().logprob == -INFINITY);
  // vocab_limit 2: ids 2 and 3 are out; with 0 banned only 1 is left.
  r.sampling.vocab_limit = 2;
  r.top_logprobs = 2;
  g = run({r}, logits)[0];
  CHECK(generated(g) == std::vector<Token>{1});
  CHECK(g.logprobs[0] == 0.0f);  // the only choosable id has probability 1
  // Penalty first, then bias: (3 / 2) + 1, not (3 + 1) / 2.
  Request order{.prompt = {1}, .max_new_tokens = 1, .sampling = {.repetition_penalty = 2.0f}, .top_logprobs = 2};
  order.sampling.logit_bias = {{1, 1.0f}};
  check_logprobs(logprobs_by_id(run({order}, {0.0f, 3.0f})[0], 0), {0.0, 2.5});
  // Sampled: a flat distribution over 0..1 only, both drawn, never a banned or limited id.
  Sampler sampler({.temperature = 50.0f, .seed = 3, .banned_ids = {2}, .vocab_limit = 3}, 4);
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 400; ++i) ++counts[sampler.sample(logits)];
  CHECK(counts[2] == 0);
  CHECK(counts[3] == 0);
  CHECK(counts[0] > 100);
  CHECK(counts[1] > 100);
}

TEST_CASE("generation: finish reasons for eos, stop ids, length and the callback") {
  const std::vector<float> logits{0.0f, 1.0f, 2.0f, 9.0f, 1.5f};  // greedy always samples 3
  std::vector<Request> requests{
      {.prompt = {1}, .max_new_tokens = 4, .eos = 3},
      {.prompt = {1}, .max_new_tokens = 4, .stop_ids = {4, 3}},
      {.prompt = {1}, .max_new_tokens = 4, .eos = 3, .stop_ids = {3}},  // both: eos is named
      {.prompt = {1}, .max_new_tokens = 1, .stop_ids = {3}},            // a stop on the last allowed token is a stop
      {.prompt = {1}, .max_new_tokens = 3, .stop_ids = {4}},
      {.prompt = {1}, .max_new_tokens = 3},
  };
  const TokenCallback stop_five = [](int s, Token) { return s != 5; };
  const auto out = run(requests, logits, stop_five);
  CHECK(out[0].stop == Generation::Stop::kEos);
  CHECK(out[1].stop == Generation::Stop::kStopId);
  CHECK(out[2].stop == Generation::Stop::kEos);
  CHECK(out[3].stop == Generation::Stop::kStopId);
  CHECK(out[4].stop == Generation::Stop::kLength);
  CHECK(out[5].stop == Generation::Stop::kCallback);
  for (int s : {0, 1, 2, 3, 5}) CHECK(generated(out[s]) == std::vector<Token>{3});
  CHECK(generated(out[4]) == std::vector<Token>{3, 3, 3});
  // The token is kept and the stop reason is the stop id's even when the callback also says stop.
  const TokenCallback stop_all = [](int, Token) { return false; };
  CHECK(run({requests[1]}, logits, stop_all)[0].stop == Generation::Stop::kStopId);
}

TEST_CASE("generation: log-probabilities are log_softmax before temperature, top-n best first, only when asked") {
  const std::vector<float> logits{1.0f, 2.0f, 3.0f, 1.0f};
  Request r{.prompt = {0}, .max_new_tokens = 6, .sampling = {.temperature = 0.5f, .top_k = 3, .seed = 1},
            .top_logprobs = 3};
  const Generation g = run({r}, logits)[0];
  const auto expected = log_softmax({1.0, 2.0, 3.0, 1.0});
  REQUIRE(g.logprobs.size() == 6);
  REQUIRE(g.top_logprobs.size() == 6 * 3);
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    const Token chosen = g.tokens[g.prompt_length + i];
    CHECK(g.logprobs[i] == doctest::Approx(expected[chosen]).epsilon(1e-6));
    CHECK(double(g.logprobs[i]) == doctest::Approx(-detail::token_nll(logits, chosen)).epsilon(1e-7));
    const auto top = g.top_logprobs_at(i);
    REQUIRE(top.size() == 3);
    CHECK(top[0].token == 2);
    CHECK(top[1].token == 1);
    CHECK(top[2].token == 0);  // ties (ids 0 and 3) go to the lower id
    CHECK(top[2].logprob == doctest::Approx(expected[0]).epsilon(1e-6));
  }
  // logprobs alone: one per token, no alternatives; neither: nothing recorded.
  r.top_logprobs = 0;
  r.logprobs = true;
  Generation only = run({r}, logits)[0];
  CHECK(only.logprobs.size() == 6);
  CHECK(only.top_logprobs.empty());
  CHECK(only.top_logprobs_at(2).empty());
  r.logprobs = false;
  only = run({r}, logits)[0];
  CHECK(only.logprobs.empty());
  CHECK(only.top_logprobs.empty());
}

TEST_CASE("requests: max_new_tokens defaults to 16 and 0 is refused; new fields are validated by name") {
  const Request defaults{.prompt = {1}, .eos = 0};  // the README's designated-initializer form still compiles
  CHECK(defaults.max_new_tokens == 16);
  CHECK(run({Request{.prompt = {1}}}, {0.0f, 1.0f})[0].tokens.size() == 1 + 16);
  const auto error = [](auto edit) {
    Request r{.prompt = {1, 2}, .max_new_tokens = 2};
    edit(r);
    return request_error(r);
  };
  const auto contains = [](const std::string& message, const std::string& part) {
    CAPTURE(message);
    CHECK(message.find(part) != std::string::npos);
  };
  contains(error([](Request& r) { r.max_new_tokens = 0; }), "request 0: max_new_tokens 0 would generate nothing; it must be at least 1");
  contains(error([](Request& r) { r.max_new_tokens = -3; }), "request 0: max_new_tokens -3 is negative");
  contains(error([](Request& r) { r.stop_ids = {2, 8}; }), "request 0 stop_ids[1]: token id 8 out of range [0, 8)");
  contains(error([](Request& r) { r.top_logprobs = 9; }), "request 0: top_logprobs 9 not in [0, 8]");
  contains(error([](Request& r) { r.top_logprobs = -1; }), "request 0: top_logprobs -1 not in [0, 8]");
  contains(error([](Request& r) { r.top_logprobs = 5; r.sampling.vocab_limit = 4; }), "request 0: top_logprobs 5 not in [0, 4]");
  contains(error([](Request& r) { r.sampling.repetition_penalty = 0.0f; }), "request 0: repetition_penalty 0.000000 must be finite and > 0");
  contains(error([](Request& r) { r.sampling.repetition_penalty = INFINITY; }), "repetition_penalty inf must be finite and > 0");
  contains(error([](Request& r) { r.sampling.frequency_penalty = NAN; }), "request 0: frequency_penalty nan must be finite");
  contains(error([](Request& r) { r.sampling.presence_penalty = -INFINITY; }), "request 0: presence_penalty -inf must be finite");
  contains(error([](Request& r) { r.sampling.penalty_last_n = -1; }), "request 0: penalty_last_n -1 is negative");
  contains(error([](Request& r) { r.sampling.vocab_limit = 9; }), "request 0: vocab_limit 9 not in [0, 8]");
  contains(error([](Request& r) { r.sampling.logit_bias = {{1, 1.0f}, {9, 1.0f}}; }), "request 0 logit_bias[1]: token id 9 out of range [0, 8)");
  contains(error([](Request& r) { r.sampling.logit_bias = {{1, INFINITY}}; }), "request 0 logit_bias[0]: bias inf must be finite (ban with banned_ids)");
  contains(error([](Request& r) { r.sampling.banned_ids = {1, -2}; }), "request 0 banned_ids[1]: token id -2 out of range [0, 8)");
  contains(error([](Request& r) { r.sampling.banned_ids = {0, 1, 2, 3, 4, 5, 6, 7, 3}; }), "request 0: banned_ids ban every id below 8: nothing is left to choose");
  contains(error([](Request& r) { r.sampling.vocab_limit = 2; r.sampling.banned_ids = {1, 0}; }), "banned_ids ban every id below 2");
  CHECK(error([](Request& r) { r.sampling.vocab_limit = 2; r.sampling.banned_ids = {1, 5, 7}; }) == "(no error)");
}

TEST_CASE("sampling: a Sampler follows one growing sequence and one vocab") {
  Sampler sampler({.repetition_penalty = 1.5f}, 4);
  const std::vector<float> logits{0.0f, 1.0f, 2.0f, 3.0f};
  const std::vector<Token> sequence{1, 2, 3};
  CHECK(sampler.sample(logits, sequence) == 3);  // all penalized: 0, 0.67, 1.33, 2
  CHECK(fixtures::error_of([&] { sampler.sample(logits, std::span(sequence).first(2)); })
            .find("sampler: the sequence shrank from 3 to 2 tokens") != std::string::npos);
  CHECK(fixtures::error_of([&] { sampler.sample(std::span(logits).first(3)); })
            .find("sampler: 3 logits for a vocab of 4") != std::string::npos);
  const std::vector<Token> bad{1, 2, 3, 4};
  CHECK(fixtures::error_of([&] { sampler.sample(logits, bad); })
            .find("sampler: sequence token 4 at index 3 out of range [0, 4)") != std::string::npos);
  CHECK(fixtures::error_of([] { Sampler({.vocab_limit = 5}, 4); }).find("sampler: vocab_limit 5 not in [0, 4]") != std::string::npos);
}

/// One model end to end: banning the tokens greedy decoding picks changes the output and none of them
/// appears, greedy or sampled; finish reasons per sequence; logprobs match forward()'s log_softmax.
template <class Model, class LogitsRow>
void check_model_features(const Model& model, LogitsRow&& forward_row) {
  const std::vector<Token> prompt{7, 31, 200, 5, 9};
  const Request greedy{.prompt = prompt, .max_new_tokens = 12, .logprobs = true};
  const Generation reference = model.generate(std::span(&greedy, 1))[0];
  const std::vector<Token> picked = generated(reference);
  REQUIRE(picked.size() == 12);

  std::vector<Request> banned(2, Request{.prompt = prompt, .max_new_tokens = 12});
  banned[0].sampling.banned_ids = picked;
  banned[1].sampling = {.temperature = 1.0f, .seed = 9, .banned_ids = picked, .vocab_limit = 500};
  const auto without = model.generate(banned);
  for (int s = 0; s < 2; ++s)
    for (Token t : generated(without[s])) {
      CAPTURE(s);
      CAPTURE(t);
      CHECK(std::find(picked.begin(), picked.end(), t) == picked.end());
      if (s == 1) CHECK(t < 500);
    }

  std::vector<Request> stops(3, Request{.prompt = prompt, .max_new_tokens = 12});
  stops[1].stop_ids = {Token(511), picked[5]};
  const std::size_t first_at = std::find_first_of(picked.begin(), picked.end(), stops[1].stop_ids.begin(),
                                                  stops[1].stop_ids.end()) - picked.begin();
  GenerateOptions options;
  options.on_token = [](int s, Token) { return s != 2; };
  const auto out = model.generate(stops, options);
  CHECK(out[0].stop == Generation::Stop::kLength);
  CHECK(generated(out[0]) == picked);
  CHECK(out[1].stop == Generation::Stop::kStopId);
  CHECK(generated(out[1]) == std::vector<Token>(picked.begin(), picked.begin() + first_at + 1));
  CHECK(out[2].stop == Generation::Stop::kCallback);
  CHECK(generated(out[2]) == std::vector<Token>{picked[0]});

  // Greedy log-probabilities: the cached decode against an uncached forward, fp32 noise apart.
  REQUIRE(reference.logprobs.size() == 12);
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    const std::vector<float> row = forward_row(reference.tokens, reference.prompt_length + i);
    CHECK(reference.logprobs[i] == doctest::Approx(-detail::token_nll(row, picked[i])).epsilon(1e-4));
    CHECK(reference.logprobs[i] <= 0.0f);
  }
}

TEST_CASE("generation: block model end to end: banned ids, stop ids, finish reasons, logprobs") {
  const auto& model = fixtures::block_tiny();
  check_model_features(model, [&](const std::vector<Token>& tokens, int position) {
    // The logits that predict tokens[position]: forward over the left-padded tokens, whole blocks.
    const int pad = fixtures::BlockTiny::padded_length(5) - 5;
    std::vector<Token> padded(pad, 0);
    padded.insert(padded.end(), tokens.begin(), tokens.end());
    padded.resize(padded.size() / 4 * 4);
    const auto logits = model.forward(padded, 1);
    const std::size_t row = std::size_t(position + pad - 4);
    return std::vector<float>(logits.begin() + row * 512, logits.begin() + (row + 1) * 512);
  });
}

TEST_CASE("generation: vanilla model end to end: banned ids, stop ids, finish reasons, logprobs") {
  const auto& model = fixtures::vanilla_tiny();
  check_model_features(model, [&](const std::vector<Token>& tokens, int position) {
    const auto logits = model.forward(tokens, 1);
    const std::size_t row = std::size_t(position - 1);
    return std::vector<float>(logits.begin() + row * 512, logits.begin() + (row + 1) * 512);
  });
}

}  // namespace sampling_features

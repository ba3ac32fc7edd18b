// SPDX-License-Identifier: Apache-2.0
// Generation invariants: cached == uncached, batched == one-by-one, seeds, stopping rules.
#include <random>

#include "fixtures.hpp"

using namespace blockformer;

namespace {
std::vector<Token> random_prompt(std::mt19937& rng, int length) {
  std::uniform_int_distribution<Token> id(2, 511);
  std::vector<Token> p(length);
  for (Token& t : p) t = id(rng);
  return p;
}

std::vector<Request> ragged_requests(SamplingParams sampling) {
  std::mt19937 rng(7);
  std::vector<Request> requests;
  for (int length : {5, 12, 1, 9}) {
    requests.push_back(Request{random_prompt(rng, length), 23, sampling});
    requests.back().sampling.seed = 100 + length;
  }
  return requests;
}

template <class Model>
void check_batched_equals_one_by_one(const Model& model, SamplingParams sampling) {
  const auto requests = ragged_requests(sampling);
  const auto batched = model.generate(requests);
  for (std::size_t s = 0; s < requests.size(); ++s) {
    CAPTURE(s);
    const auto alone = model.generate(std::span(&requests[s], 1));
    CHECK(alone[0].tokens == batched[s].tokens);
    CHECK(int(batched[s].tokens.size()) == int(requests[s].prompt.size()) + 23);
  }
}
}  // namespace

TEST_CASE("generation: block greedy equals the argmax of an uncached forward") {
  const auto& model = fixtures::block_tiny();
  const auto requests = ragged_requests({});
  const auto out = model.generate(requests);
  for (std::size_t s = 0; s < requests.size(); ++s) {
    CAPTURE(s);
    // Recompute from scratch: forward over the left-padded output, whole blocks only.
    const std::size_t first = fixtures::BlockTiny::padded_length(int(requests[s].prompt.size()));
    std::vector<Token> padded(first - requests[s].prompt.size(), 0);
    padded.insert(padded.end(), out[s].tokens.begin(), out[s].tokens.end());
    padded.resize(padded.size() / 4 * 4);
    const auto logits = model.forward(padded, 1);
    for (std::size_t t = first; t < padded.size(); ++t) {
      const auto row = std::span(logits).subspan((t - 4) * 512, 512);
      CHECK(Sampler::argmax(row) == padded[t]);
    }
  }
}

TEST_CASE("generation: vanilla greedy equals the argmax of an uncached forward") {
  const auto& model = fixtures::vanilla_tiny();
  const auto requests = ragged_requests({});
  const auto out = model.generate(requests);
  for (std::size_t s = 0; s < requests.size(); ++s) {
    const auto& tokens = out[s].tokens;
    const auto logits = model.forward(tokens, 1);
    for (std::size_t t = requests[s].prompt.size(); t < tokens.size(); ++t)
      CHECK(Sampler::argmax(std::span(logits).subspan((t - 1) * 512, 512)) == tokens[t]);
  }
}

TEST_CASE("generation: batched equals one-by-one (greedy and sampled)") {
  const SamplingParams sampled{.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .min_p = 0.02f};
  check_batched_equals_one_by_one(fixtures::block_tiny(), {});
  check_batched_equals_one_by_one(fixtures::block_tiny(), sampled);
  check_batched_equals_one_by_one(fixtures::vanilla_tiny(), {});
  check_batched_equals_one_by_one(fixtures::vanilla_tiny(), sampled);
}

TEST_CASE("generation: same seed same sample, different seeds differ") {
  const auto& model = fixtures::block_tiny();
  std::mt19937 rng(3);
  Request r{random_prompt(rng, 8), 40, {.temperature = 1.0f, .seed = 11}};
  const auto a = model.generate(std::span(&r, 1));
  const auto b = model.generate(std::span(&r, 1));
  CHECK(a[0].tokens == b[0].tokens);
  r.sampling.seed = 12;
  const auto c = model.generate(std::span(&r, 1));
  CHECK(a[0].tokens != c[0].tokens);
}

TEST_CASE("generation: degenerate sampling settings reduce to greedy") {
  const auto& model = fixtures::vanilla_tiny();
  std::mt19937 rng(5);
  const Request greedy{random_prompt(rng, 6), 20};
  const auto expected = model.generate(std::span(&greedy, 1))[0].tokens;
  for (SamplingParams p : {SamplingParams{.temperature = 1.5f, .top_k = 1, .seed = 1},
                           SamplingParams{.temperature = 1.5f, .top_p = 1e-6f, .seed = 2},
                           SamplingParams{.temperature = 1.5f, .min_p = 1.0f, .seed = 3}}) {
    Request r = greedy;
    r.sampling = p;
    CHECK(model.generate(std::span(&r, 1))[0].tokens == expected);
  }
}

TEST_CASE("generation: eos and the streaming callback stop one sequence") {
  const auto& model = fixtures::block_tiny();
  auto requests = ragged_requests({});
  const auto full = model.generate(requests);
  // Stop sequence 1 at its 6th generated token via eos, sequence 2 at its 3rd via the callback.
  const int n1 = int(requests[1].prompt.size());
  requests[1].eos = full[1].tokens[n1 + 5];
  GenerateOptions options;
  std::vector<int> seen(requests.size(), 0);
  options.on_token = [&](int s, Token t) {
    CHECK(t == full[s].tokens[requests[s].prompt.size() + seen[s]]);
    return ++seen[s] < 3 || s != 2;
  };
  const auto out = model.generate(requests, options);
  const auto eos_at = std::find(full[1].tokens.begin() + n1, full[1].tokens.end(), *requests[1].eos);
  CHECK(out[1].stop == Generation::Stop::kEos);
  CHECK(out[1].tokens == std::vector<Token>(full[1].tokens.begin(), eos_at + 1));
  CHECK(out[2].stop == Generation::Stop::kCallback);
  CHECK(out[2].tokens.size() == requests[2].prompt.size() + 3);
  CHECK(out[0].tokens == full[0].tokens);
  CHECK(out[3].tokens == full[3].tokens);
  CHECK(seen[0] == 23);
}

TEST_CASE("generation: a session is reusable and sized once") {
  const auto& model = fixtures::block_tiny();
  auto session = model.make_session(4, 64);
  const auto requests = ragged_requests({});
  const auto first = model.generate(session, requests);
  const auto second = model.generate(session, requests);
  for (std::size_t s = 0; s < requests.size(); ++s) CHECK(first[s].tokens == second[s].tokens);
  CHECK(session.capacity_tokens() == 64);
  CHECK(session.cache_bytes() > 0);
}

TEST_CASE("scoring: NLL equals log-softmax of the forward logits") {
  std::mt19937 rng(9);
  const std::vector<std::vector<Token>> sequences{random_prompt(rng, 16), random_prompt(rng, 11)};
  const auto vanilla = fixtures::vanilla_tiny().score(sequences);
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto logits = fixtures::vanilla_tiny().forward(sequences[s], 1);
    double nll = 0.0;
    for (std::size_t t = 1; t < sequences[s].size(); ++t) {
      const auto row = std::span(logits).subspan((t - 1) * 512, 512);
      double z = 0.0;
      for (float v : row) z += std::exp(double(v));
      nll += std::log(z) - row[sequences[s][t]];
    }
    CHECK(vanilla[s].tokens == int(sequences[s].size()) - 1);
    CHECK(vanilla[s].nll == doctest::Approx(nll).epsilon(1e-6));
    CHECK(vanilla[s].perplexity() == doctest::Approx(std::exp(nll / vanilla[s].tokens)).epsilon(1e-6));
  }
  const auto block = fixtures::block_tiny().score(sequences);
  CHECK(block[0].tokens == 12);  // 16 tokens = 4 blocks, the first is context only
  CHECK(block[1].tokens == 8);   // 11 tokens pad to 12 = 3 blocks
  CHECK(block[0].nll > 0.0);
}

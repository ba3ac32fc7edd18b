// SPDX-License-Identifier: Apache-2.0
// Results do not depend on the thread count a call is given (GenerateOptions::threads, the threads
// argument of forward() and score()), and a bad count is refused naming it.
#include <algorithm>
#include <thread>

#include "fixtures.hpp"

using namespace blockformer;

namespace {
// Wide enough that linear, attention and layer norm all take their threaded paths (past
// EigenBackend::kMinThreadedWork) in prefill, and the linear layers in decode too.
constexpr BlockConfig kThreaded{
    .vocab = 2048, .max_positions = 512, .block_length = 4, .embedder_width = 64, .prefix_length = 2,
    .block_decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16},
    .token_decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16}};
constexpr VanillaConfig kThreadedVanilla{
    .vocab = 2048, .max_positions = 512, .decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16}};

struct Outputs {
  std::vector<float> logits;
  std::vector<SequenceScore> scores;
  std::vector<Generation> generations;
};

std::vector<Token> ids() {
  std::vector<Token> out(2 * 64);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = Token((i * 7919) % 2048);
  return out;
}

std::vector<Request> requests() {
  const std::vector<Token> all = ids();
  std::vector<Request> out(6);
  for (int s = 0; s < 6; ++s) out[s] = Request{std::vector<Token>(all.begin(), all.begin() + 5 + 9 * s), 24};
  out[1].sampling = {.temperature = 0.8f, .seed = 7};
  return out;
}

template <class Model>
Outputs run(const Model& model, int threads) {
  const std::vector<Token> all = ids();
  const std::vector<std::vector<Token>> sequences{{all.begin(), all.begin() + 40}, {all.begin() + 3, all.end()}};
  Outputs o;
  if constexpr (requires { Model::kL; }) {
    o.logits = model.forward(all, 2, nullptr, threads);
    o.scores = model.score(sequences, BlockPadding::kLeft, threads);
  } else {
    o.logits = model.forward(all, 2, threads);
    o.scores = model.score(sequences, threads);
  }
  auto session = model.make_session(6, 160);
  o.generations = model.generate(session, requests(), {.threads = threads});
  return o;
}

template <class Model>
void check_thread_counts(const Model& model) {
  const Outputs one = run(model, 1);
  for (const int threads : {2, 3, 0}) {
    CAPTURE(threads);
    const Outputs many = run(model, threads);
    REQUIRE(many.logits.size() == one.logits.size());
    // Column slices change Eigen's GEMM blocking, hence the summation order: fp32 tolerance.
    CHECK(fixtures::max_abs_diff(one.logits, many.logits) <= 1e-5);
    for (std::size_t s = 0; s < one.scores.size(); ++s) {
      CHECK(many.scores[s].tokens == one.scores[s].tokens);
      CHECK(many.scores[s].nll == doctest::Approx(one.scores[s].nll).epsilon(1e-6));
    }
    for (std::size_t s = 0; s < one.generations.size(); ++s)
      CHECK(many.generations[s].tokens == one.generations[s].tokens);
  }
}
}  // namespace

TEST_CASE("thread count: one, two, three and the default give the same logits, scores and tokens (block)") {
  check_thread_counts(BlockTransformer<kThreaded, EigenBackend>::random(5));
}

TEST_CASE("thread count: one, two, three and the default give the same logits, scores and tokens (vanilla)") {
  check_thread_counts(GptNeoxLM<kThreadedVanilla, EigenBackend>::random(5));
}

TEST_CASE("thread count: a session changes its count between calls and keeps its results") {
  const auto model = GptNeoxLM<kThreadedVanilla, EigenBackend>::random(3);
  auto session = model.make_session(6, 160);
  const auto one = model.generate(session, requests(), {.threads = 1});
  const auto two = model.generate(session, requests(), {.threads = 2});
  const auto again = model.generate(session, requests(), {.threads = 2});
  for (std::size_t s = 0; s < one.size(); ++s) {
    CHECK(two[s].tokens == one[s].tokens);
    CHECK(again[s].tokens == one[s].tokens);
  }
}

TEST_CASE("thread count: negative and absurd counts are refused, naming the value") {
  const auto& model = fixtures::vanilla_tiny();
  const auto& block = fixtures::block_tiny();
  const std::vector<Token> prompt{1, 2, 3, 4, 5, 6, 7, 8};
  auto session = model.make_session(1, 32);
  CHECK_THROWS_WITH_AS(model.generate(session, {{.prompt = prompt}}, {.threads = -1}),
                       "blockformer: generate: threads -1 not in [1, 1024] (0 means the default, one per physical core)", Error);
  CHECK_THROWS_WITH_AS(block.generate({{.prompt = prompt}}, {.threads = 5000}),
                       "blockformer: generate: threads 5000 not in [1, 1024] (0 means the default, one per physical core)", Error);
  CHECK_THROWS_WITH_AS(model.forward(prompt, 1, -2), doctest::Contains("forward: threads -2 not in [1, 1024]"), Error);
  CHECK_THROWS_WITH_AS(block.forward(prompt, 1, nullptr, -2), doctest::Contains("forward: threads -2"), Error);
  CHECK_THROWS_WITH_AS(model.score({prompt}, -4), doctest::Contains("score: threads -4"), Error);
  CHECK_THROWS_WITH_AS(block.score({prompt}, BlockPadding::kLeft, -4), doctest::Contains("score: threads -4"), Error);
  // The refused call left the session usable.
  CHECK(model.generate(session, {{.prompt = prompt, .max_new_tokens = 3}}, {.threads = 1})[0].tokens.size() == 11);
}

TEST_CASE("thread count: the default is this process's physical cores") {
  const int cores = default_threads();
  CHECK(cores >= 1);
  CHECK(cores <= int(std::max(1u, std::thread::hardware_concurrency())));
  CHECK(resolve_threads(0, "test") == cores);
  CHECK(resolve_threads(3, "test") == 3);
}

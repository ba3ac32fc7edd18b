// SPDX-License-Identifier: Apache-2.0
// LoadOptions::position_limit: the opt-in to run past the trained context. Inside the trained
// length an extended model computes exactly what the default one does; past it, generation still
// equals the argmax of an uncached forward (the extended rotary table is used consistently), and
// the default model keeps refusing what the extended one accepts.
#include <blockformer/text.hpp>

#include <random>

#include "fixtures.hpp"

using namespace blockformer;

namespace {
template <class Model>
Model load_with_limit(const std::string& fixture, int position_limit) {
  LoadOptions options;
  options.position_limit = position_limit;
  return Model::load(fixtures::path(fixture + "/model.safetensors"), options);
}

std::vector<Token> random_ids(int length, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<Token> id(2, 511);
  std::vector<Token> ids(length);
  for (Token& t : ids) t = id(rng);
  return ids;
}

constexpr int kTrained = presets::block_tiny.max_positions;
static_assert(presets::vanilla_tiny.max_positions == kTrained);
constexpr int kExtended = kTrained + 64;
}  // namespace

TEST_CASE("position_limit: 0 keeps the trained length, and a bad limit is refused naming it") {
  CHECK(fixtures::block_tiny().max_positions() == kTrained);
  CHECK(fixtures::vanilla_tiny().max_positions() == kTrained);
  CHECK(load_with_limit<fixtures::VanillaTiny>("vanilla_tiny", kExtended).max_positions() == kExtended);
  CHECK(fixtures::BlockTiny::random(1, kExtended).max_positions() == kExtended);
  CHECK_THROWS_WITH_AS(fixtures::VanillaTiny::random(1, kTrained - 1),
                       "blockformer: position_limit 2047 must be 0 (the trained max_positions 2048) or lie in "
                       "[2048, 1048576]",
                       Error);
  CHECK_THROWS_WITH_AS(load_with_limit<fixtures::BlockTiny>("block_tiny", kTrained + 2),
                       "blockformer: position_limit 2050 must be 0 (the trained max_positions 2048) or lie in "
                       "[2048, 1048576] and be a multiple of the block length 4",
                       Error);
  CHECK_THROWS_WITH_AS(fixtures::VanillaTiny::random(1, (1 << 20) + 1),
                       doctest::Contains("position_limit 1048577 must be 0"), Error);
}

TEST_CASE("position_limit: inside the trained length an extended model equals the default one") {
  const auto ids = random_ids(2 * 64, 3);
  const auto vanilla = load_with_limit<fixtures::VanillaTiny>("vanilla_tiny", kExtended);
  CHECK(vanilla.forward(ids, 2) == fixtures::vanilla_tiny().forward(ids, 2));
  const auto block = load_with_limit<fixtures::BlockTiny>("block_tiny", kExtended);
  CHECK(block.forward(ids, 2) == fixtures::block_tiny().forward(ids, 2));
  const std::vector<Request> request{{.prompt = random_ids(37, 4), .max_new_tokens = 12}};
  CHECK(vanilla.generate(request)[0].tokens == fixtures::vanilla_tiny().generate(request)[0].tokens);
  CHECK(block.generate(request)[0].tokens == fixtures::block_tiny().generate(request)[0].tokens);
}

TEST_CASE("position_limit: past the trained length, vanilla greedy equals the argmax of an uncached forward") {
  const auto model = load_with_limit<fixtures::VanillaTiny>("vanilla_tiny", kExtended);
  const std::vector<Request> request{{.prompt = random_ids(kTrained - 8, 5), .max_new_tokens = 40}};
  CHECK_THROWS_WITH_AS(fixtures::vanilla_tiny().generate(request), doctest::Contains("exceed the model's max positions 2048"),
                       Error);
  const std::vector<Token> tokens = model.generate(request)[0].tokens;
  REQUIRE(int(tokens.size()) == kTrained + 32);
  const auto logits = model.forward(tokens, 1);
  constexpr int V = presets::vanilla_tiny.vocab;
  for (std::size_t t = request[0].prompt.size(); t < tokens.size(); ++t) {
    CAPTURE(t);
    CHECK(Sampler::argmax(std::span(logits).subspan((t - 1) * V, V)) == tokens[t]);
  }
  CHECK_THROWS_WITH_AS(model.forward(random_ids(kExtended + 1, 6), 1),
                       "blockformer: forward: sequence length 2113 exceeds max positions 2112", Error);
}

TEST_CASE("position_limit: past the trained length, block greedy equals the argmax of an uncached forward") {
  const auto model = load_with_limit<fixtures::BlockTiny>("block_tiny", kExtended);
  const std::vector<Request> request{{.prompt = random_ids(kTrained - 8, 7), .max_new_tokens = 40}};
  CHECK_THROWS_WITH_AS(fixtures::block_tiny().generate(request), doctest::Contains("exceed the model's max positions 2048"),
                       Error);
  const std::vector<Token> tokens = model.generate(request)[0].tokens;
  REQUIRE(int(tokens.size()) == kTrained + 32);  // the prompt is whole blocks: no padding
  const auto logits = model.forward(tokens, 1);
  constexpr int V = presets::block_tiny.vocab, L = presets::block_tiny.block_length;
  for (std::size_t t = request[0].prompt.size(); t < tokens.size(); ++t) {
    CAPTURE(t);
    CHECK(Sampler::argmax(std::span(logits).subspan((t - L) * V, V)) == tokens[t]);
  }
}

TEST_CASE("position_limit: sliding windows default to the trained length and may reach the limit") {
  const auto model = load_with_limit<fixtures::VanillaTiny>("vanilla_tiny", kExtended);
  const auto ids = random_ids(kExtended, 8);
  const SlidingScore by_default = score_sliding(model, ids);
  CHECK(by_default.used.window == kTrained);
  const SlidingScore whole = score_sliding(model, ids, {.window = kExtended, .stride = kExtended, .threads = 0});
  CHECK(whole.windows == 1);
  const auto direct = model.score({ids});
  CHECK(whole.score.nll == doctest::Approx(direct[0].nll).epsilon(1e-9));
  CHECK_THROWS_WITH_AS(score_sliding(fixtures::vanilla_tiny(), ids, {.window = kExtended, .stride = 0, .threads = 0}),
                       doctest::Contains("window 2112 must lie in [2, 2048]"), Error);
}

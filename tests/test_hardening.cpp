// SPDX-License-Identifier: Apache-2.0
// docs/bad_inputs.md rows not covered elsewhere: G2 (ids in the tokenizer gap are valid), G9 (a throwing callback
// propagates and leaves the session usable), C6 (special ids at the vocab boundary), and sampling guards
// found while hardening (temperatures so small that logits / temperature overflow).
#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>

#include "fixtures.hpp"
#include "safetensors_builder.hpp"

using namespace blockformer;

namespace {


// The Pythia/authors' embedding has 50304 rows while the GPT-NeoX tokenizer has 50277 entries: ids
// 50277..50303 are "the gap". A narrow model with that vocab keeps the test cheap.
constexpr int kPythiaVocab = 50304;
constexpr int kTokenizerSize = 50277;
constexpr BlockConfig kGapBlock{
    .vocab = kPythiaVocab, .max_positions = 64, .block_length = 2, .embedder_width = 4, .prefix_length = 2,
    .block_decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2},
    .token_decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2}};
constexpr VanillaConfig kGapVanilla{
    .vocab = kPythiaVocab, .max_positions = 64, .decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2}};

std::vector<Request> gap_requests() {
  std::vector<Token> gap;
  for (Token t = kTokenizerSize; t < kPythiaVocab; ++t) gap.push_back(t);
  return {{{kTokenizerSize, kPythiaVocab - 1, 5}, 6}, {gap, 5, {.temperature = 1.0f, .seed = 3}, kPythiaVocab - 1}};
}

/// A finished request is its prompt, unchanged, then max_new_tokens tokens, or fewer ending in its eos.
void check_prompt_and_length(const Request& r, const Generation& g) {
  REQUIRE(g.tokens.size() >= r.prompt.size());
  CHECK(std::equal(r.prompt.begin(), r.prompt.end(), g.tokens.begin()));
  const std::size_t full = r.prompt.size() + std::size_t(r.max_new_tokens);
  if (g.stop == Generation::Stop::kEos) {
    REQUIRE(r.eos.has_value());
    CHECK(g.tokens.size() <= full);
    CHECK(g.tokens.back() == *r.eos);
  } else {
    CHECK(g.stop == Generation::Stop::kLength);
    CHECK(g.tokens.size() == full);
  }
}

template <class Model>
void check_gap_ids(const Model& model) {
  const auto requests = gap_requests();
  const auto out = model.generate(requests);
  REQUIRE(out.size() == requests.size());
  for (std::size_t s = 0; s < requests.size(); ++s) {
    CAPTURE(s);
    check_prompt_and_length(requests[s], out[s]);
    CHECK(model.generate(std::span(&requests[s], 1))[0].tokens == out[s].tokens);
  }
  CHECK(out[0].stop == Generation::Stop::kLength);  // no eos: exactly prompt + 6
  // Each gap id has its own embedding row: a loader or embedder that clamped or wrapped ids at the
  // tokenizer size would give these two sequences the same likelihood.
  const std::vector<std::vector<Token>> sequences{{kPythiaVocab - 1, 5, 6, 7}, {kTokenizerSize, 5, 6, 7}, requests[1].prompt};
  const auto scores = model.score(sequences);
  REQUIRE(scores.size() == sequences.size());
  for (const auto& score : scores) CHECK(std::isfinite(score.nll));
  CHECK(scores[0].nll != scores[1].nll);
  // One past the embedding is still out of range, named with the model's vocab.
  std::vector<Request> bad = requests;
  bad[0].prompt[1] = kPythiaVocab;
  CHECK(fixtures::error_of([&] { model.generate(bad); }).find("prompt[0][1]: token id 50304 out of range [0, 50304)") != std::string::npos);
}

/// An eos id is honoured: the result is the same request without eos, cut after its first generated eos.
template <class Model>
void check_eos_cut(const Model& model, const Request& r) {
  Request without = r;
  without.eos.reset();
  const auto full = model.generate(std::span(&without, 1))[0].tokens;
  REQUIRE(full.size() == r.prompt.size() + std::size_t(r.max_new_tokens));
  const auto eos_at = std::find(full.begin() + std::ptrdiff_t(r.prompt.size()), full.end(), *r.eos);
  const auto got = model.generate(std::span(&r, 1))[0];
  CHECK(got.tokens == std::vector<Token>(full.begin(), eos_at == full.end() ? full.end() : eos_at + 1));
  CHECK(got.stop == (eos_at == full.end() ? Generation::Stop::kLength : Generation::Stop::kEos));
}

template <class Model>
void check_throwing_callback(const Model& model) {
  std::vector<Request> requests{{{1, 2, 3, 4, 5}, 10}, {{7, 8}, 12, {.temperature = 0.9f, .top_k = 30, .seed = 4}}, {{9}, 8}};
  auto session = model.make_session(3, 32);
  const auto expected = model.generate(session, requests);
  for (std::size_t s = 0; s < requests.size(); ++s) check_prompt_and_length(requests[s], expected[s]);
  struct Boom : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  int calls = 0;
  GenerateOptions options;
  options.on_token = [&](int sequence, Token) {
    if (++calls == 7) throw Boom("callback failed on sequence " + std::to_string(sequence));
    return true;
  };
  CHECK_THROWS_WITH_AS(model.generate(session, requests, options), doctest::Contains("callback failed"), Boom);
  CHECK(calls == 7);
  // The same session, reused: identical results, with or without a (non-throwing) callback.
  const auto after = model.generate(session, requests);
  GenerateOptions counting;
  int streamed = 0;
  counting.on_token = [&](int, Token) { return ++streamed > 0; };
  const auto streamed_out = model.generate(session, requests, counting);
  for (std::size_t s = 0; s < requests.size(); ++s) {
    CAPTURE(s);
    CHECK(after[s].tokens == expected[s].tokens);
    CHECK(streamed_out[s].tokens == expected[s].tokens);
  }
  CHECK(streamed == 10 + 12 + 8);
  // A callback that throws on the very first token, then a smaller batch on the same session.
  options.on_token = [](int, Token) -> bool { throw Boom("first token"); };
  CHECK_THROWS_AS(model.generate(session, requests, options), Boom);
  const auto one = model.generate(session, std::span(requests).subspan(1, 1));
  CHECK(one[0].tokens == expected[1].tokens);
}

}  // namespace

TEST_CASE("hardening: G2 ids in the tokenizer gap are valid tokens for a 50304-row model") {
  check_gap_ids(BlockTransformer<kGapBlock, EigenBackend>::random(11));
  check_gap_ids(GptNeoxLM<kGapVanilla, EigenBackend>::random(12));
}

TEST_CASE("hardening: G9 an exception from the callback propagates and the session stays usable") {
  check_throwing_callback(fixtures::block_tiny());
  check_throwing_callback(fixtures::vanilla_tiny());
}

TEST_CASE("hardening: C6 special token ids at or beyond the vocab are named") {
  const auto& block = fixtures::block_tiny();
  const auto& vanilla = fixtures::vanilla_tiny();
  std::vector<Request> requests{{{1, 2, 3}, 4, {}, Token(512)}};
  CHECK(fixtures::error_of([&] { block.generate(requests); }).find("request 0 eos: token id 512 out of range [0, 512)") != std::string::npos);
  CHECK(fixtures::error_of([&] { vanilla.generate(requests); }).find("request 0 eos: token id 512 out of range [0, 512)") != std::string::npos);
  requests[0].eos = Token(-1);
  CHECK(fixtures::error_of([&] { vanilla.generate(requests); }).find("request 0 eos: token id -1 out of range") != std::string::npos);
  requests[0].eos = Token(511);  // the last row is a valid eos
  check_eos_cut(block, requests[0]);
  check_eos_cut(vanilla, requests[0]);
  // Nothing was computed for a rejected batch: the error comes before any sequence, even a valid one first.
  std::vector<Request> mixed{{{1, 2}, 3}, {{4}, 3, {}, Token(600)}};
  int calls = 0;
  GenerateOptions options;
  options.on_token = [&](int, Token) { return ++calls > 0; };
  CHECK(fixtures::error_of([&] { block.generate(mixed, options); }).find("request 1 eos: token id 600") != std::string::npos);
  CHECK(calls == 0);
}

TEST_CASE("hardening: sampling with a temperature so small that logits / temperature overflow") {
  // 3 / 1e-40 is beyond float range: scaled logits must not turn into inf - inf = NaN probabilities.
  const std::vector<float> logits{1.0f, 3.0f, 2.0f, -1.0f, 0.0f, 3.0f - 1e-6f};
  for (float temperature : {1e-40f, std::numeric_limits<float>::denorm_min(), 1e-30f}) {
    CAPTURE(temperature);
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      Sampler sampler({.temperature = temperature, .seed = seed}, int(logits.size()));
      CHECK(sampler.sample(logits) == 1);
      Sampler top_p({.temperature = temperature, .top_p = 0.5f, .seed = seed}, int(logits.size()));
      CHECK(top_p.sample(logits) == 1);
      Sampler top_k({.temperature = temperature, .top_k = 3, .min_p = 0.5f, .seed = seed}, int(logits.size()));
      CHECK(top_k.sample(logits) == 1);
    }
  }
  // Very large logits at temperature 1 (finite, but their differences overflow float).
  const std::vector<float> wide{-3e38f, 3e38f, 0.0f};
  Sampler sampler({.temperature = 1.0f, .seed = 5}, 3);
  CHECK(sampler.sample(wide) == 1);
}

TEST_CASE("hardening: a tensor reference's source name survives moving and destroying the checkpoint it came from") {
  // Found while reviewing the loader: TensorRef::source pointed into the view's name string, whose
  // characters move with it when the name is short (small-string storage).
  const std::string image = blockformer::test::make_safetensors({{"x", "U8", {2}, "hi"}});
  std::optional<io::Checkpoint> original = io::Checkpoint::from_memory(blockformer::test::as_bytes(image), "mem");
  const io::TensorRef ref = original->at("x");
  const io::Checkpoint moved = std::move(*original);
  original.reset();
  CHECK(std::string(ref.source) == "mem");
  CHECK(std::string(moved.at("x").source) == "mem");
  CHECK(moved.source() == "mem");
  const io::SafetensorsView view = io::SafetensorsView::parse(blockformer::test::as_bytes(image), "v");
  const io::SafetensorsView copy = view;
  CHECK(copy.source() == "v");
  CHECK(copy.bytes(*copy.find("x")).size() == 2);
}

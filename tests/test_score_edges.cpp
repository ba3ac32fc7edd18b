// SPDX-License-Identifier: Apache-2.0
// score() and generate() edges: braced lists, a bad id named at the caller's index, sequences too
// short to score.
#include "fixtures.hpp"

using namespace blockformer;

TEST_CASE("scoring: braced lists, bad ids at the caller's index, sequences too short to score") {
  const auto& block = fixtures::block_tiny();
  const auto& vanilla = fixtures::vanilla_tiny();
  const std::vector<std::vector<Token>> sequences{{1, 2, 3, 4, 5}, {9, 8, 7}};
  CHECK(vanilla.score({{1, 2, 3, 4, 5}, {9, 8, 7}})[1].nll == vanilla.score(sequences)[1].nll);
  const auto braced = block.score({{1, 2, 3, 4, 5}});
  CHECK(braced[0].tokens == 4);  // pads to 8: the second block is scored
  CHECK(braced[0].nll == block.score(std::span(sequences).first(1))[0].nll);
  CHECK(block.generate({{.prompt = {1, 2, 3}, .max_new_tokens = 5}})[0].tokens.size() == 8);
  auto session = vanilla.make_session(1, 16);
  CHECK(vanilla.generate(session, {{.prompt = {1, 2, 3}, .max_new_tokens = 5}})[0].tokens.size() == 8);

  // The id is named where the caller put it (index 5), not in the left-padded copy (index 7).
  const std::string bad = "sequence[1][5]: token id 600 out of range [0, 512)";
  CHECK(fixtures::error_of([&] { block.score({{1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 600}}); }).find(bad) != std::string::npos);
  CHECK(fixtures::error_of([&] { vanilla.score({{1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 600}}); }).find(bad) != std::string::npos);

  // Nothing to score is an error, not perplexity 1.
  CHECK(fixtures::error_of([&] { block.score({{1, 2, 3, 4, 5}, {1, 2, 3, 4}}); })
            .find("score: sequence 1 has 4 tokens; at least 5 are needed, as the first block (4 tokens, "
                  "left-padded) is context only and nothing would be scored") != std::string::npos);
  CHECK(fixtures::error_of([&] { vanilla.score({{1, 2}, {7}}); })
            .find("score: sequence 1 has 1 token; at least 2 are needed, as the first token is context only") != std::string::npos);
  CHECK(vanilla.score({{1, 2}})[0].tokens == 1);
  CHECK(fixtures::error_of([&] { vanilla.score({{1, 2}, {}}); }).find("sequence 1 is empty") != std::string::npos);
}

TEST_CASE("scoring: both padding policies score what the authors' two wrappers score") {
  const auto& block = fixtures::block_tiny();
  constexpr int L = presets::block_tiny.block_length, V = presets::block_tiny.vocab;
  const std::vector<Token> sequence{11, 12, 13, 14, 15, 16, 17, 18, 19, 20};  // not whole blocks
  // The reference layouts, through forward(): nll of each target from its row of logits.
  const auto reference = [&](const std::vector<Token>& laid_out, std::size_t first_scored, std::size_t end) {
    const std::vector<float> logits = block.forward(laid_out, 1);
    double nll = 0.0;
    for (std::size_t t = first_scored; t < end; ++t)
      nll += detail::token_nll(std::span(logits).subspan((t - L) * V, V), laid_out[t]);
    return nll;
  };
  // block_transformer: left-pad with 0 to a block boundary; every token past the first block scored.
  std::vector<Token> left(std::size_t(L - sequence.size() % L) % L, Token{0});
  left.insert(left.end(), sequence.begin(), sequence.end());
  const SequenceScore by_left = block.score({sequence}, BlockPadding::kLeft)[0];
  CHECK(by_left.tokens == int(left.size()) - L);
  CHECK(by_left.nll == reference(left, L, left.size()));
  // block_transformer_nopad: the sequence from a block boundary, the last block right-padded with
  // id 1 and those targets not scored.
  std::vector<Token> right = sequence;
  right.resize((sequence.size() + L - 1) / L * L, Token{1});
  const SequenceScore by_right = block.score({sequence}, BlockPadding::kRight)[0];
  CHECK(by_right.tokens == int(sequence.size()) - L);
  CHECK(by_right.nll == reference(right, L, sequence.size()));
  CHECK(by_right.nll != by_left.nll);  // other blocks, other context
  // The preset says which one a model was trained for; score() follows it.
  static_assert(presets::block_main_b4_85.score_padding == BlockPadding::kLeft);
  static_assert(presets::block_main_b4_300.score_padding == BlockPadding::kRight &&
                presets::block_main_b4_1_2b.score_padding == BlockPadding::kRight);
  CHECK(block.score({sequence})[0].nll == by_left.nll);
}

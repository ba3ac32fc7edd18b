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

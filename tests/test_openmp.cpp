// SPDX-License-Identifier: Apache-2.0
// Results do not depend on the OpenMP thread count (tests otherwise run with OMP_NUM_THREADS=1).
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fixtures.hpp"

using namespace blockformer;

namespace {
// Wide enough that linear, attention and layer norm all take their threaded paths.
constexpr BlockConfig kThreaded{
    .vocab = 2048, .max_positions = 512, .block_length = 4, .embedder_width = 64, .prefix_length = 2,
    .block_decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16},
    .token_decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16}};

struct Outputs {
  std::vector<float> logits;
  std::vector<Generation> generations;
};

Outputs run(const BlockTransformer<kThreaded, EigenBackend>& model) {
  std::vector<Token> ids(2 * 64);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = Token((i * 7919) % 2048);
  std::vector<Request> requests(6);
  for (int s = 0; s < 6; ++s) requests[s] = Request{std::vector<Token>(ids.begin(), ids.begin() + 5 + 9 * s), 24};
  return {model.forward(ids, 2), model.generate(requests)};
}
}  // namespace

#ifdef _OPENMP
TEST_CASE("openmp: one and two threads give the same logits and tokens") {
  const auto model = BlockTransformer<kThreaded, EigenBackend>::random(5);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Outputs one = run(model);
  omp_set_num_threads(2);
  const Outputs two = run(model);
  omp_set_num_threads(saved);
  CHECK(fixtures::max_abs_diff(one.logits, two.logits) <= 1e-5);
  for (std::size_t s = 0; s < one.generations.size(); ++s) CHECK(one.generations[s].tokens == two.generations[s].tokens);
}
#else
TEST_CASE("openmp: one and two threads give the same logits and tokens" * doctest::skip()) {}
#endif

// SPDX-License-Identifier: Apache-2.0
// Declaring a brand-new Block Transformer in user code: block length 8, prefix 4, a narrow token
// decoder with sequential residuals. Nothing in the library is edited; invalid choices fail to
// compile with a static_assert that names the field to change.
#include <blockformer/eigen.hpp>

#include <iostream>

using namespace blockformer;

constexpr BlockConfig kMyModel{
    .vocab = 1000,
    .max_positions = 512,
    .block_length = 8,
    .embedder_width = 24,  // block embedding: 8 x 24 = 192 = block_decoder.width
    .prefix_length = 4,
    .block_decoder = {.layers = 3, .width = 192, .heads = 4, .ffn = 768, .rotary_dims = 12},
    .token_decoder = {.layers = 2, .width = 96, .heads = 2, .ffn = 384, .rotary_dims = 48,
                      .rotary_base = 500.0f, .parallel_residual = false},
};

int main() {
  const auto model = BlockTransformer<kMyModel, EigenBackend>::random(/*seed=*/1);
  std::cout << kMyModel << "\n" << kMyModel.parameters() << " parameters\n";
  const std::vector<Request> batch{{{1, 2, 3}, 20}, {{4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, 12}};
  for (const auto& g : model.generate(batch)) {
    for (Token t : g.tokens) std::cout << t << ' ';
    std::cout << "\n";
  }
}

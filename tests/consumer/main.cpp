// SPDX-License-Identifier: Apache-2.0
// Loads the shipped block_tiny fixture through the installed headers and checks one greedy token.
#include <blockformer/eigen.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  using Model = blockformer::BlockTransformer<blockformer::presets::block_tiny, blockformer::EigenBackend>;
  const auto model = Model::load(std::string(argv[1]) + "/block_tiny/model.safetensors");
  const std::vector<blockformer::Request> r{{{17, 42, 311}, 4}};
  const auto out = model.generate(r);
  for (auto t : out[0].tokens) std::cout << t << ' ';
  std::cout << '\n';
  return out[0].tokens.size() == 7 ? 0 : 1;
}

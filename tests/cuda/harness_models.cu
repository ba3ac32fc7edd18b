// SPDX-License-Identifier: Apache-2.0
// The fixture models on the CUDA backend: the only named configurations this test binary
// instantiates (block_tiny and vanilla_tiny), to keep nvcc time small.
#include <blockformer/cuda.hpp>

#include "harness.hpp"

namespace cuda_harness {
namespace {
using BlockTiny = blockformer::BlockTransformer<blockformer::presets::block_tiny, blockformer::CudaBackend>;
using VanillaTiny = blockformer::GptNeoxLM<blockformer::presets::vanilla_tiny, blockformer::CudaBackend>;
}  // namespace

std::vector<float> block_tiny_forward(const std::string& checkpoint, std::span<const Token> ids, int batch,
                                      blockformer::BlockForwardTrace* trace) {
  return BlockTiny::load(checkpoint).forward(ids, batch, trace);
}
std::vector<blockformer::Generation> block_tiny_generate(const std::string& checkpoint,
                                                         std::span<const blockformer::Request> requests,
                                                         const blockformer::GenerateOptions& options) {
  return BlockTiny::load(checkpoint).generate(requests, options);
}
std::vector<float> vanilla_tiny_forward(const std::string& checkpoint, std::span<const Token> ids, int batch) {
  return VanillaTiny::load(checkpoint).forward(ids, batch);
}
std::vector<blockformer::Generation> vanilla_tiny_generate(const std::string& checkpoint,
                                                           std::span<const blockformer::Request> requests) {
  return VanillaTiny::load(checkpoint).generate(requests);
}
std::vector<float> vanilla_tiny_random_forward(std::uint64_t seed, std::span<const Token> ids, int batch) {
  return VanillaTiny::random(seed).forward(ids, batch);
}
std::vector<float> block_tiny_random_forward(std::uint64_t seed, std::span<const Token> ids, int batch) {
  return BlockTiny::random(seed).forward(ids, batch);
}

}  // namespace cuda_harness

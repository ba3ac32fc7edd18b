// SPDX-License-Identifier: Apache-2.0
#pragma once
// The tiny architectures the checkpoint fuzzer loads, and a weight source that records which tensors
// (name, shape) a model asks for, so seeds are valid checkpoints for exactly these configs.
#include <blockformer/eigen.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace blockformer::fuzz {

/// Small enough that a whole checkpoint is ~10 KB (fast executions), large enough to exercise every
/// tensor kind: two heads, partial rotary, a prefix of 2, blocks of 2 tokens.
inline constexpr BlockConfig kBlock{
    .vocab = 16,
    .max_positions = 32,
    .block_length = 2,
    .embedder_width = 4,
    .prefix_length = 2,
    .block_decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2},
    .token_decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2,
                      .parallel_residual = false}};

inline constexpr VanillaConfig kVanilla{
    .vocab = 16, .max_positions = 32, .decoder = {.layers = 1, .width = 8, .heads = 2, .ffn = 16, .rotary_dims = 2}};

using BlockModel = BlockTransformer<kBlock, EigenBackend>;
using VanillaModel = GptNeoxLM<kVanilla, EigenBackend>;

/// A weight source that hands out zero weights and remembers every request in order.
class RecordingWeights {
 public:
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> requests;

  template <Backend B>
  typename B::Linear linear(const std::string& prefix, int out, int in, bool bias) {
    record(prefix + ".weight", {std::uint64_t(out), std::uint64_t(in)});
    if (bias) record(prefix + ".bias", {std::uint64_t(out)});
    return B::make_linear(std::vector<float>(std::size_t(out) * in), bias ? std::vector<float>(out) : std::vector<float>{},
                          out, in);
  }
  template <Backend B>
  typename B::Linear conv1x1(const std::string& prefix, int out, int in) {
    record(prefix + ".weight", {std::uint64_t(out), std::uint64_t(in), 1});
    record(prefix + ".bias", {std::uint64_t(out)});
    return B::make_linear(std::vector<float>(std::size_t(out) * in), std::vector<float>(out), out, in);
  }
  template <Backend B>
  typename B::Norm norm(const std::string& prefix, int width) {
    record(prefix + ".weight", {std::uint64_t(width)});
    record(prefix + ".bias", {std::uint64_t(width)});
    return B::make_norm(std::vector<float>(width, 1.0f), std::vector<float>(width));
  }
  template <Backend B>
  typename B::Embedding embedding(const std::string& name, int rows, int width) {
    record(name, {std::uint64_t(rows), std::uint64_t(width)});
    return B::make_embedding(std::vector<float>(std::size_t(rows) * width), rows, width);
  }
  template <class Ignorable, class Summarize>
  void finish(Ignorable, Summarize) {}

 private:
  void record(std::string name, std::vector<std::uint64_t> shape) { requests.emplace_back(std::move(name), std::move(shape)); }
};

/// The (name, shape) list a model's from_weights asks for.
template <class Model>
std::vector<std::pair<std::string, std::vector<std::uint64_t>>> expected_tensors() {
  RecordingWeights recorder;
  (void)Model::from_weights(recorder);
  return recorder.requests;
}

}  // namespace blockformer::fuzz

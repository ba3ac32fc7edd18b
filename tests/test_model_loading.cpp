// SPDX-License-Identifier: Apache-2.0
// The same weights through every checkpoint form give the same model.
#include <nlohmann/json.hpp>

#include "fixtures.hpp"

using namespace blockformer;
using blockformer::test::BuilderTensor;

namespace {
std::vector<float> block_logits(const fixtures::BlockTiny& model) {
  return model.forward(fixtures::tokens("block_tiny", "input_ids"), fixtures::batch("block_tiny"));
}
}  // namespace

TEST_CASE("loading: a sharded index gives the single-file model") {
  const auto tensors = fixtures::checkpoint_tensors("block_tiny/model.safetensors");
  blockformer::test::TempDir dir;
  std::vector<BuilderTensor> shards[2];
  nlohmann::json weight_map;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const int shard = tensors[i].name.rfind("token_decoder", 0) == 0 ? 1 : 0;
    shards[shard].push_back(tensors[i]);
    weight_map[tensors[i].name] = "model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors";
  }
  for (int s = 0; s < 2; ++s)
    blockformer::test::write_file(dir.path() / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"),
                                  blockformer::test::make_safetensors(shards[s]));
  blockformer::test::write_file(dir.path() / "model.safetensors.index.json",
                                nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
  const auto sharded = fixtures::BlockTiny::load(dir.path());
  CHECK(block_logits(sharded) == block_logits(fixtures::block_tiny()));
}

TEST_CASE("loading: read mode equals mmap mode") {
  LoadOptions read;
  read.mode = io::LoadMode::Read;
  const auto model = fixtures::BlockTiny::load(fixtures::path("block_tiny/model.safetensors"), read);
  CHECK(block_logits(model) == block_logits(fixtures::block_tiny()));
}

TEST_CASE("loading: F16 weights are decoded exactly") {
  // The F16 checkpoint must load to exactly the fp32 model of the same f16-rounded values.
  auto tensors = fixtures::checkpoint_tensors("block_tiny/model.safetensors");
  auto rounded = tensors;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    std::vector<float> values(tensors[t].data.size() / 4);
    std::memcpy(values.data(), tensors[t].data.data(), tensors[t].data.size());
    std::vector<std::uint16_t> half(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      half[i] = io::float_to_f16(values[i]);
      values[i] = io::f16_to_float(half[i]);
    }
    tensors[t] = {tensors[t].name, "F16", tensors[t].shape, blockformer::test::raw_bytes(half)};
    rounded[t].data = blockformer::test::raw_bytes(values);
  }
  blockformer::test::TempDir dir;
  blockformer::test::write_file(dir.path() / "f16.safetensors", blockformer::test::make_safetensors(tensors));
  blockformer::test::write_file(dir.path() / "rounded.safetensors", blockformer::test::make_safetensors(rounded));
  const auto f16 = fixtures::BlockTiny::load(dir.path() / "f16.safetensors");
  const auto f32 = fixtures::BlockTiny::load(dir.path() / "rounded.safetensors");
  CHECK(block_logits(f16) == block_logits(f32));
  CHECK(fixtures::max_abs_diff(block_logits(f16), fixtures::floats("block_tiny", "logits")) < 0.05);
}

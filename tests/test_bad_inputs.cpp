// SPDX-License-Identifier: Apache-2.0
// Every rejected request and every checkpoint that disagrees with the compiled config fails with
// an Error naming the culprit (docs/bad_inputs.md, "Checkpoint vs config" and "Generation requests").
#include <cstring>
#include <limits>

#include "fixtures.hpp"

using namespace blockformer;
using blockformer::test::BuilderTensor;

namespace {

template <class Model>
Model load_edited(const std::vector<BuilderTensor>& tensors, LoadOptions options = {}) {
  const std::string image = blockformer::test::make_safetensors(tensors);
  const auto checkpoint = io::Checkpoint::from_memory(blockformer::test::as_bytes(image), "edited.safetensors");
  CheckpointWeights weights(checkpoint, options);
  return Model::from_weights(weights);
}

void erase_tensor(std::vector<BuilderTensor>& tensors, const std::string& name) {
  const auto it = std::find_if(tensors.begin(), tensors.end(), [&](auto& t) { return t.name == name; });
  REQUIRE(it != tensors.end());
  tensors.erase(it);
}


constexpr BlockConfig kBlockLength2 = [] {
  BlockConfig c = presets::block_tiny;
  c.block_length = 2;
  c.embedder_width = 64;
  return c;
}();
// vanilla_tiny with 8 heads of 16 instead of 4 of 32: every tensor has the same shape.
constexpr VanillaConfig kEightHeads{.vocab = presets::vanilla_tiny.vocab,
                                    .max_positions = presets::vanilla_tiny.max_positions,
                                    .decoder = {.layers = 2, .width = 128, .heads = 8, .ffn = 512, .rotary_dims = 4}};

constexpr VanillaConfig kNarrowFfn = [] {
  VanillaConfig c = presets::vanilla_tiny;
  c.decoder.ffn = 256;
  return c;
}();

}  // namespace

TEST_CASE("checkpoint vs config: every missing tensor is listed (C1)") {
  auto tensors = fixtures::checkpoint_tensors("block_tiny/model.safetensors");
  erase_tensor(tensors, "token_decoder.gpt_neox.layers.1.attention.query_key_value.weight");
  erase_tensor(tensors, "embedder.embeddings.weight");
  const std::string message = fixtures::error_of([&] { load_edited<fixtures::BlockTiny>(tensors); });
  CHECK(message.find("missing tensor 'token_decoder.gpt_neox.layers.1.attention.query_key_value.weight'") != std::string::npos);
  CHECK(message.find("missing tensor 'embedder.embeddings.weight'") != std::string::npos);
  CHECK(message.find("2 problems") != std::string::npos);
}

TEST_CASE("checkpoint vs config: unexpected tensors are errors unless allowed (C2)") {
  auto tensors = fixtures::checkpoint_tensors("vanilla_tiny/model.safetensors");
  tensors.push_back({"gpt_neox.layers.0.attention.lora_a", "F32", {2}, std::string(8, '\0')});
  CHECK(fixtures::error_of([&] { load_edited<fixtures::VanillaTiny>(tensors); }).find("unexpected tensor 'gpt_neox.layers.0.attention.lora_a'") != std::string::npos);
  LoadOptions allow;
  allow.allow_unused = true;
  CHECK_NOTHROW(load_edited<fixtures::VanillaTiny>(tensors, allow));
}

TEST_CASE("checkpoint vs config: old Pythia buffers and the block decoder's embed_in are ignored") {
  auto tensors = fixtures::checkpoint_tensors("vanilla_tiny/model.safetensors");
  for (const char* buffer : {"attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq"})
    tensors.push_back({"gpt_neox.layers.1." + std::string(buffer), "F32", {1}, std::string(4, '\0')});
  const auto model = load_edited<fixtures::VanillaTiny>(tensors);
  const auto ids = fixtures::tokens("vanilla_tiny", "input_ids");
  CHECK(fixtures::max_abs_diff(model.forward(ids, fixtures::batch("vanilla_tiny")), fixtures::floats("vanilla_tiny", "logits")) <= 1e-4);
  // block_tiny's checkpoint carries block_decoder.gpt_neox.embed_in.weight and loads.
  CHECK_NOTHROW(fixtures::block_tiny());
}

TEST_CASE("checkpoint vs config: shape mismatches name expected and found shapes (C3)") {
  // Past the config.json check (tested below), the tensors are checked on their own.
  const LoadOptions tensors_only{.check_config_json = false};
  const std::string ffn = fixtures::error_of([&] {
    GptNeoxLM<kNarrowFfn, EigenBackend>::load(fixtures::path("vanilla_tiny/model.safetensors"), tensors_only);
  });
  // One line leads with the shape that disagrees, before the tensor-by-tensor list.
  CHECK(ffn.find("problems):\n  model: the checkpoint has 2 layers of width 128, ffn 512; the compiled config has 2 "
                 "layers of width 128, ffn 256\n") != std::string::npos);
  CHECK(ffn.find("tensor 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight': expected [256, 128], found [512, 128]") != std::string::npos);
  CHECK(ffn.find("tensor 'gpt_neox.layers.1.mlp.dense_4h_to_h.weight': expected [128, 256], found [128, 512]") != std::string::npos);
  const std::string block = fixtures::error_of([&] {
    BlockTransformer<kBlockLength2, EigenBackend>::load(fixtures::path("block_tiny/model.safetensors"), tensors_only);
  });
  CHECK(block.find("tensor 'embedder.embeddings.weight': expected [512, 64], found [512, 32]") != std::string::npos);
  const std::string cross = fixtures::error_of([&] {
    fixtures::VanillaTiny::load(fixtures::path("block_tiny/model.safetensors"), tensors_only);
  });
  CHECK(cross.find("missing tensor 'gpt_neox.embed_in.weight'") != std::string::npos);
  // 28 missing and 58 unexpected tensors: the first 32 problems are listed, then a count.
  CHECK(cross.find("unexpected tensor 'block_decoder.gpt_neox.embed_in.weight'") != std::string::npos);
  CHECK(cross.find("... and ") != std::string::npos);
}

TEST_CASE("checkpoint vs config: config.json fields the tensors cannot show are checked") {
  const std::string heads = fixtures::error_of([] {
    GptNeoxLM<kEightHeads, EigenBackend>::load(fixtures::path("vanilla_tiny/model.safetensors"));
  });
  CHECK(heads.find("disagrees with the compiled config in 1 field:") != std::string::npos);
  CHECK(heads.find("num_attention_heads: config.json has 4, the compiled config 8") != std::string::npos);
  // The whole shape story leads, before any tensor is read.
  const std::string ffn = fixtures::error_of([] {
    GptNeoxLM<kNarrowFfn, EigenBackend>::load(fixtures::path("vanilla_tiny"));
  });
  CHECK(ffn.find("intermediate_size: config.json has 512, the compiled config 256") != std::string::npos);
  CHECK(ffn.find("tensor '") == std::string::npos);
  const std::string block = fixtures::error_of([] {
    BlockTransformer<kBlockLength2, EigenBackend>::load(fixtures::path("block_tiny/model.safetensors"));
  });
  CHECK(block.find("block_length: config.json has 4, the compiled config 2") != std::string::npos);
  const std::string cross = fixtures::error_of([] { fixtures::VanillaTiny::load(fixtures::path("block_tiny")); });
  CHECK(cross.find("describes a block_transformer model; the compiled model is gpt_neox") != std::string::npos);
  CHECK_NOTHROW(GptNeoxLM<kEightHeads, EigenBackend>::load(fixtures::path("vanilla_tiny"),
                                                           LoadOptions{.check_config_json = false}));
}

TEST_CASE("checkpoint vs config: integer weights are rejected by dtype") {
  auto tensors = fixtures::checkpoint_tensors("vanilla_tiny/model.safetensors");
  for (auto& t : tensors)
    if (t.name == "gpt_neox.final_layer_norm.bias") {
      t.dtype = "I32";
    }
  CHECK(fixtures::error_of([&] { load_edited<fixtures::VanillaTiny>(tensors); }).find("tensor 'gpt_neox.final_layer_norm.bias': dtype I32 not supported (supported: F32, F16, BF16)") != std::string::npos);
}

TEST_CASE("checkpoint vs config: non-finite weights (C5)") {
  auto tensors = fixtures::checkpoint_tensors("vanilla_tiny/model.safetensors");
  for (auto& t : tensors)
    if (t.name == "gpt_neox.layers.1.mlp.dense_4h_to_h.bias") {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(t.data.data() + 4 * 7, &nan, 4);
    }
  LoadOptions scan;
  scan.check_weights = true;
  CHECK(fixtures::error_of([&] { load_edited<fixtures::VanillaTiny>(tensors, scan); }).find("tensor 'gpt_neox.layers.1.mlp.dense_4h_to_h.bias': non-finite value nan at flat index 7") != std::string::npos);
  // Without the scan the model loads, and the first non-finite logits stop generation by name.
  const auto model = load_edited<fixtures::VanillaTiny>(tensors);
  const Request r{{5, 6, 7}, 4};
  CHECK(fixtures::error_of([&] { model.generate(std::span(&r, 1)); }).find("non-finite logit nan at vocab index 0 for sequence 0 at generation step 0") != std::string::npos);
  // score and forward report it the same way, never as a NaN perplexity (issue 13).
  CHECK(fixtures::error_of([&] { model.score({{5, 6, 7}}); })
            .find("score: the logits predicting sequence[0][1]: non-finite logit nan at vocab index 0") != std::string::npos);
  const std::vector<Token> ids{5, 6, 7};
  CHECK(fixtures::error_of([&] { model.forward(ids, 1); })
            .find("forward: the logits after ids[0][0]: non-finite logit nan at vocab index 0") != std::string::npos);

  auto block_tensors = fixtures::checkpoint_tensors("block_tiny/model.safetensors");
  for (auto& t : block_tensors)
    if (t.name == "token_decoder.gpt_neox.final_layer_norm.bias") {
      const float inf = std::numeric_limits<float>::infinity();
      std::memcpy(t.data.data(), &inf, 4);
    }
  const auto block = load_edited<fixtures::BlockTiny>(block_tensors);
  const std::string block_score = fixtures::error_of([&] { block.score({{5, 6, 7, 8, 9, 10}}); });
  CHECK(block_score.find("score: the logits predicting sequence[0][2]: non-finite logit") != std::string::npos);
  const std::vector<Token> blocks{5, 6, 7, 8, 9, 10, 11, 12};
  CHECK(fixtures::error_of([&] { block.forward(blocks, 1); }).find("forward: the logits predicting ids[0][4]: non-finite logit") !=
        std::string::npos);
}

TEST_CASE("requests: score of no sequences is empty for both models") {
  CHECK(fixtures::block_tiny().score(std::span<const std::vector<Token>>()).empty());
  CHECK(fixtures::vanilla_tiny().score(std::span<const std::vector<Token>>()).empty());
}

TEST_CASE("requests: token ids outside the vocab (G1, G8)") {
  const auto& model = fixtures::block_tiny();
  std::vector<Request> requests{{{1, 2, 3}, 4}, {{4, 5, 512}, 4}};
  CHECK(fixtures::error_of([&] { model.generate(requests); }).find("prompt[1][2]: token id 512 out of range [0, 512)") != std::string::npos);
  requests[1].prompt[2] = -1;
  CHECK(fixtures::error_of([&] { model.generate(requests); }).find("prompt[1][2]: token id -1 out of range [0, 512)") != std::string::npos);
  requests[1].prompt[2] = 3;
  requests[0].eos = 600;
  CHECK(fixtures::error_of([&] { model.generate(requests); }).find("request 0 eos: token id 600 out of range [0, 512)") != std::string::npos);
  const std::vector<Token> ids(8, 512);
  CHECK(fixtures::error_of([&] { model.forward(ids, 1); }).find("ids[0][0]: token id 512 out of range") != std::string::npos);
}

TEST_CASE("requests: empty prompts and empty batches (G3, G6)") {
  const auto& model = fixtures::vanilla_tiny();
  const std::vector<Request> requests{{{1, 2}, 2}, {{}, 2}};
  CHECK(fixtures::error_of([&] { model.generate(requests); }).find("prompt 1 is empty") != std::string::npos);
  CHECK(fixtures::error_of([&] { model.generate(std::span<const Request>{}); }).find("no sequences in the batch") != std::string::npos);
  auto session = model.make_session(1, 32);
  const std::vector<Request> two{{{1}, 1}, {{2}, 1}};
  CHECK(fixtures::error_of([&] { model.generate(session, two); }).find("batch size 2 exceeds session capacity 1") != std::string::npos);
  CHECK(fixtures::error_of([&] { model.make_session(0, 32); }).find("session max_batch 0 not in [1,") != std::string::npos);
  CHECK(fixtures::error_of([&] { model.make_session(1, 4096); }).find("session max_tokens 4096 not in [1, 2048]") != std::string::npos);
}

TEST_CASE("requests: lengths beyond the session or the model (G4, G5)") {
  const auto& model = fixtures::block_tiny();
  auto session = model.make_session(2, 32);
  const std::vector<Request> too_long{{std::vector<Token>(10, 3), 23}};  // pads to 12, + 23 = 35
  CHECK(fixtures::error_of([&] { model.generate(session, too_long); }).find("prompt 0: 35 tokens (padded prompt + max_new_tokens) exceed session capacity 32") != std::string::npos);
  const std::vector<Request> beyond{{std::vector<Token>(10, 3), 2040}};
  CHECK(fixtures::error_of([&] { model.generate(beyond); }).find("prompt 0: 2052 tokens (padded prompt + max_new_tokens) exceed the model's max positions 2048") != std::string::npos);
  const std::vector<Request> negative{{{1, 2}, -1}};
  CHECK(fixtures::error_of([&] { model.generate(negative); }).find("request 0: max_new_tokens -1 is negative") != std::string::npos);
  const std::vector<Request> none{{{1, 2, 3}, 0}};  // refused, as HF does, rather than returning the prompt
  CHECK(fixtures::error_of([&] { model.generate(none); }).find("request 0: max_new_tokens 0 would generate nothing; it must be at least 1") != std::string::npos);
  const std::vector<Token> odd(10, 3);
  CHECK(fixtures::error_of([&] { model.forward(odd, 1); }).find("row length 10 must be a multiple of block_length 4") != std::string::npos);
  CHECK(fixtures::error_of([&] { model.forward(odd, 3); }).find("10 ids do not form 3 equal rows") != std::string::npos);
}

TEST_CASE("requests: invalid sampling parameters (G7)") {
  const auto& model = fixtures::vanilla_tiny();
  const auto message = [&](SamplingParams p) {
    const std::vector<Request> r{{{1, 2}, 2, p}};
    return fixtures::error_of([&] { model.generate(r); });
  };
  CHECK(message({.temperature = -1.0f}).find("request 0: temperature -1") != std::string::npos);
  CHECK(message({.temperature = std::numeric_limits<float>::quiet_NaN()}).find("temperature nan must be finite") != std::string::npos);
  CHECK(message({.top_k = 513}).find("top_k 513 not in [0, 512]") != std::string::npos);
  CHECK(message({.top_k = -2}).find("top_k -2 not in [0, 512]") != std::string::npos);
  CHECK(message({.top_p = 1.5f}).find("top_p 1.500000 not in (0, 1]") != std::string::npos);
  CHECK(message({.top_p = 0.0f}).find("top_p 0.000000 not in (0, 1]") != std::string::npos);
  CHECK(message({.min_p = 2.0f}).find("min_p 2.000000 not in [0, 1]") != std::string::npos);
}

// SPDX-License-Identifier: Apache-2.0
// The main job: the trained Shakespeare pair shipped in models/shakespeare (a Block Transformer and
// its vanilla GPT-NeoX twin, models/shakespeare/MODEL_CARD.md) continue one text prompt, streamed as
// text; then both decode a batch and the demo prints tokens/s for each and the block/vanilla ratio.
//   blockformer_demo [models_dir] [prompt]    (default: the repo's models/shakespeare, "Romeo.\n")
#include <blockformer/eigen.hpp>
#include <blockformer/text.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

using namespace blockformer;

namespace {

using BlockModel = BlockTransformer<presets::shakespeare_block, EigenBackend>;
using VanillaModel = GptNeoxLM<presets::shakespeare_vanilla, EigenBackend>;

// Enough sequences that the weight reads of a step are shared and the difference in work per token
// shows, few enough that the demo stays under a few seconds. Each continues the same 128-token
// prompt by 128 tokens: the 256-token windows both models were trained on.
constexpr int kBatch = 32;
constexpr int kPromptTokens = 128;
constexpr int kNewTokens = 128;

constexpr const char* kPrologue =
    "Two households, both alike in dignity,\n  In fair Verona, where we lay our scene,\n"
    "From ancient grudge break to new mutiny,\n  Where civil blood makes civil hands unclean.\n"
    "From forth the fatal loins of these two foes\n  A pair of star-cross'd lovers take their life;\n"
    "Whose misadventur'd piteous overthrows\n  Doth with their death bury their parents' strife.\n"
    "The fearful passage of their death-mark'd love,\n  And the continuance of their parents' rage,\n"
    "Which, but their children's end, naught could remove,\n  Is now the two hours' traffic of our stage;\n"
    "The which if you with patient ears attend,\n  What here shall miss, our toil shall strive to mend.\n";

template <class Model>
void continue_prompt(const std::string& name, const Model& model, const Tokenizer& tokenizer, const std::string& prompt) {
  std::cout << "--- " << name << " ---\n" << prompt << std::flush;
  const TextGenerateOptions options{.on_text = [](int, std::string_view piece) {
    std::cout << piece << std::flush;
    return true;
  }};
  generate_text(model, tokenizer,
                {TextRequest{.prompt = prompt,
                             .options = {.max_new_tokens = 96,
                                         .sampling = {.temperature = 0.7f, .top_k = 40, .seed = 7}}}},
                options);
  std::cout << "\n\n";
}

/// Tokens/s for kBatch sampled continuations of kNewTokens each (the prompt's prefill included).
template <class Model>
double tokens_per_second(const Model& model, const std::vector<Token>& prompt) {
  std::vector<Request> batch(kBatch, Request{.prompt = prompt, .max_new_tokens = kNewTokens});
  for (int s = 0; s < kBatch; ++s) batch[s].sampling = {.temperature = 0.8f, .top_k = 40, .seed = std::uint64_t(s)};
  auto session = model.make_session(kBatch, int(prompt.size()) + kNewTokens);
  model.generate(session, std::span<const Request>(batch.data(), 1));  // warm-up: pages, caches, threads
  const auto start = std::chrono::steady_clock::now();
  const auto out = model.generate(session, batch);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t generated = 0;
  for (const Generation& g : out) generated += g.tokens.size() - std::size_t(g.prompt_length);
  return double(generated) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : BLOCKFORMER_DEMO_MODELS;
  const std::string prompt = argc > 2 ? argv[2] : "Romeo.\n";
  try {
    const Tokenizer tokenizer = Tokenizer::load(dir + "/tokenizer.json");
    const auto block = BlockModel::load(dir + "/block");
    const auto vanilla = VanillaModel::load(dir + "/vanilla");
    continue_prompt("block model (" + std::to_string(presets::shakespeare_block.parameters()) + " parameters)", block,
                    tokenizer, prompt);
    continue_prompt("vanilla model (" + std::to_string(presets::shakespeare_vanilla.parameters()) + " parameters)",
                    vanilla, tokenizer, prompt);

    std::vector<Token> ids = tokenizer.encode(std::string(kPrologue) + kPrologue);
    ids.resize(kPromptTokens);
    const double block_speed = tokens_per_second(block, ids);
    const double vanilla_speed = tokens_per_second(vanilla, ids);
    std::printf("decode, batch %d, %d-token prompt + %d new tokens: block %.0f tokens/s, vanilla %.0f tokens/s, "
                "block/vanilla %.2fx\n",
                kBatch, kPromptTokens, kNewTokens, block_speed, vanilla_speed, block_speed / vanilla_speed);
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

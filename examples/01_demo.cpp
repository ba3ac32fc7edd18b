// SPDX-License-Identifier: Apache-2.0
// The main job: load the small Block Transformer and GPT-NeoX models shipped with the project,
// generate from one prompt with each, print the tokens and the tokens/s.
//   blockformer_demo [data_dir]    (default: the repo's tests/data)
#include <blockformer/eigen.hpp>

#include <chrono>
#include <iostream>
#include <string>

using namespace blockformer;

namespace {

using BlockModel = BlockTransformer<presets::block_tiny, EigenBackend>;
using VanillaModel = GptNeoxLM<presets::vanilla_tiny, EigenBackend>;

template <class Model>
void run(const std::string& name, const Model& model, const std::vector<Token>& prompt) {
  std::vector<Request> batch(8, Request{prompt, 64});
  for (std::size_t s = 1; s < batch.size(); ++s) batch[s].sampling = {.temperature = 0.8f, .top_k = 40, .seed = s};
  const auto start = std::chrono::steady_clock::now();
  const auto out = model.generate(batch);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t generated = 0;
  for (const auto& g : out) generated += g.tokens.size() - g.prompt_length;
  std::cout << name << " greedy: ";
  for (std::size_t i = 0; i < out[0].tokens.size(); ++i)
    std::cout << (i == std::size_t(out[0].prompt_length) ? "| " : "") << out[0].tokens[i] << ' ';
  std::cout << "\n" << name << ": " << generated << " tokens for a batch of " << batch.size() << " in "
            << seconds * 1e3 << " ms = " << generated / seconds << " tokens/s\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : BLOCKFORMER_DEMO_DATA;
  try {
    const auto block = BlockModel::load(data + "/block_tiny/model.safetensors");
    const auto vanilla = VanillaModel::load(data + "/vanilla_tiny/model.safetensors");
    const std::vector<Token> prompt{17, 42, 311, 7, 99, 256, 3, 480, 12, 64};
    std::cout << "prompt of " << prompt.size() << " tokens; block model " << presets::block_tiny << "\n";
    run("block_tiny", block, prompt);
    run("vanilla_tiny", vanilla, prompt);
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

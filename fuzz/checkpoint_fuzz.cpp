// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the checkpoint loader, from memory: Checkpoint::from_memory -> CheckpointWeights ->
// a tiny block model's and a tiny vanilla model's from_weights (default options, then allow_unused with the
// weight scan), and for a model that loads, a short forward and generation. Anything but a clean load or a
// blockformer::Error (a crash, a sanitizer report, another exception type) is a finding.
#include "fuzz_models.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using namespace blockformer;

template <class Model>
void try_load(const io::Checkpoint& checkpoint, const LoadOptions& options, std::span<const Token> ids) {
  try {
    CheckpointWeights weights(checkpoint, options);
    const Model model = Model::from_weights(weights);
    (void)model.forward(ids, 1);
    const std::vector<Request> requests{{{1, 2, 3}, 3, {.temperature = 0.8f, .top_k = 5, .seed = 1}}, {{4}, 2}};
    (void)model.generate(requests);  // throws Error on non-finite logits (weights may hold NaN/Inf)
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto checkpoint = io::Checkpoint::from_memory(std::as_bytes(std::span(data, size)), "fuzz.safetensors");
    for (const std::string& name : checkpoint.names()) {
      const io::TensorRef ref = checkpoint.at(name);
      if (ref.info == nullptr || ref.info->name != name) __builtin_trap();
    }
    const std::vector<Token> ids{1, 2, 3, 4};  // two blocks of 2 tokens; 4 tokens for the vanilla model
    for (const LoadOptions& options : {LoadOptions{}, LoadOptions{.allow_unused = true, .check_weights = true}}) {
      try_load<fuzz::BlockModel>(checkpoint, options, ids);
      try_load<fuzz::VanillaModel>(checkpoint, options, ids);
    }
  } catch (const Error&) {
  }
  return 0;
}

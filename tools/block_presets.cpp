// SPDX-License-Identifier: Apache-2.0
// generate and score instantiated for every block preset (see model_commands.hpp).
#include <blockformer/eigen.hpp>

#include "model_commands.hpp"

namespace blockformer::cli {

void run_block_preset(const ModelCommand& command, const Tokenizer& tokenizer) {
  const std::string& name = std::visit([](const ModelArgs& args) -> const std::string& { return args.model; }, command);
  with_preset<EigenBackend>(
      name, [&]<class Model>(std::type_identity<Model>) { run_model_command<Model>(command, tokenizer); },
      kBlockPresets);
}

}  // namespace blockformer::cli

// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the sharded-checkpoint index parser (model.safetensors.index.json):
// Checkpoint::parse_weight_map on arbitrary bytes. A weight map or a blockformer::Error are the
// only outcomes; a crash, a sanitizer report or another exception type is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "blockformer/io/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto map = blockformer::io::Checkpoint::parse_weight_map(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.index.json");
    std::size_t total = 0;
    for (const auto& [tensor, shard] : map) total += tensor.size() + shard.size();
    (void)total;
  } catch (const blockformer::Error&) {
  }
  return 0;
}

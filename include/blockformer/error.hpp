// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one exception type blockformer throws for bad input and misuse.
#include <stdexcept>
#include <string>

namespace blockformer {

/// Thrown for every rejected input: the message names the culprit and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error("blockformer: " + what) {}
};

}  // namespace blockformer

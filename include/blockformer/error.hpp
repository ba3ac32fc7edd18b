// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one exception type blockformer throws for bad input and misuse, and how untrusted names
// (tensor keys, shard names, paths from a file) enter its messages.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace blockformer {

/// Thrown for every rejected input: the message names the culprit and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error("blockformer: " + what) {}
};

/// 'name' for a message: control characters, C1 controls, quotes, backslashes and bytes that are
/// not UTF-8 are written as \xNN, so a name can neither cut the message short (a NUL) nor drive
/// the terminal it is printed on; names past 256 bytes are cut, saying how long they were.
inline std::string quote(std::string_view name) {
  constexpr std::size_t kMaxShown = 256;
  constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  const auto escape = [&](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  std::size_t i = 0;
  while (i < name.size() && i < kMaxShown) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') escape(c);
      else out += char(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence is kept as is, unless it encodes a C1 control (U+0080-U+009F).
    const std::size_t length = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    bool valid = length > 0 && i + length <= name.size();
    for (std::size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(name[i + k]) & 0xc0) == 0x80;
    if (valid && length == 2 && c == 0xc2 && static_cast<unsigned char>(name[i + 1]) < 0xa0) valid = false;
    if (!valid) {
      escape(c);
      ++i;
      continue;
    }
    out.append(name.substr(i, length));
    i += length;
  }
  out += "'";
  if (i < name.size()) out += "... (" + std::to_string(name.size()) + " bytes)";
  return out;
}

}  // namespace blockformer

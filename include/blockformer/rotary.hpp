// SPDX-License-Identifier: Apache-2.0
#pragma once
// The NeoX rotary angles every backend tabulates: cos/sin of position * inv_freq[i] with
// inv_freq[i] = base^(-2i / rotary_dims), computed in double so the table carries no angle error.
#include <cmath>
#include <cstddef>
#include <vector>

namespace blockformer {

/// Host tables for positions [0, max_positions): row p holds rotary_dims / 2 values.
struct RotaryAngles {
  std::vector<float> cos, sin;  // [max_positions, rotary_dims / 2]
};

inline RotaryAngles rotary_angles(int rotary_dims, float base, int max_positions) {
  const int half = rotary_dims / 2;
  RotaryAngles a{std::vector<float>(std::size_t(max_positions) * half), std::vector<float>(std::size_t(max_positions) * half)};
  for (int p = 0; p < max_positions; ++p) {
    for (int i = 0; i < half; ++i) {
      const double inv_freq = 1.0 / std::pow(double(base), 2.0 * i / rotary_dims);
      a.cos[std::size_t(p) * half + i] = float(std::cos(p * inv_freq));
      a.sin[std::size_t(p) * half + i] = float(std::sin(p * inv_freq));
    }
  }
  return a;
}

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Element types of the Eigen backend's KV cache. The two 16-bit formats are distinct types (not
// both std::uint16_t) so that the kernels choose the widening by overload and a cache of one can
// never be read as the other.
#include <cstdint>
#include <type_traits>

#include "blockformer/io/half.hpp"

namespace blockformer {

/// A bfloat16 (8 significant bits, fp32's exponent range) as its bits.
struct Bf16 {
  std::uint16_t bits;
};
/// An IEEE binary16 (11 significant bits, largest finite 65504) as its bits.
struct F16 {
  std::uint16_t bits;
};

namespace eigen_detail {

template <class T>
inline constexpr bool kKvElement = std::is_same_v<T, float> || std::is_same_v<T, Bf16> || std::is_same_v<T, F16>;

/// A value as the cache stores it: rounded to nearest even once, when its row is appended.
template <class T>
T to_kv(float x) {
  if constexpr (std::is_same_v<T, Bf16>) return Bf16{io::float_to_bf16(x)};
  else if constexpr (std::is_same_v<T, F16>) return F16{io::float_to_f16(x)};
  else return x;
}

inline float widen(float x) { return x; }
inline float widen(Bf16 x) { return io::bf16_to_float(x.bits); }
inline float widen(F16 x) { return io::f16_to_float(x.bits); }

}  // namespace eigen_detail
}  // namespace blockformer

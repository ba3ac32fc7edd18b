// SPDX-License-Identifier: Apache-2.0
#pragma once
// Bit-exact conversions between float and the two 16-bit float formats found in checkpoints.
// Scalar and dependency-free so loaders, tests and kernels' host paths share one definition.
#include <bit>
#include <cstdint>

namespace blockformer::io {

/// Widens a bfloat16 bit pattern to float (exact: bf16 is the upper half of a float).
constexpr float bf16_to_float(std::uint16_t h) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

/// Rounds a float to bfloat16, to nearest with ties to even; NaN stays NaN (made quiet).
constexpr std::uint16_t float_to_bf16(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    // Truncating a NaN could clear every mantissa bit and turn it into infinity; the quiet bit prevents that.
    return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  }
  // Adding 0x7fff plus the kept LSB rounds ties to even; a carry into the exponent is the correct rounding,
  // up to and including overflow to infinity.
  const std::uint32_t lsb = (x >> 16) & 1u;
  return static_cast<std::uint16_t>((x + 0x7fffu + lsb) >> 16);
}

/// Widens an IEEE binary16 bit pattern to float (exact, including subnormals, infinities and NaN payloads).
constexpr float f16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return std::bit_cast<float>(sign);
  // Subnormal half: every one is a normal float; shift the leading 1 into the implicit-bit position.
  std::uint32_t float_exp = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --float_exp;
  }
  return std::bit_cast<float>(sign | (float_exp << 23) | ((mant & 0x3ffu) << 13));
}

/// Rounds a float to IEEE binary16, to nearest with ties to even: overflow gives infinity, tiny values
/// give subnormals or signed zero, NaN stays NaN (made quiet).
constexpr std::uint16_t float_to_f16(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  // 65520 = 0x477ff000 is halfway between the largest half (65504, odd mantissa) and 2^16: ties go up to inf.
  if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (ax >= 0x38800000u) {  // at least 2^-14: the result is a normal half
    std::uint32_t h = ((ax >> 23) - 112u) << 10 | ((ax >> 13) & 0x3ffu);
    const std::uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct
    return static_cast<std::uint16_t>(sign | h);
  }
  // 2^-25 (0x33000000) is halfway between zero and the smallest subnormal 2^-24: ties go to zero (even).
  if (ax <= 0x33000000u) return sign;
  // In units of the smallest subnormal (2^-24) the value is mant * 2^(exp - 126), with exp in [102, 112].
  const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126u - (ax >> 23);
  std::uint32_t h = mant >> shift;
  const std::uint32_t rest = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (h & 1u))) ++h;  // reaching 0x400 is the smallest normal, correctly
  return static_cast<std::uint16_t>(sign | h);
}

}  // namespace blockformer::io

// SPDX-License-Identifier: Apache-2.0
// bf16/f16 conversions: exhaustive over all 16-bit patterns, and float -> 16-bit rounding against an
// independent reference that enumerates the format's values with ldexp and picks the nearest (ties to even).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "blockformer/io/half.hpp"

namespace {

using blockformer::io::bf16_to_float;
using blockformer::io::f16_to_float;
using blockformer::io::float_to_bf16;
using blockformer::io::float_to_f16;

/// A binary floating-point format with 1 sign bit, exp_bits exponent bits and mant_bits mantissa bits.
struct Format {
  int exp_bits;
  int mant_bits;

  int bias() const { return (1 << (exp_bits - 1)) - 1; }
  std::uint32_t inf_pattern() const { return ((1u << exp_bits) - 1u) << mant_bits; }

  // Value of a non-negative pattern up to and including inf_pattern(), which maps to 2^(emax+1): the value
  // that round-to-nearest-even treats as the next step after the largest finite number.
  long double value(std::uint32_t pattern) const {
    const std::uint32_t e = pattern >> mant_bits;
    const std::uint32_t m = pattern & ((1u << mant_bits) - 1u);
    if (e == 0) return std::ldexp(static_cast<long double>(m), 1 - bias() - mant_bits);
    return std::ldexp(static_cast<long double>(m + (1u << mant_bits)), static_cast<int>(e) - bias() - mant_bits);
  }
};

constexpr Format kBf16{8, 7};
constexpr Format kF16{5, 10};

/// Nearest-even rounding by search over every value of the format, independent of the bit tricks under test.
class ReferenceRounder {
 public:
  explicit ReferenceRounder(Format f) : format_(f) {
    for (std::uint32_t p = 0; p <= f.inf_pattern(); ++p) values_.push_back(f.value(p));
  }

  std::uint16_t round(float x) const {
    const std::uint32_t sign = std::signbit(x) ? 1u << (format_.exp_bits + format_.mant_bits) : 0u;
    const long double a = std::fabs(static_cast<long double>(x));
    if (a >= values_.back()) return static_cast<std::uint16_t>(sign | format_.inf_pattern());
    const auto hi = static_cast<std::uint32_t>(std::upper_bound(values_.begin(), values_.end(), a) - values_.begin());
    const std::uint32_t lo = hi - 1;
    const long double down = a - values_[lo];
    const long double up = values_[hi] - a;
    const std::uint32_t pick = down < up ? lo : up < down ? hi : (lo % 2 == 0 ? lo : hi);
    return static_cast<std::uint16_t>(sign | pick);
  }

 private:
  Format format_;
  std::vector<long double> values_;  // indexed by pattern: increasing, since the format is sign-magnitude
};

bool is_nan16(std::uint16_t h, Format f) {
  const std::uint32_t mag = h & ((1u << (f.exp_bits + f.mant_bits)) - 1u);
  return mag > f.inf_pattern();
}

float from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

// Random float bit patterns cover every exponent; uniform values in the format's range hit its subnormals
// and normal binades densely.
std::vector<float> sample_floats(float range) {
  std::mt19937 rng(20240611);
  std::vector<float> out;
  std::uniform_int_distribution<std::uint32_t> bits;
  std::uniform_real_distribution<float> small(-range, range);
  for (int i = 0; i < 100000; ++i) {
    const float f = from_bits(bits(rng));
    if (!std::isnan(f)) out.push_back(f);
    out.push_back(small(rng));
    out.push_back(small(rng) * 1e-5f);
  }
  return out;
}

}  // namespace

TEST_CASE("half: bf16 -> float -> bf16 round-trips every pattern bit-exactly, NaN stays NaN") {
  int mismatches = 0;
  for (std::uint32_t p = 0; p <= 0xffff; ++p) {
    const auto h = static_cast<std::uint16_t>(p);
    const float f = bf16_to_float(h);
    CHECK(std::bit_cast<std::uint32_t>(f) == p << 16);
    if (is_nan16(h, kBf16)) {
      CHECK(std::isnan(f));
      CHECK(is_nan16(float_to_bf16(f), kBf16));
    } else if (float_to_bf16(f) != h) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("half: f16 -> float matches the ldexp definition and round-trips every pattern, NaN stays NaN") {
  int value_mismatches = 0;
  int roundtrip_mismatches = 0;
  for (std::uint32_t p = 0; p <= 0xffff; ++p) {
    const auto h = static_cast<std::uint16_t>(p);
    const float f = f16_to_float(h);
    if (is_nan16(h, kF16)) {
      CHECK(std::isnan(f));
      CHECK(std::signbit(f) == ((p & 0x8000u) != 0));
      CHECK(is_nan16(float_to_f16(f), kF16));
      continue;
    }
    const std::uint32_t mag = p & 0x7fffu;
    const long double expected = mag == kF16.inf_pattern() ? std::numeric_limits<long double>::infinity()
                                                           : kF16.value(mag);
    if (static_cast<long double>(f) != ((p & 0x8000u) ? -expected : expected) || std::signbit(f) != ((p & 0x8000u) != 0))
      ++value_mismatches;
    if (float_to_f16(f) != h) ++roundtrip_mismatches;
  }
  CHECK(value_mismatches == 0);
  CHECK(roundtrip_mismatches == 0);
}

TEST_CASE("half: float_to_bf16 matches the nearest-even reference on sampled floats") {
  const ReferenceRounder ref(kBf16);
  int mismatches = 0;
  for (float f : sample_floats(3e38f))
    if (float_to_bf16(f) != ref.round(f)) ++mismatches;
  CHECK(mismatches == 0);
}

TEST_CASE("half: float_to_f16 matches the nearest-even reference on sampled floats") {
  const ReferenceRounder ref(kF16);
  int mismatches = 0;
  for (float f : sample_floats(70000.0f))
    if (float_to_f16(f) != ref.round(f)) ++mismatches;
  CHECK(mismatches == 0);
}

TEST_CASE("half: float_to_bf16 ties, overflow, subnormals and NaN") {
  const ReferenceRounder ref(kBf16);
  struct Case {
    float in;
    std::uint16_t out;
  };
  const Case cases[] = {
      {1.0f, 0x3f80},
      {std::ldexp(1.0f, 0) + std::ldexp(1.0f, -8), 0x3f80},      // tie between 1 and 1+2^-7: even is 1
      {1.0f + 3 * std::ldexp(1.0f, -8), 0x3f82},                 // tie between 0x3f81 and 0x3f82: even is up
      {1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20), 0x3f81},  // just above a tie rounds up
      {-(1.0f + std::ldexp(1.0f, -8)), 0xbf80},
      {from_bits(0x7f7f7fff), 0x7f7f},                            // just below the overflow tie
      {from_bits(0x7f7f8000), 0x7f80},                            // tie above the largest bf16 (odd): to inf
      {std::numeric_limits<float>::max(), 0x7f80},
      {-std::numeric_limits<float>::max(), 0xff80},
      {std::numeric_limits<float>::infinity(), 0x7f80},
      {from_bits(0x00008000), 0x0000},                            // subnormal tie: to even zero
      {from_bits(0x00018000), 0x0002},                            // subnormal tie: to even 2
      {from_bits(0x00008001), 0x0001},
      {std::numeric_limits<float>::denorm_min(), 0x0000},
      {from_bits(0x007fffff), 0x0080},                            // largest subnormal rounds to smallest normal
      {-0.0f, 0x8000},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    CHECK(float_to_bf16(c.in) == c.out);
    CHECK(ref.round(c.in) == c.out);  // the reference agrees, so both encode the same rule
  }
  for (std::uint32_t nan : {0x7f800001u, 0x7fc00000u, 0xff800001u, 0x7fffffffu, 0x7f80ffffu}) {
    CAPTURE(nan);
    const std::uint16_t h = float_to_bf16(from_bits(nan));
    CHECK(is_nan16(h, kBf16));
    CHECK((h & 0x0040u) != 0);  // quiet
    CHECK((h & 0x8000u) == ((nan >> 16) & 0x8000u));
  }
}

TEST_CASE("half: float_to_f16 ties, overflow, subnormals and NaN") {
  const ReferenceRounder ref(kF16);
  struct Case {
    float in;
    std::uint16_t out;
  };
  const Case cases[] = {
      {1.0f, 0x3c00},
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},                    // tie: even is 1
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},                // tie between 0x3c01 and 0x3c02
      {-(1.0f + 3 * std::ldexp(1.0f, -11)), 0xbc02},
      {65504.0f, 0x7bff},                                        // largest half
      {65519.996f, 0x7bff},                                      // below the overflow tie
      {65520.0f, 0x7c00},                                        // tie above 65504 (odd): to inf
      {-65520.0f, 0xfc00},
      {1e6f, 0x7c00},
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {std::ldexp(1.0f, -14), 0x0400},                           // smallest normal
      {std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25), 0x0400},   // tie between 0x3ff and 0x400: even is up
      {std::ldexp(1.0f, -24), 0x0001},                           // smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},                           // tie with zero: even is zero
      {-std::ldexp(1.0f, -25), 0x8000},
      {std::nextafter(std::ldexp(1.0f, -25), 1.0f), 0x0001},
      {3 * std::ldexp(1.0f, -25), 0x0002},                       // tie between 1 and 2 units: even is 2
      {5 * std::ldexp(1.0f, -25), 0x0002},                       // tie between 2 and 3 units: even is 2
      {std::ldexp(1.0f, -30), 0x0000},
      {std::numeric_limits<float>::denorm_min(), 0x0000},
      {-0.0f, 0x8000},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    CHECK(float_to_f16(c.in) == c.out);
    CHECK(ref.round(c.in) == c.out);
  }
  for (std::uint32_t nan : {0x7f800001u, 0x7fc00000u, 0xff800001u, 0x7fffffffu}) {
    CAPTURE(nan);
    const std::uint16_t h = float_to_f16(from_bits(nan));
    CHECK(is_nan16(h, kF16));
    CHECK((h & 0x0200u) != 0);  // quiet
    CHECK((h & 0x8000u) == ((nan >> 16) & 0x8000u));
  }
}

TEST_CASE("half: conversions are usable in constant expressions") {
  static_assert(blockformer::io::float_to_bf16(1.0f) == 0x3f80);
  static_assert(blockformer::io::bf16_to_float(0x4040) == 3.0f);
  static_assert(blockformer::io::float_to_f16(-2.0f) == 0xc000);
  static_assert(blockformer::io::f16_to_float(0x0001) == 0x1p-24f);
  CHECK(true);
}

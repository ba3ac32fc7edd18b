// SPDX-License-Identifier: Apache-2.0
#pragma once
// The element types of the safetensors format: names, sizes, and which ones load as float.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "blockformer/error.hpp"

namespace blockformer::io {

/// Element types of the safetensors format (the reference implementation's list).
enum class DType {
  BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64,
};

namespace detail {

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t bits;
};

inline constexpr std::array<DTypeEntry, 22> kDTypes{{
    {DType::BOOL, "BOOL", 8},       {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6}, {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},           {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8}, {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8}, {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::I16, "I16", 16},        {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},        {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},        {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},        {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},        {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
}};

constexpr const DTypeEntry& dtype_entry(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e;
  return kDTypes[0];  // unreachable for valid enumerators
}

}  // namespace detail

/// The dtype's name as spelled in safetensors headers ("BF16").
constexpr std::string_view dtype_name(DType d) { return detail::dtype_entry(d).name; }

/// Bits per element (4 for F4, 6 for the F6 types, 8 or more for the rest).
constexpr std::size_t dtype_bits(DType d) { return detail::dtype_entry(d).bits; }

/// Bytes per element; 0 for the sub-byte F4/F6 types, whose sizes only exist per tensor (use dtype_bits).
constexpr std::size_t dtype_size(DType d) { return dtype_bits(d) % 8 == 0 ? dtype_bits(d) / 8 : 0; }

/// Parses a header dtype name; nullopt when the format has no such dtype.
constexpr std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& e : detail::kDTypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

/// The dtypes a float tensor may be stored in (widened to float at load).
constexpr bool is_float_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

/// Throws "<where>dtype I32 not supported (supported: F32, F16, BF16)" unless `d` loads as float.
inline void require_float_dtype(DType d, const std::string& where) {
  if (!is_float_dtype(d))
    throw Error(where + "dtype " + std::string(dtype_name(d)) + " not supported (supported: F32, F16, BF16)");
}

}  // namespace blockformer::io

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Tensor bytes to host values: F32/F16/BF16 widened to float, I64 copied; sources may have any
// alignment.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/io/dtype.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/io/safetensors_header.hpp"

namespace blockformer::io {

/// Converts an F32, F16 or BF16 tensor's bytes to float; src may have any alignment.
inline void convert_to_float(const TensorInfo& t, std::span<const std::byte> src, std::span<float> dst) {
  const std::string prefix = "tensor " + quote(t.name) + ": ";
  require_float_dtype(t.dtype, prefix);
  const std::uint64_t n = t.numel();
  if (dst.size() != n)
    throw Error(prefix + "destination holds " + std::to_string(dst.size()) + " floats, tensor has " +
                std::to_string(n) + " elements");
  const std::size_t width = dtype_size(t.dtype);
  if (src.size() != n * width)
    throw Error(prefix + "source holds " + std::to_string(src.size()) + " bytes, tensor needs " +
                std::to_string(n * width));
  if (t.dtype == DType::F32) {
    if (n > 0) std::memcpy(dst.data(), src.data(), src.size());
    return;
  }
  const auto widen = [&](auto decode) {
    for (std::size_t i = 0; i < dst.size(); ++i) {
      std::uint16_t h = 0;
      std::memcpy(&h, src.data() + 2 * i, 2);
      dst[i] = decode(h);
    }
  };
  if (t.dtype == DType::F16)
    widen([](std::uint16_t h) { return f16_to_float(h); });
  else
    widen([](std::uint16_t h) { return bf16_to_float(h); });
}

namespace detail {

inline const TensorInfo& require_tensor(const SafetensorsView& view, std::string_view name) {
  const TensorInfo* t = view.find(name);
  if (!t) throw Error(view.source() + ": tensor " + quote(name) + " not found");
  return *t;
}

}  // namespace detail

/// Reads an I64 tensor; throws naming the tensor if it is missing or has another dtype.
inline std::vector<std::int64_t> read_i64(const SafetensorsView& view, std::string_view name) {
  const TensorInfo& t = detail::require_tensor(view, name);
  if (t.dtype != DType::I64)
    throw Error(view.source() + ": tensor " + quote(t.name) + " has dtype " + std::string(dtype_name(t.dtype)) +
                ", expected I64");
  const auto src = view.bytes(t);
  std::vector<std::int64_t> out(t.numel());
  if (!out.empty()) std::memcpy(out.data(), src.data(), src.size());
  return out;
}

/// Reads an F32, F16 or BF16 tensor as float; throws naming the tensor if it is missing or has another dtype.
inline std::vector<float> read_f32(const SafetensorsView& view, std::string_view name) {
  const TensorInfo& t = detail::require_tensor(view, name);
  require_float_dtype(t.dtype, view.source() + ": tensor " + quote(t.name) + ": ");
  std::vector<float> out(t.numel());
  convert_to_float(t, view.bytes(t), out);
  return out;
}

}  // namespace blockformer::io

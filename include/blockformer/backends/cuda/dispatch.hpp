// SPDX-License-Identifier: Apache-2.0
#pragma once
// Run-time -> compile-time dispatch for the CUDA kernels, in one place: a closed list of head dims
// with an error naming what is supported. Host-only (plain C++): no CUDA headers, so CPU tests and
// tools compiled with g++ can include it.
#include <array>
#include <string>
#include <type_traits>
#include <utility>

#include "blockformer/error.hpp"

namespace blockformer::cuda {

/// Head dims with compiled attention kernels: the paper's 32, 64 and 128, plus 16 and 48 for small
/// custom models. Adding one costs an attention instantiation in every CUDA translation unit.
inline constexpr std::array<int, 5> kSupportedHeadDims{16, 32, 48, 64, 128};

/// "16, 32, 48, 64, 128"
inline std::string supported_head_dims_string() {
  std::string s;
  for (std::size_t i = 0; i < kSupportedHeadDims.size(); ++i) s += (i ? ", " : "") + std::to_string(kSupportedHeadDims[i]);
  return s;
}

/// Whether attention kernels exist for head_dim.
constexpr bool head_dim_supported(int head_dim) {
  for (int d : kSupportedHeadDims)
    if (d == head_dim) return true;
  return false;
}

/// Calls fn(std::integral_constant<int, HD>{}) for the compiled HD equal to head_dim; throws
/// Error("<what>: head_dim 80 not compiled; supported: 16, 32, 48, 64, 128") otherwise.
template <class Fn>
decltype(auto) dispatch_head_dim(int head_dim, Fn&& fn, const char* what = "attention") {
  switch (head_dim) {
    case 16: return std::forward<Fn>(fn)(std::integral_constant<int, 16>{});
    case 32: return std::forward<Fn>(fn)(std::integral_constant<int, 32>{});
    case 48: return std::forward<Fn>(fn)(std::integral_constant<int, 48>{});
    case 64: return std::forward<Fn>(fn)(std::integral_constant<int, 64>{});
    case 128: return std::forward<Fn>(fn)(std::integral_constant<int, 128>{});
    default:
      throw Error(std::string(what) + ": head_dim " + std::to_string(head_dim) +
                  " not compiled; supported: " + supported_head_dims_string());
  }
}

}  // namespace blockformer::cuda

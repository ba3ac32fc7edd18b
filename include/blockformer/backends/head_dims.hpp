// SPDX-License-Identifier: Apache-2.0
#pragma once
// Run-time -> compile-time head-dim dispatch, in one place. Models hand their head dim to the
// backend at compile time and never come here; benchmarks, tools and tests that pick a head dim
// at run time do. The Eigen backend compiles any head dim; the CUDA backend compiles its attention
// kernels for exactly this list.
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "blockformer/error.hpp"

namespace blockformer {

/// The paper's 32, 64 and 128, plus 16 and 48 for small custom models. A CUDA build pays one
/// attention kernel instantiation per entry in every translation unit that includes its backend.
inline constexpr std::array<int, 5> kCompiledHeadDims{16, 32, 48, 64, 128};

/// "16, 32, 48, 64, 128"
inline std::string compiled_head_dims_string() {
  std::string s;
  for (std::size_t i = 0; i < kCompiledHeadDims.size(); ++i) s += (i ? ", " : "") + std::to_string(kCompiledHeadDims[i]);
  return s;
}

constexpr bool head_dim_compiled(int head_dim) {
  for (int d : kCompiledHeadDims)
    if (d == head_dim) return true;
  return false;
}

/// Calls fn(std::integral_constant<int, HD>{}) for the listed HD equal to head_dim; throws
/// Error("<what>: head_dim 80 not compiled; supported: 16, 32, 48, 64, 128") otherwise.
template <std::size_t I = 0, class Fn>
auto dispatch_head_dim(int head_dim, Fn&& fn, const char* what = "attention")
    -> std::invoke_result_t<Fn&, std::integral_constant<int, kCompiledHeadDims[0]>> {
  if constexpr (I == kCompiledHeadDims.size()) {
    throw Error(std::string(what) + ": head_dim " + std::to_string(head_dim) +
                " not compiled; supported: " + compiled_head_dims_string());
  } else {
    if (head_dim == kCompiledHeadDims[I]) return fn(std::integral_constant<int, kCompiledHeadDims[I]>{});
    return dispatch_head_dim<I + 1>(head_dim, fn, what);
  }
}

}  // namespace blockformer

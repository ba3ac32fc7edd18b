// SPDX-License-Identifier: Apache-2.0
#pragma once
// The contract between the model code and a backend. Model code (model/*.hpp) is written once
// against it; a backend (backends/eigen, backends/cuda) holds the kernels and decides where
// buffers live and how weights are stored.
//
// A backend B provides
//   types   B::Buffer           owning float storage: B::Buffer(rows, cols), .view() -> MatrixView<float>
//           B::Linear           weight [out, in] and optional bias [out]
//           B::Norm             layer-norm weight and bias [width]
//           B::Embedding        lookup table [rows, width]
//           B::RotaryTable      cos/sin for positions [0, max_positions) of one rotary width
//           B::KvCache          K and V for [layers, slots, heads, capacity, head_dim]
//   factories (from host float data, row-major as in the checkpoint)
//           make_linear, make_norm, make_embedding
//   ops     linear(x, w, y, epilogue)           y = x W^T + b, then the epilogue
//           layer_norm(x, norm, eps, y)
//           rotary(qkv, batch, table, shape)     in place on q and k of fused per-head qkv
//           attention(qkv, cache, layer, batch, y, shape)  appends k, v to the cache, then causal
//                                               attention of each new row over its sequence's cache
//           gather(table, ids, y)               y[i] = table[ids[i]]
//           copy(x, y)                          strided 2-D copy
//           download(x, host)                   rows of x into host memory (row-major, dense)
#include <concepts>
#include <span>

#include "blockformer/backends/head_dims.hpp"
#include "blockformer/ragged_batch.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer {

/// What runs after the GEMM of a linear layer, fused where the backend can.
enum class Epilogue {
  kStore,       // y = x W^T + b
  kGelu,        // y = gelu_erf(x W^T + b)
  kAccumulate,  // y += x W^T + b   (residual add)
};

/// Per-head layout of a fused GPT-NeoX qkv row: heads x [q | k | v], each head_dim wide.
struct AttentionShape {
  int heads = 0;
  int head_dim = 0;
  int rotary_dims = 0;
};

template <class B>
concept Backend = requires(const typename B::Linear& w, const typename B::Norm& n,
                           const typename B::Embedding& e, const typename B::RotaryTable& rope,
                           typename B::KvCache& cache, typename B::Buffer& buf,
                           MatrixView<const float> x, MatrixView<float> y, const RaggedBatch& batch,
                           std::span<const Token> ids, std::span<float> host, AttentionShape shape) {
  { buf.view() } -> std::same_as<MatrixView<float>>;
  B::linear(x, w, y, Epilogue::kStore);
  B::layer_norm(x, n, 1e-5f, y);
  B::rotary(y, batch, rope, shape);
  B::template attention<kCompiledHeadDims[0]>(y, cache, 0, batch, y, shape);
  B::gather(e, ids, y);
  B::copy(x, y);
  B::download(x, host);
};

}  // namespace blockformer

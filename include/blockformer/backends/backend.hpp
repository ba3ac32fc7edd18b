// SPDX-License-Identifier: Apache-2.0
#pragma once
// The contract between the model code and a backend. Model code (model/*.hpp) is written once
// against it; a backend (backends/eigen, backends/cuda) holds the kernels and decides where
// buffers live and how weights are stored. The `Backend` concept below is the whole contract:
// a type that satisfies it runs every model, and a type that lacks a piece fails here, at the
// concept, not deep inside DecoderStack.
#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

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

/// Preconditions hold for every call the models make (shapes agree, ids are in range, batch rows
/// cover the tensors); a backend may check them (see op_checks.hpp) but never needs to. Views
/// address the backend's own memory except the host spans of gather (ids) and download.
/// Ops are called on the caller's thread, inside a model call that has made its ThreadPool the
/// thread's current one (thread_pool.hpp): a CPU backend may split an op with parallel_for(), and
/// must be done with it when the op returns; a backend that does not thread ignores the pool.
template <class B>
concept Backend = requires(const typename B::Linear& w, const typename B::Norm& n,
                           const typename B::Embedding& e, const typename B::RotaryTable& rope,
                           typename B::KvCache& cache, typename B::Buffer& buf, const typename B::Buffer& cbuf,
                           MatrixView<const float> x, MatrixView<float> y, const RaggedBatch& batch,
                           std::span<const Token> ids, std::span<float> host, std::vector<float> floats,
                           AttentionShape shape, int i, float f) {
  // Storage. Buffer(rows, cols): owning float activations; the views address the backend's memory.
  requires std::constructible_from<typename B::Buffer, int, int>;
  { buf.view() } -> std::same_as<MatrixView<float>>;
  { cbuf.view() } -> std::same_as<MatrixView<const float>>;
  // RotaryTable(rotary_dims, base, max_positions): cos/sin of rotary_angles() per position.
  requires std::constructible_from<typename B::RotaryTable, int, float, int>;
  // KvCache(layers, slots, heads, capacity, head_dim): K and V streams; bytes() is its footprint.
  requires std::constructible_from<typename B::KvCache, int, int, int, int, int>;
  { cache.bytes() } -> std::convertible_to<std::size_t>;

  // Factories, from host floats in checkpoint (row-major) order, moved in.
  { B::make_linear(floats, floats, i, i) } -> std::same_as<typename B::Linear>;  // weight [out, in], bias [out] or empty
  { B::make_norm(floats, floats) } -> std::same_as<typename B::Norm>;            // weight, bias [width]
  { B::make_embedding(floats, i, i) } -> std::same_as<typename B::Embedding>;    // table [rows, width]

  // Ops. x [rows, in], y [rows, out].
  B::linear(x, w, y, Epilogue::kStore);  // y (+)= x W^T + b, then the epilogue
  B::layer_norm(x, n, f, y);             // y = LayerNorm(x) with eps f; x and y [rows, width]
  B::rotary(y, batch, rope, shape);      // in place on q and k of fused qkv rows; positions from batch
  // Appends each row's k, v to its sequence's cache stream (layer, batch.cache_slot, cache index
  // from batch.cache_begin), then causal attention of each new row over its stream. The head dim
  // is a compile-time value (shape.head_dim equals it) so kernels are instantiated per model.
  B::template attention<kCompiledHeadDims[0]>(x, cache, i, batch, y, shape);
  B::gather(e, ids, y);  // y[r] = table[ids[r]], ids in [0, rows)
  B::copy(x, y);         // strided 2-D copy of equal shapes
  B::download(x, host);  // rows of x into host memory (row-major, dense), complete on return
};

}  // namespace blockformer

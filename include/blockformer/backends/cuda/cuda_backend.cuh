// SPDX-License-Identifier: Apache-2.0
#pragma once
// The CUDA backend: cuBLAS SGEMM for every linear layer (batch rows form one GEMM) with a fused
// bias/GELU epilogue pass, and kernels for layer norm, rotary, embedding gather, KV append and
// attention. fp32 storage and arithmetic (the path the golden fixtures hold to 1e-4). Buffers
// live in device memory; views passed in and out address device memory except the host spans
// of gather (ids) and download (destination). Needs nvcc; never includes Eigen.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/backends/head_dims.hpp"
#include "blockformer/backends/op_checks.hpp"
#include "blockformer/backends/cuda/check.cuh"
#include "blockformer/backends/cuda/context.cuh"
#include "blockformer/backends/cuda/device_memory.cuh"
#include "blockformer/backends/cuda/kernels.cuh"
#include "blockformer/backends/cuda/plan.hpp"
#include "blockformer/error.hpp"
#include "blockformer/rotary.hpp"

namespace blockformer {

struct CudaBackend {
  /// Threads per block of the row-wise kernels (layer norm, rotary, gather, KV append): rows are a
  /// few hundred to a few thousand floats, so 256 threads cover a row in a handful of steps.
  static constexpr int kRowThreads = 256;

  /// Dense row-major float storage in device memory, zeroed on creation.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(int rows, int cols) : rows_(check_extent(rows, "rows")), cols_(check_extent(cols, "cols")),
                                 data_(std::size_t(rows) * std::size_t(cols), "activation buffer") {
      zero(data_.data(), data_.bytes());
    }
    MatrixView<float> view() { return contiguous_view(data_.data(), rows_, cols_); }
    MatrixView<const float> view() const { return contiguous_view<const float>(data_.data(), rows_, cols_); }
    int rows() const { return rows_; }
    int cols() const { return cols_; }

   private:
    static int check_extent(int n, const char* what) {
      if (n < 0) throw Error(std::string("CudaBackend::Buffer: negative ") + what + " " + std::to_string(n));
      return n;
    }
    int rows_ = 0, cols_ = 0;
    cuda::DeviceArray<float> data_;
  };

  struct Linear {
    Buffer weight;                   // [out, in]
    cuda::DeviceArray<float> bias;   // [out] or empty
  };
  struct Norm {
    cuda::DeviceArray<float> weight, bias;  // [width]
  };
  struct Embedding {
    Buffer table;  // [rows, width]
  };

  /// The rotary_angles() table, computed on the host and
  /// uploaded once.
  class RotaryTable {
   public:
    RotaryTable() = default;
    RotaryTable(int rotary_dims, float base, int max_positions) : half_(rotary_dims / 2), positions_(max_positions) {
      if (half_ == 0 || max_positions <= 0) return;
      const RotaryAngles angles = rotary_angles(rotary_dims, base, max_positions);
      cos_ = upload(angles.cos, "rotary table");
      sin_ = upload(angles.sin, "rotary table");
    }
    /// 0 when the table is empty (no rotary dims), as the Eigen backend.
    int max_positions() const { return half_ ? positions_ : 0; }
    int half() const { return half_; }
    const float* cos() const { return cos_.data(); }  // [max_positions, half]
    const float* sin() const { return sin_.data(); }

   private:
    int half_ = 0, positions_ = 0;
    cuda::DeviceArray<float> cos_, sin_;
  };

  /// K and V in device memory (zeroed on creation), Eigen backend layout: for each (layer, slot, head) `capacity` rows
  /// of head_dim, so a decode step reads each sequence's cache front to back.
  class KvCache {
   public:
    KvCache() = default;
    KvCache(int layers, int slots, int heads, int capacity, int head_dim)
        : layers_(layers), slots_(slots), heads_(heads), capacity_(capacity), head_dim_(head_dim) {
      if (!head_dim_compiled(head_dim))
        throw Error("CudaBackend::KvCache: head_dim " + std::to_string(head_dim) +
                    " not compiled; supported: " + compiled_head_dims_string());
      const std::size_t bytes = cuda::kv_stream_bytes(layers, slots, heads, capacity, head_dim, sizeof(float));
      k_ = cuda::DeviceArray<float>(bytes / sizeof(float), "KV cache (K)");
      v_ = cuda::DeviceArray<float>(bytes / sizeof(float), "KV cache (V)");
      // Zeroed like the Eigen backend's, so a read past what was written is 0, never NaN garbage.
      zero(k_.data(), k_.bytes());
      zero(v_.data(), v_.bytes());
    }
    int layers() const { return layers_; }
    int slots() const { return slots_; }
    int heads() const { return heads_; }
    int capacity() const { return capacity_; }
    int head_dim() const { return head_dim_; }
    std::size_t bytes() const { return k_.bytes() + v_.bytes(); }
    /// Device pointers to the stream of (layer, slot, head).
    float* k(int layer, int slot, int head) const { return k_.data() + offset(layer, slot, head); }
    float* v(int layer, int slot, int head) const { return v_.data() + offset(layer, slot, head); }

   private:
    std::size_t offset(int layer, int slot, int head) const {
      return ((std::size_t(layer) * slots_ + slot) * heads_ + head) * capacity_ * head_dim_;
    }
    int layers_ = 0, slots_ = 0, heads_ = 0, capacity_ = 0, head_dim_ = 0;
    cuda::DeviceArray<float> k_, v_;
  };

  // ----------------------------------------------------------------------------- factories
  static Linear make_linear(std::vector<float> weight, std::vector<float> bias, int out, int in) {
    if (weight.size() != std::size_t(out) * in)
      throw Error("CudaBackend::make_linear: " + std::to_string(weight.size()) + " weights for [" + std::to_string(out) +
                  ", " + std::to_string(in) + "]");
    if (!bias.empty() && bias.size() != std::size_t(out))
      throw Error("CudaBackend::make_linear: " + std::to_string(bias.size()) + " biases for " + std::to_string(out) + " outputs");
    Linear l{Buffer(out, in), upload(bias, "linear bias")};
    copy_to_device(l.weight.view().data, weight);
    return l;
  }
  static Norm make_norm(std::vector<float> weight, std::vector<float> bias) {
    if (weight.size() != bias.size())
      throw Error("CudaBackend::make_norm: " + std::to_string(weight.size()) + " weights but " + std::to_string(bias.size()) + " biases");
    return Norm{upload(weight, "layer norm weight"), upload(bias, "layer norm bias")};
  }
  static Embedding make_embedding(std::vector<float> table, int rows, int width) {
    if (table.size() != std::size_t(rows) * width)
      throw Error("CudaBackend::make_embedding: " + std::to_string(table.size()) + " values for [" + std::to_string(rows) +
                  ", " + std::to_string(width) + "]");
    Embedding e{Buffer(rows, width)};
    copy_to_device(e.table.view().data, table);
    return e;
  }

  // ----------------------------------------------------------------------------- ops
  static void linear(MatrixView<const float> x, const Linear& w, MatrixView<float> y, Epilogue epilogue) {
    const int out = w.weight.rows(), in = w.weight.cols();
    if constexpr (op_checks::kEnabled) {
      op_checks::linear(x, out, in, y, "CudaBackend::linear");
      check_ld(x, "linear x");
      check_ld(y, "linear y");
    }
    if (y.rows == 0 || out == 0) return;
    cuda::Context& ctx = cuda::Context::get();
    const float alpha = 1.0f, beta = epilogue == Epilogue::kAccumulate ? 1.0f : 0.0f;
    // Row-major y [rows, out] is column-major y^T [out, rows]: y^T = W x^T, with W stored
    // row-major [out, in] (column-major [in, out], hence op T).
    BLOCKFORMER_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, y.rows, in, &alpha,
                                         w.weight.view().data, in, x.data, int(x.stride), &beta, y.data, int(y.stride)));
    const bool gelu = epilogue == Epilogue::kGelu;
    if (w.bias.empty() && !gelu) return;
    const cuda::kernels::BiasEpilogueParams p{y.data, y.stride, w.bias.empty() ? nullptr : w.bias.data(), y.rows, y.cols};
    const long long n = (long long)y.rows * y.cols;
    const int threads = 256;
    const int blocks = int(std::min<long long>((n + threads - 1) / threads, 32LL * ctx.sm_count()));
    if (gelu) {
      cuda::kernels::bias_epilogue<true><<<blocks, threads, 0, ctx.stream()>>>(p);
    } else {
      cuda::kernels::bias_epilogue<false><<<blocks, threads, 0, ctx.stream()>>>(p);
    }
    BLOCKFORMER_CUDA_CHECK_LAUNCH("bias_epilogue");
  }

  static void layer_norm(MatrixView<const float> x, const Norm& n, float eps, MatrixView<float> y) {
    if constexpr (op_checks::kEnabled) op_checks::layer_norm(x, n.weight.size(), y, "CudaBackend::layer_norm");
    if (x.rows == 0) return;
    cuda::Context& ctx = cuda::Context::get();
    cuda::kernels::layer_norm<kRowThreads><<<x.rows, kRowThreads, 0, ctx.stream()>>>(
        {x.data, x.stride, y.data, y.stride, n.weight.data(), n.bias.data(), x.rows, x.cols, eps});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("layer_norm");
  }

  static void rotary(MatrixView<float> qkv, const RaggedBatch& batch, const RotaryTable& table, AttentionShape shape) {
    const int half = shape.rotary_dims / 2;
    if constexpr (op_checks::kEnabled)
      op_checks::rotary(qkv, batch, shape, table.half(), table.max_positions(), "CudaBackend::rotary");
    if (half == 0 || qkv.rows == 0) return;
    cuda::Context& ctx = cuda::Context::get();
    const cuda::DeviceBatch b = ctx.batch(batch, shape.heads);
    cuda::kernels::rotary<kRowThreads><<<qkv.rows, kRowThreads, 0, ctx.stream()>>>(
        {qkv.data, qkv.stride, b.at(b.host->positions), table.cos(), table.sin(), qkv.rows, shape.heads, shape.head_dim, half});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("rotary");
  }

  template <int HeadDim>
  static void attention(MatrixView<const float> qkv, KvCache& cache, int layer, const RaggedBatch& batch,
                        MatrixView<float> y, AttentionShape shape) {
    static_assert(head_dim_compiled(HeadDim), "no CUDA attention kernel for this head dim: add it to kCompiledHeadDims");
    if constexpr (op_checks::kEnabled)
      op_checks::attention_call(qkv, y, batch, shape, HeadDim, cache, layer, "CudaBackend::attention");
    if (qkv.rows == 0) return;
    launch_attention<HeadDim>(qkv, cache, layer, batch, y, shape);
  }

  static void gather(const Embedding& e, std::span<const Token> ids, MatrixView<float> y) {
    const auto table = e.table.view();
    if constexpr (op_checks::kEnabled) op_checks::gather(ids, table.rows, table.cols, y, "CudaBackend::gather");
    if (ids.empty()) return;
    cuda::Context& ctx = cuda::Context::get();
    const auto* device_ids = static_cast<const int*>(ctx.upload(ids.data(), ids.size_bytes()));
    cuda::kernels::gather<kRowThreads><<<y.rows, kRowThreads, 0, ctx.stream()>>>(
        {table.data, table.stride, device_ids, y.data, y.stride, y.rows, y.cols});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("gather");
  }

  static void copy(MatrixView<const float> x, MatrixView<float> y) {
    if constexpr (op_checks::kEnabled) op_checks::copy(x, y, "CudaBackend::copy");
    if (x.rows == 0 || x.cols == 0) return;
    BLOCKFORMER_CUDA_CHECK(cudaMemcpy2DAsync(y.data, y.stride * sizeof(float), x.data, x.stride * sizeof(float),
                                             x.cols * sizeof(float), x.rows, cudaMemcpyDeviceToDevice,
                                             cuda::Context::get().stream()));
  }

  /// Synchronizes this thread's stream: the host data is complete on return.
  static void download(MatrixView<const float> x, std::span<float> host) {
    if constexpr (op_checks::kEnabled) op_checks::download(x, host.size(), "CudaBackend::download");
    if (x.rows == 0 || x.cols == 0) return;
    cuda::Context& ctx = cuda::Context::get();
    BLOCKFORMER_CUDA_CHECK(cudaMemcpy2DAsync(host.data(), x.cols * sizeof(float), x.data, x.stride * sizeof(float),
                                             x.cols * sizeof(float), x.rows, cudaMemcpyDeviceToHost, ctx.stream()));
    BLOCKFORMER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  }

 private:
  template <int HD>
  static void launch_attention(MatrixView<const float> qkv, KvCache& cache, int layer, const RaggedBatch& batch,
                               MatrixView<float> y, AttentionShape shape) {
    cuda::Context& ctx = cuda::Context::get();
    const cuda::DeviceBatch b = ctx.batch(batch, shape.heads);
    const cuda::PackedBatch& h = *b.host;
    const cuda::kernels::BatchArrays arrays{b.at(h.row_begin), b.at(h.cache_slot), b.at(h.cache_begin), b.at(h.row_sequence)};
    float* k = cache.k(layer, 0, 0);
    float* v = cache.v(layer, 0, 0);
    cuda::kernels::kv_append<kRowThreads><<<qkv.rows, kRowThreads, 0, ctx.stream()>>>(
        {qkv.data, qkv.stride, k, v, arrays, qkv.rows, shape.heads, HD, cache.capacity()});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("kv_append");
    float* partials = h.partials ? ctx.partials(std::size_t(h.partials) * shape.heads * (HD + 2)) : nullptr;
    const auto* items = reinterpret_cast<const cuda::AttentionWorkItem*>(b.at(h.items));
    cuda::kernels::attention<HD><<<dim3(h.item_count, shape.heads), cuda::kAttentionRows * cuda::kernels::kWarp, 0, ctx.stream()>>>(
        {qkv.data, qkv.stride, y.data, y.stride, k, v, arrays, items, partials, shape.heads, cache.capacity(),
         1.0f / std::sqrt(float(HD))});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("attention");
    if (h.combine_count == 0) return;
    const auto* combines = reinterpret_cast<const cuda::AttentionCombine*>(b.at(h.combines));
    cuda::kernels::attention_combine<HD><<<dim3(h.combine_count, shape.heads), HD, 0, ctx.stream()>>>(
        {combines, partials, y.data, y.stride, shape.heads});
    BLOCKFORMER_CUDA_CHECK_LAUNCH("attention_combine");
  }

  static void check_ld(MatrixView<const float> v, const char* what) {
    if (v.stride < v.cols || v.stride > INT_MAX || v.stride < 1)
      throw Error(std::string("CudaBackend::") + what + ": row stride " + std::to_string(v.stride) + " for " +
                  std::to_string(v.cols) + " columns (cuBLAS needs cols <= stride <= INT_MAX)");
  }
  static cuda::DeviceArray<float> upload(const std::vector<float>& host, const char* what) {
    cuda::DeviceArray<float> d(host.size(), what);
    copy_to_device(d.data(), host);
    return d;
  }
  /// Load-time upload; synchronous so the pageable source may go away and any stream may read it.
  static void copy_to_device(float* device, const std::vector<float>& host) {
    if (host.empty()) return;
    cuda::Context& ctx = cuda::Context::get();
    BLOCKFORMER_CUDA_CHECK(cudaMemcpyAsync(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, ctx.stream()));
    BLOCKFORMER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  }
  static void zero(void* device, std::size_t bytes) {
    if (bytes == 0) return;
    cuda::Context& ctx = cuda::Context::get();
    BLOCKFORMER_CUDA_CHECK(cudaMemsetAsync(device, 0, bytes, ctx.stream()));
    BLOCKFORMER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  }
};

static_assert(Backend<CudaBackend>);

}  // namespace blockformer

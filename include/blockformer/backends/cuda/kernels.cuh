// SPDX-License-Identifier: Apache-2.0
#pragma once
// The CUDA backend's kernels. Each takes one plain params struct built on the host after the
// arguments were validated. Every kernel is a template (CUDA 13 gives template stubs internal
// linkage, so this header can sit in several translation units); host launchers live in
// cuda_backend.cuh. fp32 storage and arithmetic throughout.
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>

#include "blockformer/backends/cuda/plan.hpp"

namespace blockformer::cuda::inline v1::kernels {

inline constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Sum over the block; every thread gets the total. `scratch` holds kThreads / 32 floats.
template <int kThreads>
__device__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / kWarp; ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next call
  return total;
}

// ---------------------------------------------------------------------------------------------
struct LayerNormParams {
  const float* x;        // [rows, cols], row stride x_stride
  std::ptrdiff_t x_stride;
  float* y;              // [rows, cols], row stride y_stride
  std::ptrdiff_t y_stride;
  const float* weight;   // [cols]
  const float* bias;     // [cols]
  int rows, cols;
  float eps;
};

/// One block per row; two passes over the row (mean, then centred variance) as in the reference.
template <int kThreads>
__global__ __launch_bounds__(kThreads) void layer_norm(LayerNormParams p) {
  __shared__ float scratch[kThreads / kWarp];
  const float* in = p.x + std::ptrdiff_t(blockIdx.x) * p.x_stride;
  float* out = p.y + std::ptrdiff_t(blockIdx.x) * p.y_stride;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < p.cols; c += kThreads) sum += in[c];
  const float mean = block_sum<kThreads>(sum, scratch) / float(p.cols);
  float sq = 0.0f;
  for (int c = threadIdx.x; c < p.cols; c += kThreads) sq += (in[c] - mean) * (in[c] - mean);
  const float inv = 1.0f / sqrtf(block_sum<kThreads>(sq, scratch) / float(p.cols) + p.eps);
  for (int c = threadIdx.x; c < p.cols; c += kThreads) out[c] = (in[c] - mean) * inv * p.weight[c] + p.bias[c];
}

// ---------------------------------------------------------------------------------------------
struct BiasEpilogueParams {
  float* y;             // [rows, cols] GEMM output, updated in place
  std::ptrdiff_t stride;
  const float* bias;    // [cols] or null
  int rows, cols;
};

__device__ __forceinline__ float gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

/// y = y + bias, then GELU (erf form, as HF GPT-NeoX) when kGelu: one pass after the GEMM.
template <bool kGelu>
__global__ void bias_epilogue(BiasEpilogueParams p) {
  const long long n = (long long)p.rows * p.cols;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int r = int(i / p.cols), c = int(i % p.cols);
    float* at = p.y + r * p.stride + c;
    float v = *at + (p.bias ? p.bias[c] : 0.0f);
    if constexpr (kGelu) v = gelu_erf(v);
    *at = v;
  }
}

// ---------------------------------------------------------------------------------------------
struct RotaryParams {
  float* qkv;           // [rows, heads * 3 * head_dim], per head [q | k | v]
  std::ptrdiff_t stride;
  const int* positions; // [rows]
  const float* cos;     // [max_positions, half]
  const float* sin;     // [max_positions, half]
  int rows, heads, head_dim, half;
};

/// NeoX rotate_half on the first 2 * half dims of q and k of every head; a thread owns a pair.
template <int kThreads>
__global__ __launch_bounds__(kThreads) void rotary(RotaryParams p) {
  float* row = p.qkv + std::ptrdiff_t(blockIdx.x) * p.stride;
  const std::ptrdiff_t table = std::ptrdiff_t(p.positions[blockIdx.x]) * p.half;
  const int pairs = p.heads * 2 * p.half;
  for (int idx = threadIdx.x; idx < pairs; idx += kThreads) {
    const int h = idx / (2 * p.half), rem = idx % (2 * p.half), part = rem / p.half, i = rem % p.half;
    float* x = row + std::ptrdiff_t(h) * 3 * p.head_dim + part * p.head_dim;
    const float a = x[i], b = x[i + p.half], c = p.cos[table + i], s = p.sin[table + i];
    x[i] = a * c - b * s;
    x[i + p.half] = b * c + a * s;
  }
}

// ---------------------------------------------------------------------------------------------
struct GatherParams {
  const float* table;   // [table_rows, cols]
  std::ptrdiff_t table_stride;
  const int* ids;       // [rows], validated on the host
  float* y;             // [rows, cols]
  std::ptrdiff_t y_stride;
  int rows, cols;
};

template <int kThreads>
__global__ __launch_bounds__(kThreads) void gather(GatherParams p) {
  const float* src = p.table + std::ptrdiff_t(p.ids[blockIdx.x]) * p.table_stride;
  float* dst = p.y + std::ptrdiff_t(blockIdx.x) * p.y_stride;
  for (int c = threadIdx.x; c < p.cols; c += kThreads) dst[c] = src[c];
}

// ---------------------------------------------------------------------------------------------
/// The batch arrays on the device (offsets of a PackedBatch).
struct BatchArrays {
  const int* row_begin;     // [sequences + 1]
  const int* cache_slot;    // [sequences]
  const int* cache_begin;   // [sequences]
  const int* row_sequence;  // [rows]
};

struct KvAppendParams {
  const float* qkv;     // [rows, heads * 3 * head_dim]
  std::ptrdiff_t stride;
  float* k;             // this layer's [slots, heads, capacity, head_dim]
  float* v;
  BatchArrays batch;
  int rows, heads, head_dim, capacity;
};

/// Writes each new row's k and v at its cache index: cache_begin + (row - row_begin).
template <int kThreads>
__global__ __launch_bounds__(kThreads) void kv_append(KvAppendParams p) {
  const int row = blockIdx.x, s = p.batch.row_sequence[row];
  const int index = p.batch.cache_begin[s] + row - p.batch.row_begin[s], slot = p.batch.cache_slot[s];
  const float* src = p.qkv + std::ptrdiff_t(row) * p.stride;
  for (int idx = threadIdx.x; idx < p.heads * p.head_dim; idx += kThreads) {
    const int h = idx / p.head_dim, d = idx % p.head_dim;
    const std::size_t dst = ((std::size_t(slot) * p.heads + h) * p.capacity + index) * p.head_dim + d;
    p.k[dst] = src[std::ptrdiff_t(h) * 3 * p.head_dim + p.head_dim + d];
    p.v[dst] = src[std::ptrdiff_t(h) * 3 * p.head_dim + 2 * p.head_dim + d];
  }
}

// ---------------------------------------------------------------------------------------------
struct AttentionParams {
  const float* qkv;     // [rows, heads * 3 * head_dim]
  std::ptrdiff_t qkv_stride;
  float* y;             // [rows, heads * head_dim]
  std::ptrdiff_t y_stride;
  const float* k;       // this layer's [slots, heads, capacity, head_dim]
  const float* v;
  BatchArrays batch;
  const AttentionWorkItem* items;
  float* partials;      // [partial slots, heads, head_dim + 2]: max, sum, unnormalized output
  int heads, capacity;
  float scale;          // 1 / sqrt(head_dim)
};

/// Causal attention of up to kAttentionRows rows (one warp each) of one sequence and head over
/// cache indices [k_begin, k_end), online softmax over key tiles staged in shared memory.
/// Scores: lane j owns key j of the tile; output: lane owns dims lane, lane + 32, ...
template <int HD>
__global__ __launch_bounds__(kAttentionRows * kWarp) void attention(AttentionParams p) {
  constexpr int kTile = kAttentionKeyTile;
  constexpr int kPer = (HD + kWarp - 1) / kWarp;  // output dims per lane
  __shared__ float ks[kTile][HD + 1];  // +1: lane j reads row j at one dim, conflict-free
  __shared__ float vs[kTile][HD];
  __shared__ float qs[kAttentionRows][HD];

  const AttentionWorkItem item = p.items[blockIdx.x];
  const int h = blockIdx.y, warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int s = item.sequence, slot = p.batch.cache_slot[s];
  const std::size_t base = (std::size_t(slot) * p.heads + h) * p.capacity * HD;
  const float* kc = p.k + base;
  const float* vc = p.v + base;

  const bool active = warp < item.q_count;
  const int row = item.q_begin + warp;
  // Causal by cache index: the row sees indices up to its own.
  const int limit = active ? min(item.k_end, p.batch.cache_begin[s] + row - p.batch.row_begin[s] + 1) : 0;
  if (active)
    for (int d = lane; d < HD; d += kWarp)
      qs[warp][d] = p.qkv[std::ptrdiff_t(row) * p.qkv_stride + std::ptrdiff_t(h) * 3 * HD + d] * p.scale;

  float m = -INFINITY, l = 0.0f, acc[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) acc[e] = 0.0f;

  for (int t0 = item.k_begin; t0 < item.k_end; t0 += kTile) {
    const int n = min(kTile, item.k_end - t0);
    __syncthreads();  // previous tile consumed (and qs written, on the first pass)
    for (int i = threadIdx.x; i < n * HD; i += kAttentionRows * kWarp) {
      const int r = i / HD, d = i % HD;
      ks[r][d] = kc[std::size_t(t0 + r) * HD + d];
      vs[r][d] = vc[std::size_t(t0 + r) * HD + d];
    }
    __syncthreads();
    if (!active || t0 >= limit) continue;  // uniform per warp; every thread still reaches the barriers
    const int j = t0 + lane;
    float score = -INFINITY;
    if (lane < n && j < limit) {
      score = 0.0f;
#pragma unroll 8
      for (int d = 0; d < HD; ++d) score += qs[warp][d] * ks[lane][d];
    }
    const float m_new = fmaxf(m, warp_max(score));  // finite: key t0 < limit is visible
    const float correction = expf(m - m_new);      // 0 on the first visible tile
    const float prob = expf(score - m_new);        // 0 for masked keys
    l = l * correction + warp_sum(prob);
#pragma unroll
    for (int e = 0; e < kPer; ++e) acc[e] *= correction;
    for (int jj = 0; jj < n; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, prob, jj);
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int d = lane + e * kWarp;
        if (d < HD) acc[e] += pj * vs[jj][d];
      }
    }
    m = m_new;
  }
  if (!active) return;
  if (item.partial < 0) {
    float* out = p.y + std::ptrdiff_t(row) * p.y_stride + std::ptrdiff_t(h) * HD;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int d = lane + e * kWarp;
      if (d < HD) out[d] = acc[e] / l;
    }
  } else {
    float* out = p.partials + (std::size_t(item.partial + warp) * p.heads + h) * (HD + 2);
    if (lane == 0) {
      out[0] = m;  // -inf with l = 0 when this split holds no key the row sees
      out[1] = l;
    }
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int d = lane + e * kWarp;
      if (d < HD) out[2 + d] = acc[e];
    }
  }
}

struct AttentionCombineParams {
  const AttentionCombine* combines;
  const float* partials;  // as AttentionParams::partials
  float* y;
  std::ptrdiff_t y_stride;
  int heads;
};

/// Merges a row's key splits: y = sum_i exp(m_i - M) acc_i / sum_i exp(m_i - M) l_i.
template <int HD>
__global__ __launch_bounds__(HD) void attention_combine(AttentionCombineParams p) {
  const AttentionCombine c = p.combines[blockIdx.x];
  const int h = blockIdx.y, d = threadIdx.x;
  auto part = [&](int i) { return p.partials + (std::size_t(c.partial + i * c.stride) * p.heads + h) * (HD + 2); };
  float max = -INFINITY;
  for (int i = 0; i < c.splits; ++i) max = fmaxf(max, part(i)[0]);
  float sum = 0.0f, acc = 0.0f;
  for (int i = 0; i < c.splits; ++i) {
    const float w = expf(part(i)[0] - max);
    sum += w * part(i)[1];
    acc += w * part(i)[2 + d];
  }
  p.y[std::ptrdiff_t(c.row) * p.y_stride + std::ptrdiff_t(h) * HD + d] = acc / sum;
}

}  // namespace blockformer::cuda::inline v1::kernels

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Causal attention of new rows over one (sequence, head) K/V stream, the unit of work the Eigen
// backend hands to each thread. Vanilla decode, global block attention (the block decoder) and
// local token attention (the token decoder) are all this kernel: they differ only in how many
// rows are new and where the sequence's stream begins.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "blockformer/backends/eigen/small_gemm.hpp"

namespace blockformer::eigen_detail {

/// One (sequence, head): `count` new rows whose q, k, v sit in the fused qkv rows; row i has
/// cache index begin + i and sees keys [0, begin + i]. k and v point at the head's stream
/// ([capacity, head_dim], contiguous), so a decode step reads each stream front to back.
struct AttentionTask {
  const float* qkv;           // first new row, at this head's [q | k | v]
  std::ptrdiff_t qkv_stride;  // floats between rows
  float* k;                   // [capacity, head_dim]
  float* v;                   // [capacity, head_dim]
  float* out;                 // first output row, at this head's columns
  std::ptrdiff_t out_stride;
  int count;
  int begin;
  float scale;
};

/// Rows per tile of a multi-row call: a tile computes scores only against the keys its last row
/// sees, so a prefill does about half the QK^T and PV work of the full square; 64 rows x 2048
/// keys of scores (512 KiB) stay in L2.
inline constexpr int kAttentionRowTile = 64;

/// Per-thread scores scratch; grows to the largest tile seen and never shrinks, so steady-state
/// decode steps do not allocate.
inline float* attention_scratch(std::size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

#if defined(__AVX512F__)
/// One decode row over `keys` cached rows for head dims that are whole AVX-512 vectors (16, 32, 48,
/// 64, 128). Eigen's GEMV for q K^T walks K [keys, hd] as a column-major hd x keys matrix, which
/// for small hd is mostly loop overhead (~6 GB/s at hd 16); here 16 keys at a time are multiplied
/// with q and reduced by one shuffle tree into a vector of 16 scores, and P V accumulates
/// broadcast(p_j) * v_j in vector registers.
template <int HD>
void attend_decode_row(const float* q, const float* k, const float* v, int keys, float scale, float* scores,
                       float* out) {
  constexpr int C = HD / 16;
  __m512 qv[C];
  for (int c = 0; c < C; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  int j = 0;
  for (; j + 16 <= keys; j += 16) {
    __m512 p[16];
    for (int i = 0; i < 16; ++i) {  // slot i holds key 4 (i % 4) + i / 4: the tree's output order
      const float* kr = k + std::size_t(j + 4 * (i % 4) + i / 4) * HD;
      p[i] = _mm512_mul_ps(_mm512_loadu_ps(kr), qv[0]);
      for (int c = 1; c < C; ++c) p[i] = _mm512_fmadd_ps(_mm512_loadu_ps(kr + 16 * c), qv[c], p[i]);
    }
    _mm512_storeu_ps(scores + j, Simd::reduce16(p));
  }
  for (; j < keys; ++j) {
    __m512 p = _mm512_mul_ps(_mm512_loadu_ps(k + std::size_t(j) * HD), qv[0]);
    for (int c = 1; c < C; ++c) p = _mm512_fmadd_ps(_mm512_loadu_ps(k + std::size_t(j) * HD + 16 * c), qv[c], p);
    scores[j] = _mm512_reduce_add_ps(p);
  }
  Eigen::Map<Eigen::ArrayXf> s(scores, keys);
  const float max = s.maxCoeff();
  s = ((s - max) * scale).exp();
  const float inv = 1.0f / s.sum();
  __m512 acc[2][C];  // two independent chains over even and odd keys
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
  j = 0;
  for (; j + 2 <= keys; j += 2)
    for (int u = 0; u < 2; ++u) {
      const __m512 pj = _mm512_set1_ps(scores[j + u]);
      for (int c = 0; c < C; ++c)
        acc[u][c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(v + std::size_t(j + u) * HD + 16 * c), acc[u][c]);
    }
  if (j < keys) {
    const __m512 pj = _mm512_set1_ps(scores[j]);
    for (int c = 0; c < C; ++c)
      acc[0][c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(v + std::size_t(j) * HD + 16 * c), acc[0][c]);
  }
  const __m512 scale_out = _mm512_set1_ps(inv);
  for (int c = 0; c < C; ++c)
    _mm512_storeu_ps(out + 16 * c, _mm512_mul_ps(_mm512_add_ps(acc[0][c], acc[1][c]), scale_out));
}
#endif

/// Appends the task's k and v rows to the cache, then attends. HD is the compile-time head dim,
/// or Eigen::Dynamic with `head_dim` given at run time.
template <int HD>
void attend(const AttentionTask& t, int head_dim) {
  const int hd = HD == Eigen::Dynamic ? head_dim : HD;
  for (int i = 0; i < t.count; ++i) {
    const float* src = t.qkv + i * t.qkv_stride;
    std::memcpy(t.k + std::size_t(t.begin + i) * hd, src + hd, hd * sizeof(float));
    std::memcpy(t.v + std::size_t(t.begin + i) * hd, src + 2 * hd, hd * sizeof(float));
  }
  using Rows = Eigen::Matrix<float, Eigen::Dynamic, HD, Eigen::RowMajor>;
  using Scores = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (int i0 = 0; i0 < t.count; i0 += kAttentionRowTile) {
    const int rows = std::min(kAttentionRowTile, t.count - i0);
    const int keys = t.begin + i0 + rows;  // what the tile's last row sees
    const Eigen::Map<const Rows, Eigen::Unaligned, Eigen::OuterStride<>> q(t.qkv + i0 * t.qkv_stride, rows, hd,
                                                                           Eigen::OuterStride<>(t.qkv_stride));
    const Eigen::Map<const Rows> k(t.k, keys, hd), v(t.v, keys, hd);
    Eigen::Map<Scores> s(attention_scratch(std::size_t(rows) * keys), rows, keys);
    Eigen::Map<Rows, Eigen::Unaligned, Eigen::OuterStride<>> out(t.out + i0 * t.out_stride, rows, hd,
                                                                 Eigen::OuterStride<>(t.out_stride));
    if (rows == 1) {  // decode: two matrix-vector passes over the stream
#if defined(__AVX512F__)
      if constexpr (HD != Eigen::Dynamic && HD % 16 == 0) {
        attend_decode_row<HD>(t.qkv + i0 * t.qkv_stride, t.k, t.v, keys, t.scale, s.data(), t.out + i0 * t.out_stride);
        continue;
      }
#endif
      auto row = s.row(0);
      row.noalias() = q.row(0) * k.transpose();
      const float max = row.maxCoeff();
      row = ((row.array() - max) * t.scale).exp();
      const float inv = 1.0f / row.sum();
      out.row(0).noalias() = (row * v) * inv;
      continue;
    }
    s.noalias() = q * k.transpose();
    for (int i = 0; i < rows; ++i) {
      const int visible = t.begin + i0 + i + 1;  // causal: the row's own cache index and before
      auto row = s.row(i);
      const float max = row.head(visible).maxCoeff();
      row.head(visible) = ((row.head(visible).array() - max) * t.scale).exp();
      row.head(visible) *= 1.0f / row.head(visible).sum();
      row.tail(keys - visible).setZero();
    }
    out.noalias() = s * v;
  }
}

/// Head dims compiled as fixed-size kernels (the paper's 32, 64, 128, plus 16 and 48); any other
/// head dim runs the dynamic-size kernel.
inline void attend(const AttentionTask& t, int head_dim) {
  switch (head_dim) {
    case 16: return attend<16>(t, head_dim);
    case 32: return attend<32>(t, head_dim);
    case 48: return attend<48>(t, head_dim);
    case 64: return attend<64>(t, head_dim);
    case 128: return attend<128>(t, head_dim);
    default: return attend<Eigen::Dynamic>(t, head_dim);
  }
}

}  // namespace blockformer::eigen_detail

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

#include "blockformer/backends/eigen/gemm.hpp"
#include "blockformer/backends/eigen/simd.hpp"
#include "blockformer/tensor.hpp"

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

/// Dot products of q with `N` consecutive key rows into scores[0, N), HD known at compile time:
/// HD / lanes vector FMAs per key and one reduction for the group (on AVX-512 a shuffle tree over
/// 16 keys at once). Eigen's GEMV for q K^T walks K [keys, hd] as a column-major hd x keys matrix,
/// which for small hd is mostly loop overhead (~6 GB/s at hd 16).
template <int HD, int N>
inline void key_dots(const Simd::V* qv, const float* q, const float* k, float* scores) {
  constexpr int L = Simd::kLanes, C = HD / L;
  Simd::V p[N];
  for (int i = 0; i < N; ++i) {
    const float* kr = k + std::size_t(i) * HD;
    p[i] = Simd::zero();
    for (int c = 0; c < C; ++c) p[i] = Simd::fma(Simd::load(kr + L * c), qv[c], p[i]);
  }
  Simd::template reduce<N>(p, scores);
  for (int i = 0; i < N; ++i)  // head dims that are not whole vectors (none of the paper's)
    for (int d = C * L; d < HD; ++d) scores[i] += q[d] * k[std::size_t(i) * HD + d];
}

/// One decode row over `keys` cached rows: scores, softmax, then P V accumulated as
/// broadcast(p_j) * v_j in vector registers, two independent chains over even and odd keys.
template <int HD>
void attend_decode_row(const float* q, const float* k, const float* v, int keys, float scale, float* scores,
                       float* out) {
  constexpr int L = Simd::kLanes, C = HD / L;
  Simd::V qv[C > 0 ? C : 1];
  for (int c = 0; c < C; ++c) qv[c] = Simd::load(q + L * c);
  int j = 0;
  for (; j + L <= keys; j += L) key_dots<HD, L>(qv, q, k + std::size_t(j) * HD, scores + j);
  for (; j < keys; ++j) key_dots<HD, 1>(qv, q, k + std::size_t(j) * HD, scores + j);
  Eigen::Map<Eigen::ArrayXf> s(scores, keys);
  const float max = s.maxCoeff();
  s = ((s - max) * scale).exp();
  const float inv = 1.0f / s.sum();
  Simd::V acc[2][C > 0 ? C : 1];
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = Simd::zero();
  float tail[HD] = {};  // the dims past the last whole vector
  const auto accumulate = [&](int u, int key) {
    const Simd::V pj = Simd::broadcast(scores[key]);
    const float* vr = v + std::size_t(key) * HD;
    for (int c = 0; c < C; ++c) acc[u][c] = Simd::fma(pj, Simd::load(vr + L * c), acc[u][c]);
    for (int d = C * L; d < HD; ++d) tail[d] += scores[key] * vr[d];
  };
  for (j = 0; j + 2 <= keys; j += 2) {
    accumulate(0, j);
    accumulate(1, j + 1);
  }
  if (j < keys) accumulate(0, j);
  const Simd::V norm = Simd::broadcast(inv);
  for (int c = 0; c < C; ++c) Simd::store(out + L * c, Simd::mul(Simd::add(acc[0][c], acc[1][c]), norm));
  for (int d = C * L; d < HD; ++d) out[d] = tail[d] * inv;
}

/// Appends the task's k and v rows to the cache, then attends. The head dim is a compile-time
/// value from the model, so a translation unit instantiates only the head dims its models use.
/// Tiles of several rows go through the one Eigen GEMM kernel the linear layers use.
template <int HD>
void attend(const AttentionTask& t) {
  for (int i = 0; i < t.count; ++i) {
    const float* src = t.qkv + i * t.qkv_stride;
    std::memcpy(t.k + std::size_t(t.begin + i) * HD, src + HD, HD * sizeof(float));
    std::memcpy(t.v + std::size_t(t.begin + i) * HD, src + 2 * HD, HD * sizeof(float));
  }
  for (int i0 = 0; i0 < t.count; i0 += kAttentionRowTile) {
    const int rows = std::min(kAttentionRowTile, t.count - i0);
    const int keys = t.begin + i0 + rows;  // what the tile's last row sees
    const float* q = t.qkv + i0 * t.qkv_stride;
    float* out = t.out + i0 * t.out_stride;
    float* scores = attention_scratch(std::size_t(rows) * keys);
    if (rows == 1) {  // decode: one pass over each of the K and V streams
      attend_decode_row<HD>(q, t.k, t.v, keys, t.scale, scores, out);
      continue;
    }
    const MatrixView<const float> k = contiguous_view<const float>(t.k, keys, HD), v = contiguous_view<const float>(t.v, keys, HD);
    const MatrixView<float> s = contiguous_view(scores, rows, keys);
    std::fill_n(scores, std::size_t(rows) * keys, 0.0f);
    gemm_accumulate<true>(MatrixView<const float>{q, rows, HD, t.qkv_stride}, k, s);
    for (int i = 0; i < rows; ++i) {
      const int visible = t.begin + i0 + i + 1;  // causal: the row's own cache index and before
      Eigen::Map<Eigen::ArrayXf> row(s.row(i), keys);
      const float max = row.head(visible).maxCoeff();
      row.head(visible) = ((row.head(visible) - max) * t.scale).exp();
      row.head(visible) *= 1.0f / row.head(visible).sum();
      row.tail(keys - visible).setZero();
    }
    const MatrixView<float> o{out, rows, HD, t.out_stride};
    for (int i = 0; i < rows; ++i) std::fill_n(o.row(i), HD, 0.0f);
    gemm_accumulate<false>(MatrixView<const float>(s), v, o);
  }
}

}  // namespace blockformer::eigen_detail

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
#include <type_traits>
#include <vector>

#include "blockformer/backends/eigen/gemm.hpp"
#include "blockformer/backends/eigen/kv_types.hpp"
#include "blockformer/backends/eigen/simd.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer::eigen_detail {

/// One (sequence, head): `count` new rows whose q, k, v sit in the fused qkv rows; row i has
/// cache index begin + i and sees keys [0, begin + i]. k and v point at the head's stream
/// ([capacity, head_dim] of the cache's element type T, contiguous), so a decode step reads each
/// stream front to back.
template <class T>
struct AttentionTask {
  const float* qkv;           // first new row, at this head's [q | k | v]
  std::ptrdiff_t qkv_stride;  // floats between rows
  T* k;                       // [capacity, head_dim]
  T* v;                       // [capacity, head_dim]
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

/// Per-thread scratch (scores, and a 16-bit cache's keys and values widened for the GEMMs); grows
/// to the largest call seen and never shrinks, so steady-state decode steps do not allocate.
inline float* attention_scratch(std::size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

/// Dot products of q with `N` consecutive key rows into scores[0, N), HD known at compile time:
/// HD / lanes vector FMAs per key and one reduction for the group (on AVX-512 a shuffle tree over
/// 16 keys at once). Eigen's GEMV for q K^T walks K [keys, hd] as a column-major hd x keys matrix,
/// which for small hd is mostly loop overhead (~6 GB/s at hd 16).
template <int HD, int N, class T>
inline void key_dots(const Simd::V* qv, const float* q, const T* k, float* scores) {
  constexpr int L = Simd::kLanes, C = HD / L;
  Simd::V p[N];
  for (int i = 0; i < N; ++i) {
    const T* kr = k + std::size_t(i) * HD;
    p[i] = Simd::zero();
    for (int c = 0; c < C; ++c) p[i] = Simd::fma(Simd::load(kr + L * c), qv[c], p[i]);
  }
  Simd::template reduce<N>(p, scores);
  for (int i = 0; i < N; ++i)  // head dims that are not whole vectors (none of the paper's)
    for (int d = C * L; d < HD; ++d) scores[i] += q[d] * widen(k[std::size_t(i) * HD + d]);
}

/// One decode row over `keys` cached rows: scores, softmax, then P V accumulated as
/// broadcast(p_j) * v_j in vector registers, two independent chains over even and odd keys.
template <int HD, class T>
void attend_decode_row(const float* q, const T* k, const T* v, int keys, float scale, float* scores, float* out) {
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
    const T* vr = v + std::size_t(key) * HD;
    for (int c = 0; c < C; ++c) acc[u][c] = Simd::fma(pj, Simd::load(vr + L * c), acc[u][c]);
    for (int d = C * L; d < HD; ++d) tail[d] += scores[key] * widen(vr[d]);
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

template <class T>
void widen_into(const T* src, std::size_t n, float* dst) {
  constexpr std::size_t L = Simd::kLanes;
  std::size_t i = 0;
  for (; i + L <= n; i += L) Simd::store(dst + i, Simd::load(src + i));
  for (; i < n; ++i) dst[i] = widen(src[i]);
}

/// Appends the task's k and v rows to the cache (rounded once to T), then attends. The head dim
/// is a compile-time value from the model, so a translation unit instantiates only the head dims
/// its models use. Tiles of several rows go through the one Eigen GEMM kernel the linear layers
/// use; from a 16-bit cache the keys a tile newly sees are first widened into per-thread fp32
/// scratch (each key once per task: 2 x head_dim conversions against the tiles' rows x head_dim
/// x 2 multiply-adds per key), so the GEMMs see exactly the rounded values a later decode step reads.
template <int HD, class T>
void attend(const AttentionTask<T>& t) {
  for (int i = 0; i < t.count; ++i) {
    const float* src = t.qkv + i * t.qkv_stride;
    T* k = t.k + std::size_t(t.begin + i) * HD;
    T* v = t.v + std::size_t(t.begin + i) * HD;
    for (int d = 0; d < HD; ++d) {
      k[d] = to_kv<T>(src[HD + d]);
      v[d] = to_kv<T>(src[2 * HD + d]);
    }
  }
  constexpr bool kWiden = !std::is_same_v<T, float>;
  const int total = t.begin + t.count;
  const std::size_t score_floats = std::size_t(std::min(kAttentionRowTile, t.count)) * total;
  float* scratch = attention_scratch(score_floats + (kWiden && t.count > 1 ? 2 * std::size_t(total) * HD : 0));
  float* const wide_k = scratch + score_floats;
  float* const wide_v = wide_k + std::size_t(total) * HD;
  int widened = 0;  // keys already in wide_k / wide_v
  for (int i0 = 0; i0 < t.count; i0 += kAttentionRowTile) {
    const int rows = std::min(kAttentionRowTile, t.count - i0);
    const int keys = t.begin + i0 + rows;  // what the tile's last row sees
    const float* q = t.qkv + i0 * t.qkv_stride;
    float* out = t.out + i0 * t.out_stride;
    float* scores = scratch;
    if (rows == 1) {  // decode: one pass over each of the K and V streams
      attend_decode_row<HD>(q, t.k, t.v, keys, t.scale, scores, out);
      continue;
    }
    const float* kf;
    const float* vf;
    if constexpr (kWiden) {
      widen_into(t.k + std::size_t(widened) * HD, std::size_t(keys - widened) * HD, wide_k + std::size_t(widened) * HD);
      widen_into(t.v + std::size_t(widened) * HD, std::size_t(keys - widened) * HD, wide_v + std::size_t(widened) * HD);
      widened = keys;
      kf = wide_k;
      vf = wide_v;
    } else {
      kf = t.k;
      vf = t.v;
    }
    const MatrixView<const float> k = contiguous_view(kf, keys, HD), v = contiguous_view(vf, keys, HD);
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

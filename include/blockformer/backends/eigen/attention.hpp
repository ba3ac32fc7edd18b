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

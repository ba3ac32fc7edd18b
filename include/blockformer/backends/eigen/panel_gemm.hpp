// SPDX-License-Identifier: Apache-2.0
#pragma once
// y (+)= x W^T for many rows of x (prefill), W [N, K] row-major in fp32 or bf16: an outer-product
// GEMM over W packed into panels.
//
// W's NR = 2 vectors of rows are transposed once per call into a K x NR panel (bf16 widened on the
// way, so its conversion is paid once for all rows of x); the micro-kernel keeps MR x 2 vector
// accumulators and per k loads the panel's two vectors and broadcasts one x value per row: 2 MR
// FMAs per 2 + MR loads, no horizontal reductions. Panels are packed a group at a time and x is
// walked in blocks of rows, both sized to stay in L2 while the group passes over each block.
//
// Why not Eigen's GEMM, which this replaces for these calls: on AMD EPYC Zen 4 (512-bit FMAs run
// as two 256-bit halves) Eigen's AVX-512 kernel ran SGEMM 2048^3 at 82-148 GFLOP/s on 2 threads
// against 136-195 for its AVX2 kernel, and vanilla_160's prefill at 527-810 tokens/s against
// 576-942; it also re-packs W into its own layout on every call (10% of a prefill, perf), and the
// bf16 path first widened W into a scratch copy for it. One Zen 4 thread, AVX-512, M 128-512 of
// the 3072 x 768 and 768 x 3072 layers: 86-104 GFLOP/s against Eigen's 57-70 (bench/NOTES.md,
// "Prefill GEMM").
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "blockformer/backends/eigen/simd.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer::eigen_detail {

/// Columns of y (rows of W) per panel: two vectors.
inline constexpr int kPanelColumns = 2 * Simd::kLanes;

/// Rows of x per micro-kernel: MR x 2 accumulators, two panel vectors and one broadcast in the
/// register file (AVX-512's 32: 12 -> 27 registers; AVX2's and SSE2's 16: 6 -> 15).
inline constexpr int kPanelRowBlock = Simd::kRegisters >= 32 ? 12 : 6;

/// Bytes of an x row block, and of the packed panels a group may hold: both stay in L2 (1 MiB on
/// Zen 4, 2 MiB on Sapphire Rapids) while the group's panels pass over the row blocks. The micro-
/// kernel runs over all of K: cutting K into 16 KiB panel slices that stay in L1 (GotoBLAS's
/// order) ran 5-12% slower at M 128-512 on Zen 4 (x is then read in 512-byte runs per row).
inline constexpr std::size_t kPanelXBlockBytes = 256 * 1024, kPanelGroupBytes = 512 * 1024;

#if defined(__AVX2__)
inline constexpr int kPackTile = 8;
inline __m256 pack_load(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 pack_load(const std::uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
/// out[i * stride + j] = rows[j][i] for an 8 x 8 tile (unpack, shuffle, then swap 128-bit halves).
template <class WT>
inline void pack_tile(const WT* const* rows, int k, float* out, std::size_t stride) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = pack_load(rows[i] + k);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}
#elif defined(__SSE2__)
inline constexpr int kPackTile = 4;
inline __m128 pack_load(const float* p) { return _mm_loadu_ps(p); }
inline __m128 pack_load(const std::uint16_t* p) {
  return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
/// out[i * stride + j] = rows[j][i] for a 4 x 4 tile.
template <class WT>
inline void pack_tile(const WT* const* rows, int k, float* out, std::size_t stride) {
  __m128 r0 = pack_load(rows[0] + k), r1 = pack_load(rows[1] + k), r2 = pack_load(rows[2] + k), r3 = pack_load(rows[3] + k);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(out, r0);
  _mm_storeu_ps(out + stride, r1);
  _mm_storeu_ps(out + 2 * stride, r2);
  _mm_storeu_ps(out + 3 * stride, r3);
}
#else
inline constexpr int kPackTile = 1;
template <class WT>
inline void pack_tile(const WT* const* rows, int k, float* out, std::size_t) {
  if constexpr (std::is_same_v<WT, float>) *out = rows[0][k];
  else *out = io::bf16_to_float(rows[0][k]);
}
#endif

/// Panel p of W's rows [p NR, p NR + NR), transposed: panel[k * NR + j] = W[p NR + j][k]; rows past
/// N are zero. By register transposes of kPackTile x kPackTile tiles: element by element, packing
/// took a quarter of a 128-row product's time (3072 x 768 fp32 on Zen 4, perf).
template <class WT>
inline void pack_panel(MatrixView<const WT> w, int first_row, float* panel) {
  constexpr int NR = kPanelColumns, T = kPackTile;
  static_assert(NR % T == 0);
  const int valid = std::min(NR, w.rows - first_row);
  const int K = w.cols, k_tiles = K / T * T;
  const auto element = [&](int j, int k) {
    if (j >= valid) return 0.0f;
    if constexpr (std::is_same_v<WT, float>) return w.row(first_row + j)[k];
    else return io::bf16_to_float(w.row(first_row + j)[k]);
  };
  for (int j0 = 0; j0 < NR; j0 += T) {
    if (j0 + T <= valid) {
      const WT* rows[T];
      for (int j = 0; j < T; ++j) rows[j] = w.row(first_row + j0 + j);
      for (int k = 0; k < k_tiles; k += T) pack_tile(rows, k, panel + std::size_t(k) * NR + j0, NR);
      for (int k = k_tiles; k < K; ++k)
        for (int j = j0; j < j0 + T; ++j) panel[std::size_t(k) * NR + j] = element(j, k);
    } else {  // the tile holding row N (rows past it are zero)
      for (int k = 0; k < K; ++k)
        for (int j = j0; j < j0 + T; ++j) panel[std::size_t(k) * NR + j] = element(j, k);
    }
  }
}

/// y[0:MR, 0:NR] (+)= x[0:MR, :] panel over all K (x rows at stride xs, y rows at stride ys).
/// Not inlined, so the K loop is compiled alone (as small_gemm_micro, whose inlined K loop GCC 12
/// compiled worse).
template <int MR>
[[gnu::noinline]] void panel_gemm_micro(const float* x, std::ptrdiff_t xs, const float* panel, int K, float* y,
                                        std::ptrdiff_t ys, bool accumulate) {
  using V = Simd::V;
  constexpr int L = Simd::kLanes, NR = kPanelColumns;
  V acc[MR][2];
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = Simd::zero();
  for (int k = 0; k < K; ++k) {
    V w0 = Simd::load(panel + std::size_t(k) * NR), w1 = Simd::load(panel + std::size_t(k) * NR + L);
    Simd::keep_in_register(w0);
    Simd::keep_in_register(w1);
    for (int m = 0; m < MR; ++m) {
      V xm = Simd::broadcast(x[m * xs + k]);
      Simd::keep_in_register(xm);
      acc[m][0] = Simd::fma(xm, w0, acc[m][0]);
      acc[m][1] = Simd::fma(xm, w1, acc[m][1]);
    }
  }
  for (int m = 0; m < MR; ++m) {
    float* out = y + m * ys;
    if (accumulate) {
      acc[m][0] = Simd::add(acc[m][0], Simd::load(out));
      acc[m][1] = Simd::add(acc[m][1], Simd::load(out + L));
    }
    Simd::store(out, acc[m][0]);
    Simd::store(out + L, acc[m][1]);
  }
}

/// tile[0:rows, 0:NR] += x[0:rows, :] panel, rows <= MR: the micro-kernel for the smallest of a
/// third, two thirds or all of MR that covers `rows`, so a block's last rows (M 64 leaves 4 past
/// five 12-row blocks on AVX-512) do not pay for a whole zero-padded block.
inline void panel_gemm_tail(const float* x, std::ptrdiff_t xs, const float* panel, int K, float* tile, int rows) {
  constexpr int MR = kPanelRowBlock, NR = kPanelColumns;
  if (rows <= MR / 3) return panel_gemm_micro<MR / 3>(x, xs, panel, K, tile, NR, true);
  if (rows <= 2 * MR / 3) return panel_gemm_micro<2 * MR / 3>(x, xs, panel, K, tile, NR, true);
  panel_gemm_micro<MR>(x, xs, panel, K, tile, NR, true);
}

/// y (+)= x W^T for x [M, K], W [N, K] (row-major, fp32 or bf16 bits), y [M, N]. Results differ
/// from any other fp32 order only in summation order.
template <class WT>
void panel_gemm(MatrixView<const float> x, MatrixView<const WT> w, MatrixView<float> y, bool accumulate) {
  constexpr int MR = kPanelRowBlock, NR = kPanelColumns;
  const int K = x.cols, panels = (w.rows + NR - 1) / NR;
  const std::size_t panel_floats = std::size_t(K) * NR;
  const int group_panels = std::max<int>(1, int(kPanelGroupBytes / (sizeof(float) * std::max<std::size_t>(panel_floats, 1))));
  const int block_rows = std::max<int>(MR, int(kPanelXBlockBytes / (sizeof(float) * std::max(K, 1))) / MR * MR);
  // Per-thread buffers that only grow, so repeated prefills do not allocate.
  thread_local std::vector<float> packed, x_tail, tile;
  const int packed_panels = std::min(group_panels, panels);
  if (packed.size() < panel_floats * packed_panels) packed.resize(panel_floats * packed_panels);
  if (x_tail.size() < std::size_t(MR) * K) x_tail.resize(std::size_t(MR) * K);
  if (tile.size() < std::size_t(MR) * NR) tile.resize(std::size_t(MR) * NR);

  for (int p0 = 0; p0 < panels; p0 += group_panels) {
    const int p1 = std::min(panels, p0 + group_panels);
    for (int p = p0; p < p1; ++p) pack_panel(w, p * NR, packed.data() + panel_floats * (p - p0));
    for (int m0 = 0; m0 < x.rows; m0 += block_rows) {
      const int m1 = std::min(x.rows, m0 + block_rows);
      const int full_end = m0 + (m1 - m0) / MR * MR, rest = m1 - full_end;
      if (rest > 0) {  // the block's last rows, zero-padded to a whole micro-kernel block
        std::fill(x_tail.begin(), x_tail.begin() + std::ptrdiff_t(MR) * K, 0.0f);
        for (int r = 0; r < rest; ++r) std::memcpy(x_tail.data() + std::size_t(r) * K, x.row(full_end + r), sizeof(float) * K);
      }
      for (int p = p0; p < p1; ++p) {
        const float* panel = packed.data() + panel_floats * (p - p0);
        const int n = p * NR, valid = std::min(NR, w.rows - n);
        const auto run = [&](const float* xb, std::ptrdiff_t xs, int m, int rows) {
          if (rows == MR && valid == NR) return panel_gemm_micro<MR>(xb, xs, panel, K, y.row(m) + n, y.stride, accumulate);
          // A partial block: computed into a scratch tile seeded with y, the valid part stored.
          for (int r = 0; r < rows; ++r)
            for (int j = 0; j < valid; ++j) tile[std::size_t(r) * NR + j] = accumulate ? y.row(m + r)[n + j] : 0.0f;
          panel_gemm_tail(xb, xs, panel, K, tile.data(), rows);
          for (int r = 0; r < rows; ++r)
            for (int j = 0; j < valid; ++j) y.row(m + r)[n + j] = tile[std::size_t(r) * NR + j];
        };
        for (int m = m0; m < full_end; m += MR) run(x.row(m), x.stride, m, MR);
        if (rest > 0) run(x_tail.data(), K, full_end, rest);
      }
    }
  }
}

}  // namespace blockformer::eigen_detail

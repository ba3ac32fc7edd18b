// SPDX-License-Identifier: Apache-2.0
#pragma once
// y (+)= x W^T for few rows of x (decode steps), W [N, K] row-major in fp32 or bf16.
//
// A decode step multiplies a handful of activation rows by every weight matrix: the product is a
// stream over W (memory-bound at batch < ~8) with little reuse, and GEMM packing of W (what Eigen's
// kernel does) costs a full extra pass over it. This kernel streams W once, unpacked: each
// micro-kernel takes NR rows of W and MR rows of x and keeps MR x NR vector accumulators of dot
// products along K (x rows stay in L1/L2 across the W stream), then reduces them horizontally once.
// bf16 weights are widened on the fly (a bf16 is the upper half of a float: zero-extend, shift left
// 16), so a bf16 model streams half the bytes; activations and accumulation stay fp32.
//
// Vector code through Simd (simd.hpp); the result differs from Eigen's GEMM only in summation order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "blockformer/backends/eigen/simd.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer::eigen_detail {

inline float widen(std::uint16_t bf16) { return io::bf16_to_float(bf16); }

/// Rows of x up to which linear layers take this kernel (decode steps); larger calls go to Eigen's
/// packed GEMM, which reuses each packed W panel across many rows.
inline constexpr int kSmallGemmMaxRows = 32;

/// Rows of x per micro-kernel, against 4 rows of W. Its registers: MR x 4 accumulators, MR x
/// vectors and one W vector. AVX-512's 32 hold MR 4 (21); on AVX2's 16, MR 4 spills accumulators
/// every step, and MR 2 (11 registers, with the micro-kernel below not inlined) ran 1.4-1.9x faster
/// on Zen 3 (bench/NOTES.md, "Small-M GEMM on AVX2").
inline constexpr int kSmallGemmRowBlock = Simd::kRegisters >= 32 ? 4 : 2;

/// y[0:MR, 0:NR] (+)= x[0:MR, k] . w[0:NR, k] over all K. Accumulator i = n * MR + m.
/// `next` (or null): a row of the next W block, prefetched along with this one's k so the next block
/// streams in from memory while this one computes (hardware prefetchers follow demand misses only,
/// and the later x blocks of a W block miss nothing). Each x block of a W block prefetches one row,
/// which spreads the misses over the block's time instead of queueing them all at once.
/// Not inlined: inlined into small_gemm_block (beside its tail variants), GCC 12's code for the K
/// loop ran at 25-31 GFLOP/s on Zen 3 instead of 36-41 (M 16, K 768 and 3072; bench/NOTES.md).
template <int MR, int NR, bool Prefetch, class WT>
[[gnu::noinline]] void small_gemm_micro(const float* x, std::ptrdiff_t xs, const WT* const* w, int K,
                                        float* y, std::ptrdiff_t ys, bool accumulate, const WT* next) {
  using V = Simd::V;
  constexpr int L = Simd::kLanes;
  V acc[MR * NR];
  for (int i = 0; i < MR * NR; ++i) acc[i] = Simd::zero();
  const WT* wr[NR];
  for (int n = 0; n < NR; ++n) wr[n] = w[n];
  int k = 0;
  for (; k + L <= K; k += L) {
    if constexpr (Prefetch) __builtin_prefetch(next + k, 0, 3);  // a line per step (fp32; bf16: each twice)
    V xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = Simd::load(x + m * xs + k);
    for (int n = 0; n < NR; ++n) {
      const V wv = Simd::load(wr[n] + k);
      for (int m = 0; m < MR; ++m) acc[n * MR + m] = Simd::fma(xv[m], wv, acc[n * MR + m]);
    }
  }
  float sums[MR * NR];
  Simd::template reduce<MR * NR>(acc, sums);
  for (; k < K; ++k)  // K tail (no model width needs it; tiny test shapes do)
    for (int n = 0; n < NR; ++n)
      for (int m = 0; m < MR; ++m) sums[n * MR + m] += x[m * xs + k] * widen(wr[n][k]);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      float& out = y[m * ys + n];
      out = accumulate ? out + sums[n * MR + m] : sums[n * MR + m];
    }
}

/// MR rows of x from row m against the NR W rows `wr` at output column n; `valid` of them are real.
template <int MR, int NR, class WT>
inline void small_gemm_block(MatrixView<const float> x, const WT* const* wr, int m, int n, int valid,
                             MatrixView<float> y, bool accumulate, const WT* next) {
  if (valid == NR) {
    if (next) small_gemm_micro<MR, NR, true>(x.row(m), x.stride, wr, x.cols, y.row(m) + n, y.stride, accumulate, next);
    else small_gemm_micro<MR, NR, false>(x.row(m), x.stride, wr, x.cols, y.row(m) + n, y.stride, accumulate, next);
    return;
  }
  float tail[MR * NR];  // partial W block: compute into scratch, store the valid columns
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < valid; ++j) tail[r * NR + j] = y.row(m + r)[n + j];
  small_gemm_micro<MR, NR, false>(x.row(m), x.stride, wr, x.cols, tail, NR, accumulate, next);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < valid; ++j) y.row(m + r)[n + j] = tail[r * NR + j];
}

/// NR rows of W from row n against every row of x, MR x rows at a time while the W rows are in
/// cache (rows past N repeat the last row; their results are not stored).
template <int MR, int NR, class WT>
inline void small_gemm_rows(MatrixView<const float> x, MatrixView<const WT> w, int n, MatrixView<float> y,
                            bool accumulate) {
  const int valid = std::min(NR, w.rows - n);
  const WT* wr[NR];
  for (int j = 0; j < NR; ++j) wr[j] = w.row(n + std::min(j, valid - 1));
  // x block j prefetches row j of the next W block (when there is a full one); rows no x block
  // covers (fewer x blocks than NR) are left to the demand stream.
  const int next_rows = w.rows - n >= 2 * NR ? NR : 0;
  int m = 0, j = 0;
  for (; m + MR <= x.rows; m += MR, ++j)
    small_gemm_block<MR, NR>(x, wr, m, n, valid, y, accumulate, j < next_rows ? w.row(n + NR + j) : nullptr);
  const WT* next = j < next_rows ? w.row(n + NR + j) : nullptr;
  const int rest = x.rows - m;  // fewer than MR rows
  if constexpr (MR == 4) {
    if (rest == 3) return small_gemm_block<3, NR>(x, wr, m, n, valid, y, accumulate, next);
    if (rest == 2) return small_gemm_block<2, NR>(x, wr, m, n, valid, y, accumulate, next);
  }
  if (rest == 1) small_gemm_block<1, NR>(x, wr, m, n, valid, y, accumulate, next);
}

/// y (+)= x W^T for x [M, K], W [N, K] (row-major, fp32 or bf16 bits), y [M, N]; M small.
template <class WT>
inline void small_gemm(MatrixView<const float> x, MatrixView<const WT> w, MatrixView<float> y, bool accumulate) {
  if (x.rows == 1) {
    for (int n = 0; n < w.rows; n += 8) small_gemm_rows<1, 8>(x, w, n, y, accumulate);
  } else {
    for (int n = 0; n < w.rows; n += 4) small_gemm_rows<kSmallGemmRowBlock, 4>(x, w, n, y, accumulate);
  }
}

}  // namespace blockformer::eigen_detail

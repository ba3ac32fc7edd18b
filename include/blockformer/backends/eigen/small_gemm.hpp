// SPDX-License-Identifier: Apache-2.0
#pragma once
// y (+)= x W^T for few rows of x (decode steps), W [N, K] row-major in fp32 or bf16.
//
// A decode step multiplies a handful of activation rows by every weight matrix: the product is a
// stream over W (memory-bound at batch < ~8) with little reuse, and GEMM packing of W (what Eigen's
// kernel does) costs a full extra pass over it. This kernel streams W once, unpacked: each
// micro-kernel takes NR rows of W and MR rows of x and keeps MR x NR vector accumulators of dot
// products along K (x rows stay in L1/L2 across the W stream), then reduces them horizontally once.
// One row of x (batch 1) takes a GEMV instead that reads W as several sequential row streams.
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

/// Rows of x up to which linear layers take this kernel (decode steps); larger calls go to
/// panel_gemm, which reuses each packed W panel across many rows. This kernel re-reads (and for
/// bf16 re-widens) each W vector once per MR rows of x, panel_gemm packs it once per call. One
/// Intel Xeon (Emerald Rapids) thread, 3072 x 768, 768 x 3072 and 50304 x 768: at M 32 panel_gemm
/// ran 0.95-1.03x of this kernel (fp32) and 1.14-1.33x (bf16) in the AVX-512 build, 1.02-1.16x and
/// 1.21-1.47x in the AVX2 one; at M 16 this kernel won by 1.1-1.7x, except AVX2 bf16 (panel
/// 1.08-1.15x) (medians of 3 alternated rounds; bench/NOTES.md, "Small-M / panel cut-over").
inline constexpr int kSmallGemmMaxRows = 16;

/// Rows of x per micro-kernel, against 4 rows of W. Its registers: MR x 4 accumulators, MR x
/// vectors and one W vector. AVX-512's 32 hold MR 4 (21); on AVX2's 16, MR 4 spills accumulators
/// every step, and MR 2 (11 registers, with the micro-kernel below not inlined) ran 1.4-1.9x faster
/// on Zen 3 (bench/NOTES.md, "Small-M GEMM on AVX2").
inline constexpr int kSmallGemmRowBlock = Simd::kRegisters >= 32 ? 4 : 2;

/// y[0:MR, 0:NR] (+)= x[0:MR, k] . w[0:NR, k] over all K. Accumulator i = n * MR + m.
/// `next`: P rows of the next W block, prefetched along with this one's k so the next block streams
/// in from memory while this one computes (hardware prefetchers follow demand misses only, and the
/// later x blocks of a W block miss nothing). With several x blocks each prefetches one row (P 1),
/// which spreads the misses over the block's time instead of queueing them all at once; a lone x
/// block (M <= MR, bandwidth-bound) prefetches all NR (P = NR): a 4-row product with the LM head
/// (50304 x 768, from memory, one thread, AMD EPYC Zen 4, AVX-512) read bf16 W at 6.0-6.9 GB/s with one row
/// prefetched and 8.3-9.4 with all four.
/// Not inlined: inlined into small_gemm_block (beside its tail variants), GCC 12's code for the K
/// loop ran at 25-31 GFLOP/s on Zen 3 instead of 36-41 (M 16, K 768 and 3072; bench/NOTES.md).
template <int MR, int NR, int P, class WT>
[[gnu::noinline]] void small_gemm_micro(const float* x, std::ptrdiff_t xs, const WT* const* w, int K,
                                        float* y, std::ptrdiff_t ys, bool accumulate, const WT* const* next) {
  using V = Simd::V;
  constexpr int L = Simd::kLanes;
  V acc[MR * NR];
  for (int i = 0; i < MR * NR; ++i) acc[i] = Simd::zero();
  const WT* wr[NR];
  for (int n = 0; n < NR; ++n) wr[n] = w[n];
  int k = 0;
  for (; k + L <= K; k += L) {
    for (int p = 0; p < P; ++p) __builtin_prefetch(next[p] + k, 0, 3);  // a line per row and step (fp32; bf16: each twice)
    V xv[MR];
    for (int m = 0; m < MR; ++m) {
      xv[m] = Simd::load(x + m * xs + k);
      Simd::keep_in_register(xv[m]);
    }
    for (int n = 0; n < NR; ++n) {
      V wv = Simd::load(wr[n] + k);
      Simd::keep_in_register(wv);
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
/// `prefetch` rows of the next W block from `next` (0, 1 or NR; see small_gemm_micro).
template <int MR, int NR, class WT>
inline void small_gemm_block(MatrixView<const float> x, const WT* const* wr, int m, int n, int valid,
                             MatrixView<float> y, bool accumulate, const WT* const* next, int prefetch) {
  if (valid == NR) {
    const auto micro = prefetch == NR ? small_gemm_micro<MR, NR, NR, WT>
                       : prefetch == 1 ? small_gemm_micro<MR, NR, 1, WT>
                                       : small_gemm_micro<MR, NR, 0, WT>;
    micro(x.row(m), x.stride, wr, x.cols, y.row(m) + n, y.stride, accumulate, next);
    return;
  }
  float tail[MR * NR];  // partial W block: compute into scratch, store the valid columns
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < valid; ++j) tail[r * NR + j] = y.row(m + r)[n + j];
  small_gemm_micro<MR, NR, 0>(x.row(m), x.stride, wr, x.cols, tail, NR, accumulate, next);
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
  // The next W block's rows (when there is a full one): a lone x block prefetches them all, else
  // x block j prefetches row j; rows no x block covers (fewer x blocks than NR, from more than one)
  // are left to the demand stream.
  const bool has_next = w.rows - n >= 2 * NR;
  const WT* next[NR];
  for (int r = 0; r < NR; ++r) next[r] = has_next ? w.row(n + NR + r) : nullptr;
  const bool lone = x.rows <= MR;
  const auto prefetch = [&](int j) { return !has_next ? 0 : lone ? NR : j < NR ? 1 : 0; };
  const auto next_of = [&](int j) { return next + (lone || j >= NR ? 0 : j); };
  int m = 0, j = 0;
  for (; m + MR <= x.rows; m += MR, ++j)
    small_gemm_block<MR, NR>(x, wr, m, n, valid, y, accumulate, next_of(j), prefetch(j));
  const int rest = x.rows - m;  // fewer than MR rows
  if constexpr (MR == 4) {
    if (rest == 3) return small_gemm_block<3, NR>(x, wr, m, n, valid, y, accumulate, next_of(j), prefetch(j));
    if (rest == 2) return small_gemm_block<2, NR>(x, wr, m, n, valid, y, accumulate, next_of(j), prefetch(j));
  }
  if (rest == 1) small_gemm_block<1, NR>(x, wr, m, n, valid, y, accumulate, next_of(j), prefetch(j));
}

/// y[n] (+)= x . w[n] for one row x (the bandwidth-bound decode step at batch 1). W's rows are
/// cut into S equal parts read side by side, row i of every part in one K loop, so each thread
/// keeps S sequential streams in flight: a single stream is held back by how far the hardware
/// prefetcher runs ahead of it. The rows' sums are reduced kGroup at a time. One Intel Xeon
/// (Emerald Rapids) thread, AVX-512, the bf16 LM head (50304 x 768, 77 MB, from memory): one
/// stream 6.9-8.6 GFLOP/s, 4 streams 9.5-10.6, 8 streams 10.6-17.4 (medians of 3 alternated
/// rounds, ranges over 2-5 such runs; 8 streams 1.5-2.0x one stream in each run that had both);
/// vanilla_160 batch-1 decode, 2 threads: bf16 48-53 -> 58-70 tok/s, fp32 31-34 -> 29-43
/// (bench/NOTES.md, "Batch-1 GEMV streams"). S 8 needs 16 accumulators, more than AVX2 has
/// registers: there S is 4 (-march=haswell on the same machine: LM head bf16 7.2 -> 10.6, fp32
/// 4.5 -> 5.6 GFLOP/s).
/// (Before it, on Zen 4, rows one after another had beaten 8 rows of one block read at once with
/// one prefetched: 8.7-10.3 -> 20-23.5 GB/s in bf16.)
template <class WT>
[[gnu::noinline]] void small_gemv(const float* x, MatrixView<const WT> w, float* y, bool accumulate) {
  using V = Simd::V;
  constexpr int L = Simd::kLanes, S = Simd::kRegisters >= 32 ? 8 : 4, kGroup = 8, G = kGroup / S;
  const int K = w.cols, N = w.rows, part = (N + S - 1) / S;
  // Row i of part s, or -1 past the end of W (its slot then reads row 0 and is not stored).
  const auto row_of = [&](int s, int i) { return i < part && s * part + i < N ? s * part + i : -1; };
  for (int i0 = 0; i0 < part; i0 += G) {
    V row_sum[kGroup];
    float tail[kGroup] = {};
    for (int g = 0; g < G; ++g) {
      const WT* wr[S];
      for (int s = 0; s < S; ++s) wr[s] = w.row(std::max(row_of(s, i0 + g), 0));
      V acc[S][2];
      for (int s = 0; s < S; ++s) acc[s][0] = acc[s][1] = Simd::zero();
      int k = 0;
      for (; k + 2 * L <= K; k += 2 * L) {
        const V x0 = Simd::load(x + k), x1 = Simd::load(x + k + L);
        for (int s = 0; s < S; ++s) {
          acc[s][0] = Simd::fma(x0, Simd::load(wr[s] + k), acc[s][0]);
          acc[s][1] = Simd::fma(x1, Simd::load(wr[s] + k + L), acc[s][1]);
        }
      }
      for (int s = 0; s < S; ++s) {
        row_sum[g * S + s] = Simd::add(acc[s][0], acc[s][1]);
        for (int kk = k; kk < K; ++kk) tail[g * S + s] += x[kk] * widen(wr[s][kk]);
      }
    }
    float sums[kGroup];
    Simd::template reduce<kGroup>(row_sum, sums);
    for (int g = 0; g < G; ++g)
      for (int s = 0; s < S; ++s) {
        const int n = row_of(s, i0 + g);
        if (n < 0) continue;
        const float v = sums[g * S + s] + tail[g * S + s];
        y[n] = accumulate ? y[n] + v : v;
      }
  }
}

/// y (+)= x W^T for x [M, K], W [N, K] (row-major, fp32 or bf16 bits), y [M, N]; M small.
template <class WT>
inline void small_gemm(MatrixView<const float> x, MatrixView<const WT> w, MatrixView<float> y, bool accumulate) {
  if (x.rows == 1) {
    small_gemv(x.row(0), w, y.row(0), accumulate);
  } else {
    for (int n = 0; n < w.rows; n += 4) small_gemm_rows<kSmallGemmRowBlock, 4>(x, w, n, y, accumulate);
  }
}

}  // namespace blockformer::eigen_detail

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
// Vector code for AVX-512 (16 lanes, a shuffle-tree reduction of 16 accumulators), AVX2 + FMA
// (8 lanes) and SSE2 (4 lanes, the x86-64 baseline, so a build without -march still uses it);
// other targets use a scalar fallback. The result differs from Eigen's GEMM only in summation order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#include "blockformer/io/half.hpp"
#include "blockformer/tensor.hpp"

namespace blockformer::eigen_detail {

inline float widen(float v) { return v; }
inline float widen(std::uint16_t bf16) { return io::bf16_to_float(bf16); }

#if defined(__AVX512F__)
#define BLOCKFORMER_SMALL_GEMM_SIMD 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's _mm512_shuffle_f32x4 reads an _mm512_undefined_ps() operand and warns about it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
struct Simd {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const std::uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  /// The horizontal sums of 16 vectors as one vector, by a shuffle tree (15 adds, 30 shuffles
  /// instead of 16 separate reductions): element 4j + t of the result is the sum of a[4t + j].
  static V reduce16(const V* a) {
    V c[8], e[4], g[2];
    for (int i = 0; i < 8; ++i)  // 128-bit lanes [A A B B]: 8 partials per vector
      c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; ++i)  // lanes [A B C D]: 4 partials each
      e[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; ++i)  // lane j: [A_j A_j A_{4+j} A_{4+j}] (e[2i] and e[2i+1])
      g[i] = _mm512_add_ps(_mm512_shuffle_ps(e[2 * i], e[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(e[2 * i], e[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(g[0], g[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(g[0], g[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  /// sums[i] = horizontal sum of acc[i] for i < N <= 16.
  template <int N>
  static void reduce(const V* acc, float* sums) {
    V a[16];
    for (int i = 0; i < 16; ++i) a[i] = i < N ? acc[i] : _mm512_setzero_ps();
    alignas(64) float out[16];
    _mm512_store_ps(out, reduce16(a));
    for (int i = 0; i < N; ++i) sums[i] = out[4 * (i % 4) + i / 4];
  }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#define BLOCKFORMER_SMALL_GEMM_SIMD 1
struct Simd {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const std::uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  template <int N>
  static void reduce(const V* acc, float* sums) {
    for (int i = 0; i < N; ++i) {
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
      sums[i] = _mm_cvtss_f32(s);
    }
  }
};
#elif defined(__SSE2__)
#define BLOCKFORMER_SMALL_GEMM_SIMD 1
struct Simd {
  using V = __m128;
  static constexpr int kLanes = 4;
  static V zero() { return _mm_setzero_ps(); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V load(const std::uint16_t* p) {  // interleaving zeros below each bf16 is the shift by 16
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
  }
  static V fma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  template <int N>
  static void reduce(const V* acc, float* sums) {
    for (int i = 0; i < N; ++i) {
      __m128 s = _mm_add_ps(acc[i], _mm_movehl_ps(acc[i], acc[i]));
      s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
      sums[i] = _mm_cvtss_f32(s);
    }
  }
};
#else
#define BLOCKFORMER_SMALL_GEMM_SIMD 0
struct Simd {  // portable: one lane; the compiler may vectorize what it can
  using V = float;
  static constexpr int kLanes = 1;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static V load(const std::uint16_t* p) { return io::bf16_to_float(*p); }
  static V fma(V a, V b, V c) { return a * b + c; }
  template <int N>
  static void reduce(const V* acc, float* sums) {
    for (int i = 0; i < N; ++i) sums[i] = acc[i];
  }
};
#endif

/// Rows of x up to which linear layers take this kernel (decode steps); larger calls go to Eigen's
/// packed GEMM, which reuses each packed W panel across many rows.
inline constexpr int kSmallGemmMaxRows = 32;

/// y[0:MR, 0:NR] (+)= x[0:MR, k] . w[0:NR, k] over all K. Accumulator i = n * MR + m.
/// `next` (or null): a row of the next W block, prefetched along with this one's k so the next block
/// streams in from memory while this one computes (hardware prefetchers follow demand misses only,
/// and the later x blocks of a W block miss nothing). Each x block of a W block prefetches one row,
/// which spreads the misses over the block's time instead of queueing them all at once.
template <int MR, int NR, bool Prefetch, class WT>
inline void small_gemm_micro(const float* x, std::ptrdiff_t xs, const WT* const* w, int K, float* y,
                             std::ptrdiff_t ys, bool accumulate, const WT* next) {
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
  if constexpr (MR == 4) {
    switch (x.rows - m) {
      case 3: return small_gemm_block<3, NR>(x, wr, m, n, valid, y, accumulate, next);
      case 2: return small_gemm_block<2, NR>(x, wr, m, n, valid, y, accumulate, next);
      case 1: return small_gemm_block<1, NR>(x, wr, m, n, valid, y, accumulate, next);
      default: return;
    }
  }
}

/// y (+)= x W^T for x [M, K], W [N, K] (row-major, fp32 or bf16 bits), y [M, N]; M small.
template <class WT>
inline void small_gemm(MatrixView<const float> x, MatrixView<const WT> w, MatrixView<float> y, bool accumulate) {
  if (x.rows == 1) {
    for (int n = 0; n < w.rows; n += 8) small_gemm_rows<1, 8>(x, w, n, y, accumulate);
  } else {
    for (int n = 0; n < w.rows; n += 4) small_gemm_rows<4, 4>(x, w, n, y, accumulate);
  }
}

}  // namespace blockformer::eigen_detail

// SPDX-License-Identifier: Apache-2.0
#pragma once
// The vector ISA the CPU kernels (small_gemm, decode attention) are written against, chosen at
// compile time: AVX-512 (16 lanes, a shuffle-tree reduction of 16 accumulators), AVX2 + FMA
// (8 lanes) and SSE2 (4 lanes, the x86-64 baseline, so a build without -march still uses it);
// other targets get a scalar fallback. BLOCKFORMER_EIGEN_SIMD says whether a vector ISA was found.
// Loads widen to fp32 from float, bf16 weights (std::uint16_t) and the KV cache's Bf16 and F16.
// keep_in_register(v) pins a loaded vector to a register: GCC 12 otherwise folds a load that
// several FMAs share into each of them as a memory operand, so a kernel that loads each x and W
// vector once issues 1.7-3x the loads (objdump of the fp32 small-M K loop: 24 zmm loads per 16
// FMAs on AVX-512, 10 per 8 on AVX2; pinned, fp32 M 16-32 went 32-44 -> 56-66 GFLOP/s on one AMD
// EPYC Zen 4 core with AVX-512, 42-50 -> 53-68 with AVX2).
#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#include "blockformer/backends/eigen/kv_types.hpp"
#include "blockformer/io/half.hpp"

namespace blockformer::eigen_detail {

#if defined(__AVX512F__)
#define BLOCKFORMER_EIGEN_SIMD 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's _mm512_shuffle_f32x4 reads an _mm512_undefined_ps() operand and warns about it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
struct Simd {
  using V = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;  // vector registers, which bound a kernel's accumulators
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V broadcast(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V load(const std::uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static V load(const Bf16* p) { return load(reinterpret_cast<const std::uint16_t*>(p)); }
  static V load(const F16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void keep_in_register(V& v) { asm("" : "+v"(v)); }
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
#define BLOCKFORMER_EIGEN_SIMD 1
struct Simd {
  using V = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;  // vector registers, which bound a kernel's accumulators
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V broadcast(float v) { return _mm256_set1_ps(v); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V load(const std::uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static V load(const Bf16* p) { return load(reinterpret_cast<const std::uint16_t*>(p)); }
  static V load(const F16* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
#if defined(__F16C__)
    return _mm256_cvtph_ps(h);
#else  // -mavx2 -mfma without -mf16c: the SSE2 variant's rebiasing, 8 lanes wide
    const __m256i x = _mm256_cvtepu16_epi32(h);
    const __m256i magnitude = _mm256_slli_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fff)), 13);
    const __m256 scaled = _mm256_mul_ps(_mm256_castsi256_ps(magnitude), _mm256_castsi256_ps(_mm256_set1_epi32(0x77800000)));
    const __m256i inf_nan = _mm256_and_si256(_mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x0f7fffff)),
                                             _mm256_set1_epi32(0x7f800000));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x8000)), 16);
    return _mm256_or_ps(scaled, _mm256_castsi256_ps(_mm256_or_si256(inf_nan, sign)));
#endif
  }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void keep_in_register(V& v) { asm("" : "+x"(v)); }
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
#define BLOCKFORMER_EIGEN_SIMD 1
struct Simd {
  using V = __m128;
  static constexpr int kLanes = 4;
  static constexpr int kRegisters = 16;  // vector registers, which bound a kernel's accumulators
  static V zero() { return _mm_setzero_ps(); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V broadcast(float v) { return _mm_set1_ps(v); }
  static void store(float* p, V v) { _mm_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm_add_ps(a, b); }
  static V mul(V a, V b) { return _mm_mul_ps(a, b); }
  static V load(const std::uint16_t* p) {  // interleaving zeros below each bf16 is the shift by 16
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
  }
  static V load(const Bf16* p) { return load(reinterpret_cast<const std::uint16_t*>(p)); }
  static V load(const F16* p) {
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
#if defined(__F16C__)
    return _mm_cvtph_ps(h);
#else
    // Without F16C: the half's exponent and mantissa shifted into a float's place read as
    // 2^-112 times the value (subnormal halves land on float subnormals, exactly), so one multiply
    // by 2^112 rebiases every finite half; exponent 31 (inf, NaN) is then forced to 255.
    const __m128i x = _mm_unpacklo_epi16(h, _mm_setzero_si128());
    const __m128i magnitude = _mm_slli_epi32(_mm_and_si128(x, _mm_set1_epi32(0x7fff)), 13);
    const __m128 scaled = _mm_mul_ps(_mm_castsi128_ps(magnitude), _mm_castsi128_ps(_mm_set1_epi32(0x77800000)));
    const __m128i inf_nan = _mm_and_si128(_mm_cmpgt_epi32(magnitude, _mm_set1_epi32(0x0f7fffff)), _mm_set1_epi32(0x7f800000));
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(x, _mm_set1_epi32(0x8000)), 16);
    return _mm_or_ps(scaled, _mm_castsi128_ps(_mm_or_si128(inf_nan, sign)));
#endif
  }
  static V fma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static void keep_in_register(V& v) { asm("" : "+x"(v)); }
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
#define BLOCKFORMER_EIGEN_SIMD 0
struct Simd {  // portable: one lane; the compiler may vectorize what it can
  using V = float;
  static constexpr int kLanes = 1;
  static constexpr int kRegisters = 16;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static V broadcast(float v) { return v; }
  static void store(float* p, V v) { *p = v; }
  static V add(V a, V b) { return a + b; }
  static V mul(V a, V b) { return a * b; }
  static V load(const std::uint16_t* p) { return io::bf16_to_float(*p); }
  static V load(const Bf16* p) { return widen(*p); }
  static V load(const F16* p) { return widen(*p); }
  static V fma(V a, V b, V c) { return a * b + c; }
  static void keep_in_register(V&) {}
  template <int N>
  static void reduce(const V* acc, float* sums) {
    for (int i = 0; i < N; ++i) sums[i] = acc[i];
  }
};
#endif

}  // namespace blockformer::eigen_detail

// SPDX-License-Identifier: Apache-2.0
// The Eigen backend's ops against plain double-precision references, in one source compiled once
// per vector ISA (tests/kernels/CMakeLists.txt: the x86-64 baseline SSE2, AVX2 + FMA + F16C,
// AVX-512), so every Simd path the library ships runs its tests wherever CI's CPU has that ISA;
// the main test binary is built without -march and so covers the baseline only. Shapes cover the
// micro-kernels' row and column tails and attention's row tiles.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "blockformer/eigen.hpp"

using namespace blockformer;

namespace {

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

float stored_weight(float w, bool bf16) { return bf16 ? io::bf16_to_float(io::float_to_bf16(w)) : w; }

template <class B>
void check_linear(int m, int n, int k, Epilogue epilogue) {
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  std::mt19937 rng(std::uint32_t(m * 1000003 + n * 1009 + k));
  const std::vector<float> w = random_floats(std::size_t(n) * k, rng, 0.1f), bias = random_floats(n, rng),
                           x = random_floats(std::size_t(m) * k, rng);
  const std::vector<float> before = random_floats(std::size_t(m) * n, rng);
  std::vector<float> y = before;
  const typename B::Linear linear = B::make_linear(w, bias, n, k);
  B::linear(contiguous_view(x.data(), m, k), linear, contiguous_view(y.data(), m, n), epilogue);
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < n; ++c) {
      double sum = bias[c], magnitude = std::abs(bias[c]);
      for (int i = 0; i < k; ++i) {
        const double term = double(x[std::size_t(r) * k + i]) * stored_weight(w[std::size_t(c) * k + i], B::kBf16);
        sum += term;
        magnitude += std::abs(term);
      }
      double expected = sum;
      if (epilogue == Epilogue::kAccumulate) expected += before[std::size_t(r) * n + c];
      if (epilogue == Epilogue::kGelu) expected = 0.5 * sum * (1.0 + std::erf(sum / std::sqrt(2.0)));
      // fp32 accumulation in any order: within a few ulps of the sum of magnitudes.
      REQUIRE(std::abs(y[std::size_t(r) * n + c] - expected) <= 4e-7 * (magnitude + std::abs(expected)) * std::sqrt(k) + 1e-6);
    }
}

template <class T>
float stored_kv(float v) {
  if constexpr (std::is_same_v<T, Bf16>) return io::bf16_to_float(io::float_to_bf16(v));
  else if constexpr (std::is_same_v<T, F16>) return io::f16_to_float(io::float_to_f16(v));
  else return v;
}

/// Two calls on one cache: a prefill of sequence 0 (rows across a row tile) beside a short one of
/// sequence 1, then one decode row each, against softmax attention in doubles over the stored K/V.
template <int HD, class KV>
void check_attention() {
  using B = BasicEigenBackend<float, KV>;
  CAPTURE(HD);
  constexpr int heads = 2, capacity = 96;
  const AttentionShape shape{heads, HD, 0};
  typename B::KvCache cache(1, 2, heads, capacity, HD);
  std::mt19937 rng(HD);
  std::vector<std::vector<float>> keys(2 * heads), values(2 * heads);  // per (sequence, head): rows as stored
  const auto call = [&](std::vector<int> counts, std::vector<int> begins) {
    RaggedBatch batch;
    int rows = 0;
    for (std::size_t s = 0; s < counts.size(); ++s) {
      batch.add_sequence(int(s), begins[s], counts[s]);
      for (int i = 0; i < counts[s]; ++i) batch.positions.push_back(begins[s] + i);
      rows += counts[s];
    }
    const std::vector<float> qkv = random_floats(std::size_t(rows) * 3 * heads * HD, rng);
    std::vector<float> out(std::size_t(rows) * heads * HD);
    B::template attention<HD>(contiguous_view(qkv.data(), rows, 3 * heads * HD), cache, 0, batch,
                              contiguous_view(out.data(), rows, heads * HD), shape);
    for (std::size_t s = 0; s < counts.size(); ++s)
      for (int i = 0; i < counts[s]; ++i) {
        const int row = batch.row_begin[s] + i;
        for (int h = 0; h < heads; ++h) {
          const float* q = qkv.data() + std::size_t(row) * 3 * heads * HD + h * 3 * HD;
          auto& ks = keys[s * heads + h];
          auto& vs = values[s * heads + h];
          for (int d = 0; d < HD; ++d) ks.push_back(stored_kv<KV>(q[HD + d]));
          for (int d = 0; d < HD; ++d) vs.push_back(stored_kv<KV>(q[2 * HD + d]));
          const int visible = begins[s] + i + 1;
          std::vector<double> p(visible);
          double max = -INFINITY, total = 0;
          for (int j = 0; j < visible; ++j) {
            double dot = 0;
            for (int d = 0; d < HD; ++d) dot += double(q[d]) * ks[std::size_t(j) * HD + d];
            p[j] = dot / std::sqrt(double(HD));
            max = std::max(max, p[j]);
          }
          for (double& e : p) total += e = std::exp(e - max);
          for (int d = 0; d < HD; ++d) {
            double expected = 0;
            for (int j = 0; j < visible; ++j) expected += p[j] / total * vs[std::size_t(j) * HD + d];
            CAPTURE(s);
            CAPTURE(i);
            REQUIRE(out[std::size_t(row) * heads * HD + h * HD + d] == doctest::Approx(expected).epsilon(2e-5).scale(1.0));
          }
        }
      }
  };
  call({70, 5}, {0, 0});  // sequence 0 crosses a 64-row tile; scores against 70 keys
  call({1, 1}, {70, 5});  // decode rows: one pass over each stream
  call({3, 1}, {71, 6});  // a short multi-row call after cached rows
}

template <class KV, std::size_t... I>
void check_attention_all_head_dims(std::index_sequence<I...>) {
  (check_attention<kCompiledHeadDims[I], KV>(), ...);
}

}  // namespace

TEST_CASE("kernels: this binary runs the vector ISA it was built for") {
  CHECK(eigen_detail::Simd::kLanes == BLOCKFORMER_EXPECTED_LANES);
}

TEST_CASE("kernels: linear equals the double-precision product (fp32 and bf16 weights, every epilogue)") {
  // Rows: the small-M kernel's row tails (up to 16), then panel_gemm's last row blocks, whose rest
  // past whole 12-row (AVX-512) or 6-row (AVX2, SSE2) blocks takes the third, two-thirds or full
  // micro-kernel: rests 1, 4 / 5, 8 / 9, 11 on AVX-512 (37, 40 / 17, 20 / 33, 35) and 1, 2 / 3, 4 / 5
  // on 6 rows (19, 26 / 33, 40 / 17, 35).
  for (int m : {1, 2, 3, 5, 16, 17, 19, 20, 26, 33, 35, 37, 40})
    for (int n : {1, 4, 7, 9, 36})  // W-row tails of the 4- and 8-row blocks
      for (int k : {1, 8, 13, 64, 200}) {  // K tails of every vector width
        check_linear<EigenBackend>(m, n, k, Epilogue::kStore);
        check_linear<EigenBf16Backend>(m, n, k, Epilogue::kStore);
      }
  check_linear<EigenBackend>(16, 36, 64, Epilogue::kGelu);
  check_linear<EigenBackend>(16, 36, 64, Epilogue::kAccumulate);
  check_linear<EigenBf16Backend>(3, 36, 64, Epilogue::kAccumulate);
  check_linear<EigenBackend>(40, 36, 64, Epilogue::kAccumulate);
  check_linear<EigenBf16Backend>(40, 36, 64, Epilogue::kGelu);
  // panel_gemm with several x row blocks (256 KiB of x: 324 rows at K 200 on every ISA, so 330
  // rows make a second, short block) and several packed panel groups (512 KiB: 640 columns at
  // K 200 on AVX2 and AVX-512, 648 on SSE2, so 700 make two), in fp32 and bf16.
  check_linear<EigenBackend>(330, 700, 200, Epilogue::kStore);
  check_linear<EigenBf16Backend>(330, 700, 200, Epilogue::kAccumulate);
}

TEST_CASE("kernels: attention equals softmax attention in doubles (every compiled head dim and KV type)") {
  constexpr auto dims = std::make_index_sequence<kCompiledHeadDims.size()>();
  check_attention_all_head_dims<float>(dims);
  check_attention_all_head_dims<Bf16>(dims);
  check_attention_all_head_dims<F16>(dims);
}

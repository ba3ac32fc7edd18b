// SPDX-License-Identifier: Apache-2.0
// Linear-layer micro-benchmarks on the Eigen backend: y = x W^T for the decode shapes of
// vanilla_160 / block_main_b4_85 (width 768, ffn 3072, LM head 50304 x 768), one thread's view
// (the ops run on the caller alone outside a model call, which makes a thread pool current).
//   linear/eigen/<weights>/<kernel>/rows:M/out:N/in:K
//     weights  f32 | bf16        storage of W (bf16: EigenBf16Backend)
//     kernel   backend           EigenBackend::linear as the model calls it (small-M kernel for
//                                M <= 32, panel_gemm above)
//              eigen_gemm        (f32 only) the previous path: Eigen's GEMM with thread-local
//                                packing (GEMV for one row), for an in-binary A/B
// Counters: FLOP/s (2 M N K) and bytes/s (W once + x + y).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "blockformer/eigen.hpp"

namespace {

namespace bf = blockformer;

std::vector<float> random_vector(std::size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

template <class B>
void BM_linear(benchmark::State& state, bool reference) {
  const int m = int(state.range(0)), n = int(state.range(1)), k = int(state.range(2));
  std::mt19937 rng(7);
  const auto w = random_vector(std::size_t(n) * k, 0.03f, rng);
  const auto lin = B::make_linear(w, {}, n, k);
  const auto xs = random_vector(std::size_t(m) * k, 1.0f, rng);
  std::vector<float> ys(std::size_t(m) * n);
  const auto x = bf::contiguous_view(xs.data(), m, k);
  const auto y = bf::contiguous_view(ys.data(), m, n);
  for (auto _ : state) {
    if constexpr (std::is_same_v<B, bf::EigenBackend>) {
      if (reference) {
        bf::EigenBackend::map(y).setZero();
        bf::eigen_detail::gemm_accumulate<true>(x, lin.weight.view(), y);
        benchmark::ClobberMemory();
        continue;
      }
    }
    B::linear(x, lin, y, bf::Epilogue::kStore);
    benchmark::ClobberMemory();
  }
  const double weight_bytes = double(n) * k * (B::kBf16 ? 2 : 4);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["bytes/s"] = benchmark::Counter(weight_bytes + 4.0 * m * (k + n),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
}

void register_all() {
  const auto shapes = [](benchmark::internal::Benchmark* b) {
    b->ArgNames({"rows", "out", "in"});
    for (long m : {1, 4, 16, 32, 64, 128, 512})
      for (auto [n, k] : {std::pair<long, long>{2304, 768}, {3072, 768}, {768, 3072}, {50304, 768}})
        b->Args({m, n, k});
    b->Unit(benchmark::kMicrosecond)->UseRealTime();
  };
  shapes(benchmark::RegisterBenchmark("linear/eigen/f32/backend",
                                      [](benchmark::State& s) { BM_linear<bf::EigenBackend>(s, false); }));
  shapes(benchmark::RegisterBenchmark("linear/eigen/f32/eigen_gemm",
                                      [](benchmark::State& s) { BM_linear<bf::EigenBackend>(s, true); }));
  shapes(benchmark::RegisterBenchmark("linear/eigen/bf16/backend",
                                      [](benchmark::State& s) { BM_linear<bf::EigenBf16Backend>(s, false); }));
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

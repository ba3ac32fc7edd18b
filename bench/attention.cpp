// SPDX-License-Identifier: Apache-2.0
// Attention micro-benchmarks on the Eigen backend, one family per variant of the paper:
//   attention/vanilla_decode/eigen/batch:B/context:T/head_dim:d   one new token over a T-token KV cache
//   attention/global_block/eigen/decode/...                        one new block over T/L cached blocks
//   attention/global_block/eigen/prefill/...                       all T/L blocks of a prompt at once
//   attention/local_token/eigen/batch:B/head_dim:d                 one whole block of the token decoder:
//                                                                  R prefix rows, then L-1 one-token steps
//   attention/decode_kv/eigen/kv:E/batch:B/context:T/head_dim:d/threads:N
//                                                                  vanilla decode with a KV cache of E
//                                                                  (f32, bf16, f16) on N threads
//   memory/stream_read/threads:N                                   a 512 MiB array summed: the bandwidth
//                                                                  the decode_kv bytes/s is measured against
// Model width is fixed at 768 (vanilla_160, block_main_b4_85), so heads = 768 / head_dim.
// Counters: FLOP/s counts the visible (query, key) pairs only (QK^T and PV, 4 * head_dim each);
// bytes/s counts the minimum traffic: qkv rows in, K and V of every visible key read once, output
// rows out (at the cache's element size). The default set is small; BLOCKFORMER_BENCH_SWEEP=1
// registers the full grid.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "blockformer/eigen.hpp"

namespace {

using blockformer::AttentionShape;
using blockformer::EigenBackend;
using blockformer::RaggedBatch;
namespace eigen_detail = blockformer::eigen_detail;

constexpr int kWidth = 768;
constexpr int kBlockLength = 4;   // L of block_main_*
constexpr int kPrefixLength = 2;  // R of block_main_*

void fill_random(float* data, std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) data[i] = dist(rng);
}

/// A KV cache with `filled` random rows per (slot, head) and random qkv rows.
template <class B = EigenBackend>
struct Fixture {
  Fixture(int batch, int capacity, int filled, int rows, int head_dim)
      : shape{kWidth / head_dim, head_dim, 0},
        cache(1, batch, shape.heads, capacity, head_dim),
        qkv(rows, 3 * kWidth),
        out(rows, kWidth) {
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    using E = typename B::KvElement;
    for (int s = 0; s < batch; ++s)
      for (int h = 0; h < shape.heads; ++h)
        for (std::size_t i = 0; i < std::size_t(filled) * head_dim; ++i) {
          cache.k(0, s, h)[i] = eigen_detail::to_kv<E>(dist(rng));
          cache.v(0, s, h)[i] = eigen_detail::to_kv<E>(dist(rng));
        }
    fill_random(qkv.view().data, std::size_t(rows) * 3 * kWidth, rng);
  }
  AttentionShape shape;
  typename B::KvCache cache;
  typename B::Buffer qkv, out;
};

/// The backend's attention at the fixture's head dim, chosen at run time (the model path picks
/// it at compile time).
template <class B>
void attend(Fixture<B>& f, const RaggedBatch& rb, int rows) {
  blockformer::dispatch_head_dim(f.shape.head_dim, [&](auto hd) {
    B::template attention<decltype(hd)::value>(f.qkv.view().rows_slice(0, rows), f.cache, 0, rb,
                                               f.out.view().rows_slice(0, rows), f.shape);
  });
}

/// Sets FLOP/s and bytes/s from per-iteration counts.
void set_counters(benchmark::State& state, double flops, double bytes) {
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
}

/// Decode step: every sequence appends one row at index keys-1 and attends over keys rows, on
/// `threads` threads of the library's pool.
template <class B = EigenBackend>
void decode_step(benchmark::State& state, int batch, int keys, int head_dim, int threads = 1) {
  Fixture<B> f(batch, keys, keys, batch, head_dim);
  RaggedBatch rb;
  rb.clear();
  for (int s = 0; s < batch; ++s) {
    rb.add_sequence(s, keys - 1, 1);
    rb.positions.push_back(keys - 1);
  }
  blockformer::ThreadPool pool(threads);
  const blockformer::detail::PoolScope scope(pool);
  for (auto _ : state) {
    attend(f, rb, rb.rows());
    benchmark::ClobberMemory();
  }
  const double pairs = double(batch) * keys * f.shape.heads;
  set_counters(state, 4.0 * pairs * head_dim,
               2.0 * pairs * head_dim * sizeof(typename B::KvElement) + 4.0 * batch * 4 * kWidth);
}

template <class B>
void BM_decode_kv(benchmark::State& state) {
  decode_step<B>(state, int(state.range(0)), int(state.range(1)), int(state.range(2)), int(state.range(3)));
}

/// Sums a 512 MiB array (far past the last-level cache) in parts spread over the pool, four
/// independent vector sums per part so the loads, not the adds, set the pace.
void BM_stream_read(benchmark::State& state) {
  constexpr std::size_t kFloats = std::size_t(1) << 27;
  constexpr int kParts = 256;
  using Simd = eigen_detail::Simd;
  constexpr std::size_t L = Simd::kLanes, kPart = kFloats / kParts;
  const std::unique_ptr<float[]> a(new float[kFloats]);
  std::fill_n(a.get(), kFloats, 1.0f);
  std::vector<float> partial(kParts);
  blockformer::ThreadPool pool(int(state.range(0)));
  const blockformer::detail::PoolScope scope(pool);
  for (auto _ : state) {
    blockformer::parallel_for(kParts, [&](int part) {
      const float* p = a.get() + kPart * part;
      Simd::V s[4] = {Simd::zero(), Simd::zero(), Simd::zero(), Simd::zero()};
      for (std::size_t i = 0; i < kPart; i += 4 * L)
        for (std::size_t u = 0; u < 4; ++u) s[u] = Simd::add(s[u], Simd::load(p + i + u * L));
      float sums[1];
      const Simd::V total = Simd::add(Simd::add(s[0], s[1]), Simd::add(s[2], s[3]));
      Simd::template reduce<1>(&total, sums);
      partial[part] = sums[0];
    });
    benchmark::DoNotOptimize(partial.data());
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] = benchmark::Counter(double(kFloats) * sizeof(float), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
}

void BM_vanilla_decode(benchmark::State& state) {
  decode_step(state, int(state.range(0)), int(state.range(1)), int(state.range(2)));
}

void BM_global_block_decode(benchmark::State& state) {
  decode_step(state, int(state.range(0)), int(state.range(1)) / kBlockLength, int(state.range(2)));
}

void BM_global_block_prefill(benchmark::State& state) {
  const int batch = int(state.range(0)), blocks = int(state.range(1)) / kBlockLength;
  const int head_dim = int(state.range(2));
  Fixture<> f(batch, blocks, 0, batch * blocks, head_dim);
  RaggedBatch rb;
  rb.clear();
  for (int s = 0; s < batch; ++s) {
    rb.add_sequence(s, 0, blocks);
    for (int i = 0; i < blocks; ++i) rb.positions.push_back(i);
  }
  for (auto _ : state) {
    attend(f, rb, rb.rows());
    benchmark::ClobberMemory();
  }
  const double pairs = double(batch) * f.shape.heads * blocks * (blocks + 1) / 2.0;
  const double rows = double(batch) * blocks;
  set_counters(state, 4.0 * pairs * head_dim,
               4.0 * (rows * 4 * kWidth + 2.0 * rows * kWidth /*K, V read back once*/));
}

/// One block of the token decoder: the R prefix rows as one call, then L-1 one-token steps.
void BM_local_token(benchmark::State& state) {
  const int batch = int(state.range(0)), head_dim = int(state.range(1));
  constexpr int kLocal = kPrefixLength + kBlockLength - 1;
  Fixture<> f(batch, kLocal, 0, batch * kPrefixLength, head_dim);
  std::vector<RaggedBatch> steps(kBlockLength);
  for (int s = 0; s < batch; ++s) {
    steps[0].add_sequence(s, 0, kPrefixLength);
    for (int p = 0; p < kPrefixLength; ++p) steps[0].positions.push_back(p);
  }
  for (int k = 1; k < kBlockLength; ++k)
    for (int s = 0; s < batch; ++s) {
      steps[k].add_sequence(s, kPrefixLength + k - 1, 1);
      steps[k].positions.push_back(kPrefixLength + k - 1);
    }
  for (auto _ : state) {
    for (int k = 0; k < kBlockLength; ++k) {
      attend(f, steps[k], steps[k].rows());
    }
    benchmark::ClobberMemory();
  }
  double pairs = kPrefixLength * (kPrefixLength + 1) / 2.0;  // prefix step
  for (int k = 1; k < kBlockLength; ++k) pairs += kPrefixLength + k;
  pairs *= double(batch) * f.shape.heads;
  const double rows = double(batch) * (kPrefixLength + kBlockLength - 1);
  set_counters(state, 4.0 * pairs * head_dim, 4.0 * (2.0 * pairs * head_dim + rows * 4 * kWidth));
}

const std::vector<long> kHeadDims(blockformer::kCompiledHeadDims.begin(), blockformer::kCompiledHeadDims.end());

void register_all() {
  const bool sweep = std::getenv("BLOCKFORMER_BENCH_SWEEP") != nullptr;
  const std::vector<long> batches = sweep ? std::vector<long>{1, 4, 16, 64} : std::vector<long>{1, 16};
  const std::vector<long> contexts = sweep ? std::vector<long>{128, 512, 2048} : std::vector<long>{128, 2048};
  const auto grid = [&](benchmark::internal::Benchmark* b) {
    b->ArgNames({"batch", "context", "head_dim"})->ArgsProduct({batches, contexts, kHeadDims});
    b->Unit(benchmark::kMicrosecond)->UseRealTime();
  };
  grid(benchmark::RegisterBenchmark("attention/vanilla_decode/eigen", BM_vanilla_decode));
  grid(benchmark::RegisterBenchmark("attention/global_block/eigen/decode", BM_global_block_decode));
  grid(benchmark::RegisterBenchmark("attention/global_block/eigen/prefill", BM_global_block_prefill));
  // Decode attention against the stream rate (issue 11): the long contexts and head dims of the goal.
  const auto kv_grid = [&](benchmark::internal::Benchmark* b) {
    b->ArgNames({"batch", "context", "head_dim", "threads"})->ArgsProduct({{16}, {1024, 2048}, {64, 128}, {1, 2}});
    b->Unit(benchmark::kMicrosecond)->UseRealTime();
  };
  kv_grid(benchmark::RegisterBenchmark("attention/decode_kv/eigen/kv:f32", BM_decode_kv<EigenBackend>));
  kv_grid(benchmark::RegisterBenchmark("attention/decode_kv/eigen/kv:bf16", BM_decode_kv<blockformer::EigenBf16KvBackend>));
  kv_grid(benchmark::RegisterBenchmark("attention/decode_kv/eigen/kv:f16", BM_decode_kv<blockformer::EigenF16KvBackend>));
  benchmark::RegisterBenchmark("memory/stream_read", BM_stream_read)
      ->ArgNames({"threads"})
      ->DenseRange(1, 2)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("attention/local_token/eigen", BM_local_token)
      ->ArgNames({"batch", "head_dim"})
      ->ArgsProduct({sweep ? std::vector<long>{1, 4, 16, 64, 256} : std::vector<long>{1, 16, 256}, kHeadDims})
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
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

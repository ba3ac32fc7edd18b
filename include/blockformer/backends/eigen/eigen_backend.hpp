// SPDX-License-Identifier: Apache-2.0
#pragma once
// The CPU backend. Linear layers: decode steps (up to kSmallGemmMaxRows rows) stream W once
// through the register-blocked small_gemm kernel; larger calls (prefill) take panel_gemm's outer
// products over W packed into panels (Eigen's GEMM where no vector ISA was compiled in); threads
// split the output columns and apply bias / GELU / residual on their slice while it is in cache.
// Attention: per (sequence, head) over a contiguous KV stream (attention.hpp), threaded over
// (sequence, head). Threads come from the calling model call's pool
// (thread_pool.hpp: GenerateOptions::threads); outside a model call every op runs serially.
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/backends/eigen/attention.hpp"
#include "blockformer/backends/eigen/gemm.hpp"
#include "blockformer/backends/eigen/kv_types.hpp"
#include "blockformer/backends/eigen/panel_gemm.hpp"
#include "blockformer/backends/eigen/small_gemm.hpp"
#include "blockformer/backends/op_checks.hpp"
#include "blockformer/error.hpp"
#include "blockformer/rotary.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/thread_pool.hpp"

namespace blockformer {

/// The Eigen backend with linear and embedding weights stored as `WeightType`: float (exact), or
/// std::uint16_t holding bfloat16 bits (weights rounded once at load, half the bytes to stream;
/// kernels widen them on the fly and compute in fp32), and the KV cache's K and V rows stored as
/// `KvType`: float (exact), Bf16 or F16 (each row rounded once when it is appended, half the bytes
/// a long-context decode step reads; attention widens them on the fly). Activations, norms and
/// biases are fp32 either way.
template <class WeightType, class KvType = float>
struct BasicEigenBackend {
  static_assert(std::is_same_v<WeightType, float> || std::is_same_v<WeightType, std::uint16_t>,
                "weights are float or bfloat16 bits (std::uint16_t)");
  static_assert(eigen_detail::kKvElement<KvType>, "the KV cache holds float, Bf16 or F16");
  static constexpr bool kBf16 = std::is_same_v<WeightType, std::uint16_t>;
  using KvElement = KvType;

  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using Map = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

  static ConstMap map(MatrixView<const float> v) {
    return ConstMap(v.data, v.rows, v.cols, Eigen::OuterStride<>(v.stride));
  }
  static Map map(MatrixView<float> v) {
    return Map(v.data, v.rows, v.cols, Eigen::OuterStride<>(v.stride));
  }

  /// Dense row-major host storage: activations (float) and weights (float or bf16 bits).
  template <class T>
  class Dense {
   public:
    Dense() = default;
    Dense(int rows, int cols) : rows_(rows), cols_(cols), data_(std::size_t(rows) * cols) {}
    MatrixView<T> view() { return contiguous_view(data_.data(), rows_, cols_); }
    MatrixView<const T> view() const { return contiguous_view(data_.data(), rows_, cols_); }
    int rows() const { return rows_; }
    int cols() const { return cols_; }

   private:
    int rows_ = 0, cols_ = 0;
    std::vector<T> data_;
  };
  using Buffer = Dense<float>;
  using Weights = Dense<WeightType>;

  struct Linear {
    Weights weight;  // [out, in]
    std::vector<float> bias;  // [out] or empty
  };
  struct Norm {
    std::vector<float> weight, bias;  // [width]
  };
  struct Embedding {
    Weights table;  // [rows, width]
  };

  /// Host floats to weight storage: a copy, or bf16 rounding (to nearest even) once at load.
  static void store_weights(const std::vector<float>& from, WeightType* to) {
    if constexpr (kBf16) {
      for (std::size_t i = 0; i < from.size(); ++i) to[i] = io::float_to_bf16(from[i]);
    } else {
      std::copy(from.begin(), from.end(), to);
    }
  }

  /// The rotary_angles() table in host memory.
  class RotaryTable {
   public:
    RotaryTable() = default;
    RotaryTable(int rotary_dims, float base, int max_positions)
        : half_(rotary_dims / 2) {
      RotaryAngles angles = rotary_angles(rotary_dims, base, max_positions);
      cos_ = std::move(angles.cos);
      sin_ = std::move(angles.sin);
    }
    int max_positions() const { return half_ ? int(cos_.size() / half_) : 0; }
    int half() const { return half_; }
    const float* cos(int position) const { return cos_.data() + std::size_t(position) * half_; }
    const float* sin(int position) const { return sin_.data() + std::size_t(position) * half_; }

   private:
    int half_ = 0;
    std::vector<float> cos_, sin_;  // [max_positions, rotary_dims / 2]
  };

  /// K and V streams of KvType: for each (layer, slot, head) `capacity` rows of head_dim,
  /// contiguous so a decode step reads each sequence's cache front to back.
  class KvCache {
   public:
    KvCache() = default;
    KvCache(int layers, int slots, int heads, int capacity, int head_dim)
        : layers_(layers), slots_(slots), heads_(heads), capacity_(capacity), head_dim_(head_dim),
          k_(std::size_t(layers) * slots * heads * capacity * head_dim), v_(k_.size()) {}
    int layers() const { return layers_; }
    int slots() const { return slots_; }
    int heads() const { return heads_; }
    int capacity() const { return capacity_; }
    int head_dim() const { return head_dim_; }
    std::size_t bytes() const { return 2 * k_.size() * sizeof(KvType); }
    KvType* k(int layer, int slot, int head) { return k_.data() + offset(layer, slot, head); }
    KvType* v(int layer, int slot, int head) { return v_.data() + offset(layer, slot, head); }

   private:
    std::size_t offset(int layer, int slot, int head) const {
      return ((std::size_t(layer) * slots_ + slot) * heads_ + head) * capacity_ * head_dim_;
    }
    int layers_ = 0, slots_ = 0, heads_ = 0, capacity_ = 0, head_dim_ = 0;
    std::vector<KvType> k_, v_;
  };

  static Linear make_linear(std::vector<float> weight, std::vector<float> bias, int out, int in) {
    Linear l{Weights(out, in), std::move(bias)};
    store_weights(weight, l.weight.view().data);
    return l;
  }
  static Norm make_norm(std::vector<float> weight, std::vector<float> bias) {
    return Norm{std::move(weight), std::move(bias)};
  }
  static Embedding make_embedding(std::vector<float> table, int rows, int width) {
    Embedding e{Weights(rows, width)};
    store_weights(table, e.table.view().data);
    return e;
  }

  /// Threads for a call doing about `work` multiply-adds: small calls stay on one thread, where
  /// handing tasks to a worker (about a microsecond with it polling, tens when it must be woken or
  /// shares its core with another process) would cost more than the work. 1M multiply-adds is
  /// ~50 us on one Zen 3 core; at 64K and 256K the tiny models decoded 2-8% slower on two threads
  /// than on one (bench/NOTES.md, "Threads (issue 11)").
  static constexpr double kMinThreadedWork = 1024.0 * 1024;
  static int threads_for(double work) { return work < kMinThreadedWork ? 1 : current_threads(); }

  /// Splits rows [0, rows) into a few tasks per thread (a descheduled worker then holds back
  /// only its one task) and calls fn(r) for each row, threaded when `work` pays for it.
  template <class Fn>
  static void for_rows(int rows, double work, Fn&& fn) {
    const int threads = threads_for(work);
    if (threads == 1) {
      for (int r = 0; r < rows; ++r) fn(r);
      return;
    }
    const int tasks = std::min(rows, kTasksPerThread * threads);
    parallel_for(tasks, [&](int task) {
      for (int r = int(std::int64_t(rows) * task / tasks); r < int(std::int64_t(rows) * (task + 1) / tasks); ++r) fn(r);
    });
  }
  static constexpr int kTasksPerThread = 4;

  static void linear(MatrixView<const float> x, const Linear& w, MatrixView<float> y,
                     Epilogue epilogue) {
    if constexpr (op_checks::kEnabled) op_checks::linear(x, w.weight.rows(), w.weight.cols(), y, "EigenBackend::linear");
    const int out_cols = y.cols;
    const int threads = threads_for(double(x.rows) * x.cols * out_cols);
    if (threads == 1) {
      linear_slice(x, w, y, epilogue, 0, out_cols);
      return;
    }
    // Each task owns a slice of output columns (weight rows): it streams its part of W once and
    // finishes the slice (bias, GELU) while the slice is still in its cache.
    constexpr int kAlign = 16;  // one AVX-512 register of floats
    const int tasks = kTasksPerThread * threads;
    const int per = (out_cols + tasks * kAlign - 1) / (tasks * kAlign) * kAlign;
    parallel_for((out_cols + per - 1) / per, [&](int task) {
      const int c0 = task * per;
      linear_slice(x, w, y, epilogue, c0, std::min(per, out_cols - c0));
    });
  }

  /// Output columns [c0, c0 + count) of linear().
  static void linear_slice(MatrixView<const float> x, const Linear& w, MatrixView<float> y,
                           Epilogue epilogue, int c0, int count) {
    auto out = map(y.cols_slice(c0, count));
    const auto weight = w.weight.view().rows_slice(c0, count);
    const bool accumulate = epilogue == Epilogue::kAccumulate;
    if (x.rows <= eigen_detail::kSmallGemmMaxRows && (kBf16 || BLOCKFORMER_EIGEN_SIMD)) {
      // Few rows (decode): stream W once, unpacked, with register-blocked dot products.
      eigen_detail::small_gemm(x, weight, y.cols_slice(c0, count), accumulate);
    } else if constexpr (BLOCKFORMER_EIGEN_SIMD) {
      // Many rows (prefill): W packed into panels (bf16 widened once per call), outer products.
      eigen_detail::panel_gemm(x, weight, y.cols_slice(c0, count), accumulate);
    } else {
      if (!accumulate) out.setZero();
      if constexpr (kBf16) {
        // Many rows without a vector ISA: widen W a panel at a time into per-thread fp32 scratch,
        // then Eigen's packed GEMM; the widening is paid once per panel for all rows.
        constexpr int kPanel = 256;
        thread_local std::vector<float> scratch;
        if (scratch.size() < std::size_t(kPanel) * weight.cols) scratch.resize(std::size_t(kPanel) * weight.cols);
        for (int r0 = 0; r0 < count; r0 += kPanel) {
          const int rows = std::min(kPanel, count - r0);
          for (int r = 0; r < rows; ++r) {
            const std::uint16_t* src = weight.row(r0 + r);
            float* dst = scratch.data() + std::size_t(r) * weight.cols;
            for (int k = 0; k < weight.cols; ++k) dst[k] = io::bf16_to_float(src[k]);
          }
          eigen_detail::gemm_accumulate<true>(x, contiguous_view<const float>(scratch.data(), rows, weight.cols),
                                        y.cols_slice(c0 + r0, rows));
        }
      } else {
        eigen_detail::gemm_accumulate<true>(x, weight, y.cols_slice(c0, count));
      }
    }
    if (!w.bias.empty()) {
      out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(w.bias.data() + c0, count);
    }
    if (epilogue == Epilogue::kGelu) {
      for (int r = 0; r < y.rows; ++r) {
        auto a = Eigen::Map<Eigen::ArrayXf>(y.row(r) + c0, count);
        a = 0.5f * a * (1.0f + (a * float(std::numbers::sqrt2 / 2)).erf());
      }
    }
  }

  static void layer_norm(MatrixView<const float> x, const Norm& n, float eps, MatrixView<float> y) {
    if constexpr (op_checks::kEnabled) op_checks::layer_norm(x, n.weight.size(), y, "EigenBackend::layer_norm");
    const int width = x.cols;
    const Eigen::Map<const Eigen::ArrayXf> weight(n.weight.data(), width), bias(n.bias.data(), width);
    for_rows(x.rows, double(x.rows) * width * 8, [&](int r) {
      const Eigen::Map<const Eigen::ArrayXf> in(x.row(r), width);
      const float mean = in.sum() / float(width);
      const float var = (in - mean).square().sum() / float(width);
      const float inv = 1.0f / std::sqrt(var + eps);
      Eigen::Map<Eigen::ArrayXf>(y.row(r), width) = (in - mean) * inv * weight + bias;
    });
  }

  /// NeoX rotary on the first rotary_dims of q and k in each head: rotate_half over halves.
  static void rotary(MatrixView<float> qkv, const RaggedBatch& batch, const RotaryTable& table,
                     AttentionShape shape) {
    const int half = shape.rotary_dims / 2;
    if constexpr (op_checks::kEnabled)
      op_checks::rotary(qkv, batch, shape, table.half(), table.max_positions(), "EigenBackend::rotary");
    if (half == 0) return;
    for_rows(qkv.rows, double(qkv.rows) * shape.heads * half * 4, [&](int r) {
      const int p = batch.positions[r];
      const float* cos = table.cos(p);
      const float* sin = table.sin(p);
      float* row = qkv.row(r);
      for (int h = 0; h < shape.heads; ++h) {
        for (int part = 0; part < 2; ++part) {  // q, then k
          float* x = row + std::size_t(h) * 3 * shape.head_dim + part * shape.head_dim;
          for (int i = 0; i < half; ++i) {
            const float a = x[i], b = x[i + half];
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = b * cos[i] + a * sin[i];
          }
        }
      }
    });
  }

  template <int HeadDim>
  static void attention(MatrixView<const float> qkv, KvCache& cache, int layer,
                        const RaggedBatch& batch, MatrixView<float> y, AttentionShape shape) {
    if constexpr (op_checks::kEnabled)
      op_checks::attention_call(qkv, y, batch, shape, HeadDim, cache, layer, "EigenBackend::attention");
    constexpr int hd = HeadDim;
    const int heads = shape.heads, sequences = batch.sequences();
    const float scale = 1.0f / std::sqrt(float(hd));
    double work = 0;  // multiply-adds, to decide whether threads pay off
    for (int s = 0; s < sequences; ++s) {
      const int count = batch.row_begin[s + 1] - batch.row_begin[s];
      work += 2.0 * count * (batch.cache_begin[s] + count) * hd * heads;
    }
    // One task per (sequence, head), claimed one at a time (their lengths differ): tasks write
    // disjoint cache streams and output columns.
    const auto attend_one = [&](int task) {
      const int s = task / heads, h = task % heads;
      const int first = batch.row_begin[s], slot = batch.cache_slot[s];
      const eigen_detail::AttentionTask<KvType> t{qkv.row(first) + std::size_t(h) * 3 * hd, qkv.stride,
                                          cache.k(layer, slot, h), cache.v(layer, slot, h),
                                          y.row(first) + std::size_t(h) * hd, y.stride,
                                          batch.row_begin[s + 1] - first, batch.cache_begin[s], scale};
      eigen_detail::attend<HeadDim>(t);
    };
    if (threads_for(work) == 1) {
      for (int task = 0; task < sequences * heads; ++task) attend_one(task);
    } else {
      parallel_for(sequences * heads, attend_one);
    }
  }

  static void gather(const Embedding& e, std::span<const Token> ids, MatrixView<float> y) {
    const auto table = e.table.view();
    if constexpr (op_checks::kEnabled) op_checks::gather(ids, table.rows, table.cols, y, "EigenBackend::gather");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if constexpr (kBf16) {
        const std::uint16_t* src = table.row(ids[i]);
        float* dst = y.row(int(i));
        for (int c = 0; c < table.cols; ++c) dst[c] = io::bf16_to_float(src[c]);
      } else {
        std::memcpy(y.row(int(i)), table.row(ids[i]), std::size_t(table.cols) * sizeof(float));
      }
    }
  }

  static void copy(MatrixView<const float> x, MatrixView<float> y) {
    if constexpr (op_checks::kEnabled) op_checks::copy(x, y, "EigenBackend::copy");
    for (int r = 0; r < x.rows; ++r) std::memcpy(y.row(r), x.row(r), std::size_t(x.cols) * sizeof(float));
  }

  static void download(MatrixView<const float> x, std::span<float> host) {
    if constexpr (op_checks::kEnabled) op_checks::download(x, host.size(), "EigenBackend::download");
    copy(x, contiguous_view(host.data(), x.rows, x.cols));
  }
};

/// fp32 weights and KV cache: the exact path every fixture test holds to 1e-4.
using EigenBackend = BasicEigenBackend<float>;
/// bfloat16 weight storage (linear layers and embeddings), fp32 compute and KV cache.
using EigenBf16Backend = BasicEigenBackend<std::uint16_t>;
/// fp32 weights, KV cache of bfloat16 or binary16 (tests/test_kv_cache_precision.cpp).
using EigenBf16KvBackend = BasicEigenBackend<float, Bf16>;
using EigenF16KvBackend = BasicEigenBackend<float, F16>;

static_assert(Backend<EigenBackend>);
static_assert(Backend<EigenBf16Backend>);
static_assert(Backend<EigenF16KvBackend>);

}  // namespace blockformer

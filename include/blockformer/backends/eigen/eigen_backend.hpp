#pragma once
// The CPU backend: Eigen GEMMs for every linear layer (batch rows form one GEMM), scalar loops for
// the element-wise ops, and per-(sequence, head) attention over a contiguous KV stream.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/error.hpp"

namespace blockformer {

struct EigenBackend {
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using Map = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

  static ConstMap map(MatrixView<const float> v) {
    return ConstMap(v.data, v.rows, v.cols, Eigen::OuterStride<>(v.stride));
  }
  static Map map(MatrixView<float> v) {
    return Map(v.data, v.rows, v.cols, Eigen::OuterStride<>(v.stride));
  }

  /// Dense row-major float storage in host memory.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(int rows, int cols) : rows_(rows), cols_(cols), data_(std::size_t(rows) * cols) {}
    MatrixView<float> view() { return contiguous_view(data_.data(), rows_, cols_); }
    MatrixView<const float> view() const { return contiguous_view(data_.data(), rows_, cols_); }
    int rows() const { return rows_; }
    int cols() const { return cols_; }

   private:
    int rows_ = 0, cols_ = 0;
    std::vector<float> data_;
  };

  struct Linear {
    Buffer weight;  // [out, in]
    std::vector<float> bias;  // [out] or empty
  };
  struct Norm {
    std::vector<float> weight, bias;  // [width]
  };
  struct Embedding {
    Buffer table;  // [rows, width]
  };

  /// cos/sin of position * inv_freq, computed in double so the table carries no angle error.
  class RotaryTable {
   public:
    RotaryTable() = default;
    RotaryTable(int rotary_dims, float base, int max_positions)
        : half_(rotary_dims / 2), cos_(std::size_t(max_positions) * half_), sin_(cos_.size()) {
      for (int p = 0; p < max_positions; ++p) {
        for (int i = 0; i < half_; ++i) {
          const double inv_freq = 1.0 / std::pow(double(base), 2.0 * i / rotary_dims);
          cos_[std::size_t(p) * half_ + i] = float(std::cos(p * inv_freq));
          sin_[std::size_t(p) * half_ + i] = float(std::sin(p * inv_freq));
        }
      }
    }
    int max_positions() const { return half_ ? int(cos_.size() / half_) : 0; }
    const float* cos(int position) const { return cos_.data() + std::size_t(position) * half_; }
    const float* sin(int position) const { return sin_.data() + std::size_t(position) * half_; }

   private:
    int half_ = 0;
    std::vector<float> cos_, sin_;  // [max_positions, rotary_dims / 2]
  };

  /// K and V streams: for each (layer, slot, head) `capacity` rows of head_dim, contiguous so a
  /// decode step reads each sequence's cache front to back.
  class KvCache {
   public:
    KvCache() = default;
    KvCache(int layers, int slots, int heads, int capacity, int head_dim)
        : slots_(slots), heads_(heads), capacity_(capacity), head_dim_(head_dim),
          k_(std::size_t(layers) * slots * heads * capacity * head_dim), v_(k_.size()) {}
    int slots() const { return slots_; }
    int capacity() const { return capacity_; }
    std::size_t bytes() const { return 2 * k_.size() * sizeof(float); }
    float* k(int layer, int slot, int head) { return k_.data() + offset(layer, slot, head); }
    float* v(int layer, int slot, int head) { return v_.data() + offset(layer, slot, head); }

   private:
    std::size_t offset(int layer, int slot, int head) const {
      return ((std::size_t(layer) * slots_ + slot) * heads_ + head) * capacity_ * head_dim_;
    }
    int slots_ = 0, heads_ = 0, capacity_ = 0, head_dim_ = 0;
    std::vector<float> k_, v_;
  };

  static Linear make_linear(std::vector<float> weight, std::vector<float> bias, int out, int in) {
    Linear l{Buffer(out, in), std::move(bias)};
    std::copy(weight.begin(), weight.end(), l.weight.view().data);
    return l;
  }
  static Norm make_norm(std::vector<float> weight, std::vector<float> bias) {
    return Norm{std::move(weight), std::move(bias)};
  }
  static Embedding make_embedding(std::vector<float> table, int rows, int width) {
    Embedding e{Buffer(rows, width)};
    std::copy(table.begin(), table.end(), e.table.view().data);
    return e;
  }

  static void linear(MatrixView<const float> x, const Linear& w, MatrixView<float> y,
                     Epilogue epilogue) {
    auto out = map(y);
    const auto product = map(x) * map(w.weight.view()).transpose();
    if (epilogue == Epilogue::kAccumulate) {
      out.noalias() += product;
    } else {
      out.noalias() = product;
    }
    if (!w.bias.empty()) {
      out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(w.bias.data(), y.cols);
    }
    if (epilogue == Epilogue::kGelu) {
      for (int r = 0; r < y.rows; ++r) {
        float* row = y.row(r);
        for (int c = 0; c < y.cols; ++c) row[c] = gelu_erf(row[c]);
      }
    }
  }

  static float gelu_erf(float v) { return 0.5f * v * (1.0f + std::erf(v * float(std::numbers::sqrt2 / 2))); }

  static void layer_norm(MatrixView<const float> x, const Norm& n, float eps, MatrixView<float> y) {
    const int width = x.cols;
    for (int r = 0; r < x.rows; ++r) {
      const float* in = x.row(r);
      float* out = y.row(r);
      float mean = 0.0f;
      for (int c = 0; c < width; ++c) mean += in[c];
      mean /= float(width);
      float var = 0.0f;
      for (int c = 0; c < width; ++c) var += (in[c] - mean) * (in[c] - mean);
      const float inv = 1.0f / std::sqrt(var / float(width) + eps);
      for (int c = 0; c < width; ++c) out[c] = (in[c] - mean) * inv * n.weight[c] + n.bias[c];
    }
  }

  /// NeoX rotary on the first rotary_dims of q and k in each head: rotate_half over halves.
  static void rotary(MatrixView<float> qkv, const RaggedBatch& batch, const RotaryTable& table,
                     AttentionShape shape) {
    const int half = shape.rotary_dims / 2;
    if (half == 0) return;
    for (int r = 0; r < qkv.rows; ++r) {
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
    }
  }

  static void attention(MatrixView<const float> qkv, KvCache& cache, int layer,
                        const RaggedBatch& batch, MatrixView<float> y, AttentionShape shape) {
    const int hd = shape.head_dim;
    const float scale = 1.0f / std::sqrt(float(hd));
    thread_local RowMatrix scores;
    for (int s = 0; s < batch.sequences(); ++s) {
      const int first = batch.row_begin[s], count = batch.row_begin[s + 1] - first;
      const int begin = batch.cache_begin[s], keys = begin + count;
      const int slot = batch.cache_slot[s];
      for (int h = 0; h < shape.heads; ++h) {
        float* k = cache.k(layer, slot, h);
        float* v = cache.v(layer, slot, h);
        for (int i = 0; i < count; ++i) {
          const float* src = qkv.row(first + i) + std::size_t(h) * 3 * hd;
          std::memcpy(k + std::size_t(begin + i) * hd, src + hd, hd * sizeof(float));
          std::memcpy(v + std::size_t(begin + i) * hd, src + 2 * hd, hd * sizeof(float));
        }
        const ConstMap q(qkv.row(first) + std::size_t(h) * 3 * hd, count, hd,
                         Eigen::OuterStride<>(qkv.stride));
        const Eigen::Map<const RowMatrix> kmat(k, keys, hd), vmat(v, keys, hd);
        scores.resize(count, keys);
        scores.noalias() = (q * kmat.transpose()) * scale;
        for (int i = 0; i < count; ++i) {
          const int visible = begin + i + 1;  // causal: the row's own cache index and before
          auto row = scores.row(i);
          const float max = row.head(visible).maxCoeff();
          row.head(visible) = (row.head(visible).array() - max).exp();
          row.head(visible) /= row.head(visible).sum();
          row.tail(keys - visible).setZero();
        }
        Map out(y.row(first) + std::size_t(h) * hd, count, hd, Eigen::OuterStride<>(y.stride));
        out.noalias() = scores * vmat;
      }
    }
  }

  static void gather(const Embedding& e, std::span<const Token> ids, MatrixView<float> y) {
    const auto table = e.table.view();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::memcpy(y.row(int(i)), table.row(ids[i]), std::size_t(table.cols) * sizeof(float));
    }
  }

  static void copy(MatrixView<const float> x, MatrixView<float> y) {
    for (int r = 0; r < x.rows; ++r) std::memcpy(y.row(r), x.row(r), std::size_t(x.cols) * sizeof(float));
  }

  static void download(MatrixView<const float> x, std::span<float> host) {
    copy(x, contiguous_view(host.data(), x.rows, x.cols));
  }
};

static_assert(Backend<EigenBackend>);

}  // namespace blockformer

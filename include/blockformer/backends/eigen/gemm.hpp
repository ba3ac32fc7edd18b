// SPDX-License-Identifier: Apache-2.0
#pragma once
// y (+)= x W^T through Eigen's GEMM kernel with packing buffers owned by the calling thread.
// Eigen's product expressions allocate their packing blocks on every call once they exceed
// EIGEN_STACK_ALLOCATION_LIMIT (real model widths do), which would put heap allocations in every
// decode step. Driving the same kernel with thread-local blocks that only ever grow keeps the
// decode loop allocation-free after the first step.
#include <Eigen/Core>
#include <algorithm>
#include <type_traits>
#include <vector>

#include "blockformer/tensor.hpp"

namespace blockformer::eigen_detail {

/// Eigen's cache blocking for one GEMM shape, backed by this thread's packing scratch.
class ThreadBlocking : public Eigen::internal::level3_blocking<float, float> {
 public:
  /// m, n, k of the column-major problem Eigen solves (for a row-major y, m = y.cols, n = y.rows).
  ThreadBlocking(Eigen::Index m, Eigen::Index n, Eigen::Index k) {
    this->m_mc = m;
    this->m_nc = n;
    this->m_kc = k;
    Eigen::internal::computeProductBlockingSizes<float, float, 1>(this->m_kc, this->m_mc, this->m_nc, Eigen::Index{1});
    thread_local std::vector<float, Eigen::aligned_allocator<float>> a, b;
    const auto grow = [](auto& v, Eigen::Index size) {
      if (v.size() < std::size_t(size)) v.resize(std::size_t(size));
      return v.data();
    };
    this->m_blockA = grow(a, this->m_mc * this->m_kc);
    this->m_blockB = grow(b, this->m_kc * this->m_nc);
  }
};

/// y += x W^T for W [N, K] (linear layers, q K^T), or y += x W for W [K, N] (P V, `TransposedW`
/// false); x [M, K] and W row-major with row strides, y [M, N]. A template so that only
/// translation units that multiply instantiate Eigen's GEMM kernels.
template <bool TransposedW, class T>
void gemm_accumulate(MatrixView<const T> x, MatrixView<const T> w, MatrixView<T> y) {
  static_assert(std::is_same_v<T, float>, "the packing blocks are float");
  using Index = Eigen::Index;
  constexpr int kWOrder = TransposedW ? Eigen::ColMajor : Eigen::RowMajor;
  if (x.rows == 1) {  // a matrix-vector product: Eigen's gemv streams W without packing it
    using WMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, kWOrder>;
    const Index n = y.cols, k = x.cols;
    const Eigen::Map<const WMatrix, Eigen::Unaligned, Eigen::OuterStride<>> wm(w.data, k, n, Eigen::OuterStride<>(w.stride));
    Eigen::Map<Eigen::RowVectorXf>(y.data, y.cols).noalias() += Eigen::Map<const Eigen::RowVectorXf>(x.data, x.cols) * wm;
    return;
  }
  ThreadBlocking blocking(y.cols, y.rows, x.cols);
  Eigen::internal::general_matrix_matrix_product<Index, float, Eigen::RowMajor, false, float, kWOrder, false,
                                                 Eigen::RowMajor, 1>::run(y.rows, y.cols, x.cols, x.data, x.stride,
                                                                          w.data, w.stride, y.data, 1, y.stride, 1.0f,
                                                                          blocking);
}

}  // namespace blockformer::eigen_detail

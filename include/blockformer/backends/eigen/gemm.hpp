// SPDX-License-Identifier: Apache-2.0
#pragma once
// y (+)= x W^T through Eigen's GEMM kernel with packing buffers owned by the calling thread.
// Eigen's product expressions allocate their packing blocks on every call once they exceed
// EIGEN_STACK_ALLOCATION_LIMIT (real model widths do), which would put heap allocations in every
// decode step. Driving the same kernel with thread-local blocks that only ever grow keeps the
// decode loop allocation-free after the first step.
#include <Eigen/Core>
#include <algorithm>
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

/// y += x W^T for x [M, K] and W [N, K] row-major (both with row strides), y [M, N].
inline void gemm_accumulate(MatrixView<const float> x, MatrixView<const float> w, MatrixView<float> y) {
  using Index = Eigen::Index;
  if (x.rows == 1) {  // a matrix-vector product: Eigen's gemv streams W without packing it
    using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>> wm(w.data, w.rows, w.cols,
                                                                                Eigen::OuterStride<>(w.stride));
    Eigen::Map<Eigen::RowVectorXf>(y.data, y.cols).noalias() +=
        Eigen::Map<const Eigen::RowVectorXf>(x.data, x.cols) * wm.transpose();
    return;
  }
  ThreadBlocking blocking(y.cols, y.rows, x.cols);
  Eigen::internal::general_matrix_matrix_product<Index, float, Eigen::RowMajor, false, float, Eigen::ColMajor, false,
                                                 Eigen::RowMajor, 1>::run(y.rows, y.cols, x.cols, x.data, x.stride,
                                                                          w.data, w.stride, y.data, 1, y.stride, 1.0f,
                                                                          blocking);
}

}  // namespace blockformer::eigen_detail

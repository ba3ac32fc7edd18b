// SPDX-License-Identifier: Apache-2.0
#pragma once
// Non-owning views that pass between the model code and a backend. The pointer may address host
// or device memory: only the backend that made the buffer dereferences it.
#include <cstddef>
#include <cstdint>

namespace blockformer {

/// A token id. Checkpoints index embeddings with it; ids are validated against the vocab on entry.
using Token = std::int32_t;

/// A row-major 2-D view with a row stride in elements: [rows, cols], row r at data + r * stride.
template <class T>
struct MatrixView {
  T* data = nullptr;
  int rows = 0;
  int cols = 0;
  std::ptrdiff_t stride = 0;

  constexpr T* row(int r) const { return data + r * stride; }
  /// Rows [first, first + count).
  constexpr MatrixView rows_slice(int first, int count) const {
    return {data + first * stride, count, cols, stride};
  }
  /// Columns [first, first + count) of every row: same stride.
  constexpr MatrixView cols_slice(int first, int count) const {
    return {data + first, rows, count, stride};
  }
  /// Reinterprets contiguous rows as [rows * cols / new_cols, new_cols]; requires stride == cols.
  constexpr MatrixView reshape(int new_cols) const {
    return {data, rows * cols / new_cols, new_cols, new_cols};
  }
  constexpr operator MatrixView<const T>() const { return {data, rows, cols, stride}; }
};

template <class T>
constexpr MatrixView<T> contiguous_view(T* data, int rows, int cols) {
  return {data, rows, cols, cols};
}

}  // namespace blockformer

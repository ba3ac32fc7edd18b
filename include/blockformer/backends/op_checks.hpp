// SPDX-License-Identifier: Apache-2.0
#pragma once
// Precondition checks of the backend ops, in one host-only place shared by every backend. The
// models never break them (requests are validated at the API), so release builds skip them and
// the decode loop pays nothing; debug builds and the tests (BLOCKFORMER_CHECK_OPS=1) run them, so
// a new backend or a new model path fails at the op that got bad arguments, with the shapes in
// the message, instead of reading out of bounds.
#include <cstddef>
#include <span>
#include <string>

#include "blockformer/backends/backend.hpp"
#include "blockformer/error.hpp"
#include "blockformer/ragged_batch.hpp"
#include "blockformer/tensor.hpp"

#ifndef BLOCKFORMER_CHECK_OPS
#ifdef NDEBUG
#define BLOCKFORMER_CHECK_OPS 0
#else
#define BLOCKFORMER_CHECK_OPS 1
#endif
#endif

namespace blockformer::op_checks {

inline constexpr bool kEnabled = BLOCKFORMER_CHECK_OPS;

inline std::string extents(int rows, int cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

/// Throws unless `batch` is well formed and describes exactly `rows` rows. Messages are built only
/// on failure: the checks run on every decode step of a checked build, which must not allocate.
inline void batch(const RaggedBatch& batch, int rows, const char* op) {
  const auto fail = [op](const std::string& what) { throw Error(std::string(op) + ": " + what); };
  const int s = batch.sequences();
  if (batch.row_begin.size() != std::size_t(s) + 1 || batch.cache_begin.size() != std::size_t(s))
    fail("batch has " + std::to_string(batch.row_begin.size()) + " row_begin and " +
         std::to_string(batch.cache_begin.size()) + " cache_begin entries for " + std::to_string(s) +
         " sequences (expected sequences + 1 and sequences)");
  if (batch.row_begin[0] != 0) fail("batch row_begin[0] is " + std::to_string(batch.row_begin[0]) + ", expected 0");
  for (int i = 0; i < s; ++i)
    if (batch.row_begin[i + 1] < batch.row_begin[i]) fail("batch row_begin decreases at sequence " + std::to_string(i));
  if (batch.rows() != rows)
    fail("batch describes " + std::to_string(batch.rows()) + " rows, the tensor has " + std::to_string(rows));
  if (batch.positions.size() != std::size_t(rows))
    fail("batch has " + std::to_string(batch.positions.size()) + " positions for " + std::to_string(rows) + " rows");
}

/// Throws unless every sequence's rows fit its cache slot: slot in [0, slots), begin >= 0 and
/// begin + rows <= capacity.
inline void cache_batch(const RaggedBatch& batch, int slots, int capacity, const char* op) {
  for (int i = 0; i < batch.sequences(); ++i) {
    const int slot = batch.cache_slot[i], begin = batch.cache_begin[i];
    const int count = batch.row_begin[i + 1] - batch.row_begin[i];
    if (slot < 0 || slot >= slots)
      throw Error(std::string(op) + ": sequence " + std::to_string(i) + " uses cache slot " + std::to_string(slot) +
                  ", the cache has " + std::to_string(slots) + " slots");
    if (begin < 0 || std::size_t(begin) + std::size_t(count) > std::size_t(capacity))
      throw Error(std::string(op) + ": sequence " + std::to_string(i) + " writes cache indices [" + std::to_string(begin) +
                  ", " + std::to_string(std::size_t(begin) + count) + ") of slot " + std::to_string(slot) +
                  ", capacity is " + std::to_string(capacity));
  }
}

/// Throws unless every rotary position lies in [0, max_positions).
inline void positions(const RaggedBatch& batch, int max_positions, const char* op) {
  for (std::size_t r = 0; r < batch.positions.size(); ++r)
    if (batch.positions[r] < 0 || batch.positions[r] >= max_positions)
      throw Error(std::string(op) + ": row " + std::to_string(r) + " has rotary position " +
                  std::to_string(batch.positions[r]) + ", the table covers [0, " + std::to_string(max_positions) + ")");
}

/// x [rows, in] times W^T [in, out] into y [rows, out].
inline void linear(MatrixView<const float> x, int out, int in, MatrixView<const float> y, const char* op) {
  if (x.cols != in || y.cols != out || x.rows != y.rows)
    throw Error(std::string(op) + ": x " + extents(x.rows, x.cols) + " times W^T " + extents(in, out) + " into y " +
                extents(y.rows, y.cols));
}

inline void layer_norm(MatrixView<const float> x, std::size_t width, MatrixView<const float> y, const char* op) {
  if (x.rows != y.rows || x.cols != y.cols || std::size_t(x.cols) != width)
    throw Error(std::string(op) + ": x " + extents(x.rows, x.cols) + ", y " + extents(y.rows, y.cols) + ", norm width " +
                std::to_string(width));
}

/// Fused qkv rows [rows, >= 3 * heads * head_dim] of `shape`, whose head dim is the compiled one.
inline void qkv(MatrixView<const float> qkv, AttentionShape shape, int compiled_head_dim, const char* op) {
  if (shape.heads <= 0 || shape.head_dim != compiled_head_dim || qkv.cols < 3 * shape.heads * shape.head_dim ||
      shape.rotary_dims < 0 || shape.rotary_dims > shape.head_dim)
    throw Error(std::string(op) + ": qkv " + extents(qkv.rows, qkv.cols) + " for " + std::to_string(shape.heads) +
                " heads x 3 x " + std::to_string(shape.head_dim) + " (rotary " + std::to_string(shape.rotary_dims) +
                ", compiled head dim " + std::to_string(compiled_head_dim) + ")");
}

/// Attention output y [rows, >= heads * head_dim], and a cache laid out for the same heads.
inline void attention(MatrixView<const float> qkv, MatrixView<const float> y, AttentionShape shape, int cache_layers,
               int cache_heads, int cache_head_dim, int layer, const char* op) {
  if (y.rows != qkv.rows || y.cols < shape.heads * shape.head_dim)
    throw Error(std::string(op) + ": y " + extents(y.rows, y.cols) + " for " + std::to_string(qkv.rows) + " rows of " +
                std::to_string(shape.heads) + " heads x " + std::to_string(shape.head_dim));
  if (cache_heads != shape.heads || cache_head_dim != shape.head_dim)
    throw Error(std::string(op) + ": cache holds " + std::to_string(cache_heads) + " heads x " +
                std::to_string(cache_head_dim) + ", the layer has " + std::to_string(shape.heads) + " x " +
                std::to_string(shape.head_dim));
  if (layer < 0 || layer >= cache_layers)
    throw Error(std::string(op) + ": layer " + std::to_string(layer) + " of a " + std::to_string(cache_layers) +
                "-layer cache");
}

/// The whole rotary call: qkv of `shape`, the batch over its rows, a table of the shape's rotary
/// width covering every position.
inline void rotary(MatrixView<const float> qkv_rows, const RaggedBatch& rows, AttentionShape shape, int table_half,
                   int table_positions, const char* op) {
  qkv(qkv_rows, shape, shape.head_dim, op);
  batch(rows, qkv_rows.rows, op);
  if (shape.rotary_dims / 2 == 0) return;
  if (shape.rotary_dims / 2 != table_half)
    throw Error(std::string(op) + ": shape has " + std::to_string(shape.rotary_dims) + " rotary dims, the table " +
                std::to_string(2 * table_half));
  positions(rows, table_positions, op);
}

/// The whole attention call: qkv and y of `shape` at the compiled head dim, the batch over its
/// rows, a cache laid out for the layer that holds every row written.
template <class Cache>
void attention_call(MatrixView<const float> qkv_rows, MatrixView<const float> y, const RaggedBatch& rows,
                    AttentionShape shape, int compiled_head_dim, const Cache& cache, int layer, const char* op) {
  qkv(qkv_rows, shape, compiled_head_dim, op);
  batch(rows, qkv_rows.rows, op);
  attention(qkv_rows, y, shape, cache.layers(), cache.heads(), cache.head_dim(), layer, op);
  cache_batch(rows, cache.slots(), cache.capacity(), op);
}

inline void gather(std::span<const Token> ids, int table_rows, int table_cols, MatrixView<const float> y, const char* op) {
  if (std::size_t(y.rows) != ids.size() || y.cols != table_cols)
    throw Error(std::string(op) + ": " + std::to_string(ids.size()) + " ids of width " + std::to_string(table_cols) +
                " into y " + extents(y.rows, y.cols));
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= table_rows)
      throw Error(std::string(op) + ": ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " outside [0, " +
                  std::to_string(table_rows) + ")");
}

inline void copy(MatrixView<const float> x, MatrixView<const float> y, const char* op) {
  if (x.rows != y.rows || x.cols != y.cols)
    throw Error(std::string(op) + ": x " + extents(x.rows, x.cols) + " into y " + extents(y.rows, y.cols));
}

inline void download(MatrixView<const float> x, std::size_t host_floats, const char* op) {
  if (host_floats < std::size_t(x.rows) * x.cols)
    throw Error(std::string(op) + ": " + std::to_string(host_floats) + " host floats for " + extents(x.rows, x.cols));
}

}  // namespace blockformer::op_checks

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Describes one call through a decoder stack: rows of several sequences, each sequence's new rows
// contiguous and appended to that sequence's KV cache. Prefill, chunked prefill, one-token decode
// steps, block-decoder steps and token-decoder steps are all this one shape.
#include <span>
#include <vector>

namespace blockformer {

/// Host-side description of which rows belong to which cached sequence.
struct RaggedBatch {
  std::vector<int> row_begin;    // [sequences + 1]: rows of sequence s are [row_begin[s], row_begin[s+1])
  std::vector<int> cache_slot;   // [sequences]: which KV-cache sequence slot the rows extend
  std::vector<int> cache_begin;  // [sequences]: cache index of the sequence's first new row
  std::vector<int> positions;    // [rows]: rotary position of each row (need not equal its cache index)

  int sequences() const { return static_cast<int>(cache_slot.size()); }
  int rows() const { return row_begin.empty() ? 0 : row_begin.back(); }

  void clear() {
    row_begin.assign(1, 0);
    cache_slot.clear();
    cache_begin.clear();
    positions.clear();
  }
  /// `sequences` fresh sequences of `rows_each` rows in slots 0, 1, ..., at positions 0, 1, ...
  static RaggedBatch uniform(int sequences, int rows_each) {
    RaggedBatch batch;
    batch.clear();
    for (int s = 0; s < sequences; ++s) {
      batch.add_sequence(s, 0, rows_each);
      for (int p = 0; p < rows_each; ++p) batch.positions.push_back(p);
    }
    return batch;
  }

  /// Appends a sequence of `count` rows extending cache slot `slot` from index `begin`.
  /// Rotary positions are left to the caller (push them onto `positions`).
  void add_sequence(int slot, int begin, int count) {
    if (row_begin.empty()) row_begin.push_back(0);
    cache_slot.push_back(slot);
    cache_begin.push_back(begin);
    row_begin.push_back(row_begin.back() + count);
  }
};

}  // namespace blockformer

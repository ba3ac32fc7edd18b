// SPDX-License-Identifier: Apache-2.0
#pragma once
// Chunked prefill: many prompts of different lengths go through a decoder stack in calls of a
// bounded number of rows, so workspace size is fixed by the session, not by the prompts.
#include <span>

#include "blockformer/ragged_batch.hpp"

namespace blockformer::detail {

/// Calls fn(batch) for consecutive pieces of the sequences: sequence s has lengths[s] rows in cache
/// slot s starting at index 0; each call holds at most `budget` rows and rotary position = index.
template <class Fn>
void for_each_prefill_chunk(std::span<const int> lengths, int budget, RaggedBatch& batch, Fn&& fn) {
  batch.clear();
  for (int s = 0; s < int(lengths.size()); ++s) {
    for (int done = 0; done < lengths[s];) {
      const int count = std::min(lengths[s] - done, budget - batch.rows());
      batch.add_sequence(s, done, count);
      for (int i = 0; i < count; ++i) batch.positions.push_back(done + i);
      done += count;
      if (batch.rows() == budget) {
        fn(batch);
        batch.clear();
      }
    }
  }
  if (batch.rows() > 0) fn(batch);
}

/// Whether `batch` holds the last row of its sequence i, given that sequence's full length.
inline bool ends_sequence(const RaggedBatch& batch, int i, int length) {
  return batch.cache_begin[i] + (batch.row_begin[i + 1] - batch.row_begin[i]) == length;
}

}  // namespace blockformer::detail

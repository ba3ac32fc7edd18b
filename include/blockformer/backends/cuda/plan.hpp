// SPDX-License-Identifier: Apache-2.0
#pragma once
// Host-side planning for the CUDA backend: validation of a RaggedBatch against the tensors an op
// touches, and the attention work list (query tiles, FlashDecoding-style key splits) uploaded with
// the batch. Plain C++ (no CUDA headers): CPU tests include it directly.
#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/ragged_batch.hpp"

namespace blockformer::cuda {

/// Query rows per attention thread block, one warp each: the warps share every K/V tile loaded
/// into shared memory, and 4 warps (128 threads) leave room for several resident blocks per SM.
inline constexpr int kAttentionRows = 4;
/// Keys per shared-memory tile: one key per lane while scoring.
inline constexpr int kAttentionKeyTile = 32;
/// Fewest keys one split of a key range holds: below this, writing and combining partial
/// results costs more than the parallelism the split buys.
inline constexpr int kMinKeysPerSplit = 256;

/// One thread block's work (per head): up to kAttentionRows consecutive rows of one sequence
/// against cache indices [k_begin, k_end).
struct AttentionWorkItem {
  int sequence = 0;  // index into the batch's sequences
  int q_begin = 0;   // first batch row
  int q_count = 0;   // rows, 1..kAttentionRows
  int k_begin = 0;   // first cache index read
  int k_end = 0;     // one past the last cache index read
  int partial = -1;  // -1: write y; else row q_begin + r writes partial slot partial + r
};
/// Merges the partial results of one row split along the keys: slots partial + i * stride.
struct AttentionCombine {
  int row = 0;
  int partial = 0;
  int splits = 0;
  int stride = 0;
};
static_assert(std::is_trivially_copyable_v<AttentionWorkItem> && sizeof(AttentionWorkItem) == 6 * sizeof(int));
static_assert(std::is_trivially_copyable_v<AttentionCombine> && sizeof(AttentionCombine) == 4 * sizeof(int));

struct AttentionPlan {
  std::vector<AttentionWorkItem> items;
  std::vector<AttentionCombine> combines;
  int partials = 0;  // partial slots; each holds heads x (head_dim + 2) floats (max, sum, acc)
};

/// Throws unless `batch` is well formed and describes exactly `rows` rows.
inline void validate_batch(const RaggedBatch& batch, int rows, const char* op) {
  const std::string where = std::string(op) + ": ";
  const int s = batch.sequences();
  if (batch.row_begin.size() != std::size_t(s) + 1 || batch.cache_begin.size() != std::size_t(s))
    throw Error(where + "batch has " + std::to_string(batch.row_begin.size()) + " row_begin and " +
                std::to_string(batch.cache_begin.size()) + " cache_begin entries for " + std::to_string(s) +
                " sequences (expected sequences + 1 and sequences)");
  if (batch.row_begin[0] != 0) throw Error(where + "batch row_begin[0] is " + std::to_string(batch.row_begin[0]) + ", expected 0");
  for (int i = 0; i < s; ++i)
    if (batch.row_begin[i + 1] < batch.row_begin[i])
      throw Error(where + "batch row_begin decreases at sequence " + std::to_string(i));
  if (batch.rows() != rows)
    throw Error(where + "batch describes " + std::to_string(batch.rows()) + " rows, the tensor has " + std::to_string(rows));
  if (batch.positions.size() != std::size_t(rows))
    throw Error(where + "batch has " + std::to_string(batch.positions.size()) + " positions for " + std::to_string(rows) + " rows");
}

/// Throws unless every sequence's rows fit its cache slot: slot in [0, slots), begin >= 0 and
/// begin + rows <= capacity.
inline void validate_cache_batch(const RaggedBatch& batch, int slots, int capacity, const char* op) {
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
inline void validate_positions(const RaggedBatch& batch, int max_positions, const char* op) {
  for (std::size_t r = 0; r < batch.positions.size(); ++r)
    if (batch.positions[r] < 0 || batch.positions[r] >= max_positions)
      throw Error(std::string(op) + ": row " + std::to_string(r) + " has rotary position " +
                  std::to_string(batch.positions[r]) + ", the table covers [0, " + std::to_string(max_positions) + ")");
}

/// Splits every sequence into tiles of kAttentionRows rows; when tiles x heads cannot give
/// `target_blocks` thread blocks (a decode step with a small batch), also splits each tile's key
/// range into chunks of whole key tiles, at least kMinKeysPerSplit keys each, merged afterwards.
inline AttentionPlan plan_attention(const RaggedBatch& batch, int heads, int target_blocks) {
  AttentionPlan plan;
  for (int s = 0; s < batch.sequences(); ++s) {
    const int first = batch.row_begin[s], count = batch.row_begin[s + 1] - first;
    for (int r = 0; r < count; r += kAttentionRows) {
      const int q = std::min(kAttentionRows, count - r);
      // Causal: the tile's last row sees cache indices up to its own.
      plan.items.push_back({s, first + r, q, 0, batch.cache_begin[s] + r + q, -1});
    }
  }
  const long long blocks = static_cast<long long>(plan.items.size()) * std::max(heads, 1);
  if (plan.items.empty() || blocks >= target_blocks) return plan;
  const long long want = (target_blocks + blocks - 1) / blocks;  // splits per item to reach the target
  std::vector<AttentionWorkItem> split;
  for (const AttentionWorkItem& item : plan.items) {
    const int keys = item.k_end - item.k_begin;
    const int splits = int(std::min<long long>(want, (keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit));
    if (splits <= 1) {
      split.push_back(item);
      continue;
    }
    int chunk = (keys + splits - 1) / splits;
    chunk = (chunk + kAttentionKeyTile - 1) / kAttentionKeyTile * kAttentionKeyTile;
    const int used = (keys + chunk - 1) / chunk;
    for (int r = 0; r < item.q_count; ++r) plan.combines.push_back({item.q_begin + r, plan.partials + r, used, item.q_count});
    for (int i = 0; i < used; ++i) {
      AttentionWorkItem part = item;
      part.k_begin = item.k_begin + i * chunk;
      part.k_end = std::min(item.k_end, part.k_begin + chunk);
      part.partial = plan.partials + i * item.q_count;
      split.push_back(part);
    }
    plan.partials += used * item.q_count;
  }
  plan.items = std::move(split);
  return plan;
}

/// The ints one call uploads: the batch's arrays, a row -> sequence map, then the attention plan.
/// Offsets are in ints from the start of `data`.
struct PackedBatch {
  std::vector<int> data;
  int sequences = 0, rows = 0;
  std::size_t row_begin = 0, cache_slot = 0, cache_begin = 0, positions = 0, row_sequence = 0;
  std::size_t items = 0, combines = 0;
  int item_count = 0, combine_count = 0, partials = 0;
};

inline PackedBatch pack_batch(const RaggedBatch& batch, const AttentionPlan& plan) {
  PackedBatch p;
  p.sequences = batch.sequences();
  p.rows = batch.rows();
  auto append = [&](const int* first, std::size_t n) {
    const std::size_t at = p.data.size();
    p.data.insert(p.data.end(), first, first + n);
    return at;
  };
  p.row_begin = append(batch.row_begin.data(), batch.row_begin.size());
  p.cache_slot = append(batch.cache_slot.data(), batch.cache_slot.size());
  p.cache_begin = append(batch.cache_begin.data(), batch.cache_begin.size());
  p.positions = append(batch.positions.data(), batch.positions.size());
  p.row_sequence = p.data.size();
  for (int s = 0; s < p.sequences; ++s)
    for (int r = batch.row_begin[s]; r < batch.row_begin[s + 1]; ++r) p.data.push_back(s);
  p.items = append(reinterpret_cast<const int*>(plan.items.data()), plan.items.size() * 6);
  p.combines = append(reinterpret_cast<const int*>(plan.combines.data()), plan.combines.size() * 4);
  p.item_count = int(plan.items.size());
  p.combine_count = int(plan.combines.size());
  p.partials = plan.partials;
  return p;
}

}  // namespace blockformer::cuda

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Host-side planning for the CUDA backend: the attention work list (query tiles, FlashDecoding-style key splits) uploaded with
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

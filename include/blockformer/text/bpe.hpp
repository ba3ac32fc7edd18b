// SPDX-License-Identifier: Apache-2.0
#pragma once
// Byte-pair encoding of one pre-tokenized word, merge for merge what HF tokenizers' Word::merge_all does:
// a heap of candidate merges ordered by (rank, position), expired entries skipped.
#include <cstddef>
#include <cstdint>
#include <queue>
#include <unordered_map>
#include <vector>

#include "blockformer/tensor.hpp"

namespace blockformer::detail {

struct MergeResult {
  std::uint32_t rank;
  Token merged;
};

/// (left, right) token pair -> the merge that joins them.
class MergeTable {
 public:
  void insert(Token left, Token right, MergeResult result) { table_[key(left, right)] = result; }
  const MergeResult* find(Token left, Token right) const {
    const auto it = table_.find(key(left, right));
    return it == table_.end() ? nullptr : &it->second;
  }
  std::size_t size() const { return table_.size(); }

 private:
  static std::uint64_t key(Token left, Token right) {
    return (std::uint64_t{static_cast<std::uint32_t>(left)} << 32) | static_cast<std::uint32_t>(right);
  }
  std::unordered_map<std::uint64_t, MergeResult> table_;
};

/// Merges `symbols` (the word's initial tokens) in place until no merge applies.
inline void bpe_merge(std::vector<Token>& symbols, const MergeTable& merges) {
  if (symbols.size() < 2) return;
  struct Candidate {
    std::uint32_t rank;
    std::size_t position;
    Token merged;
    // std::priority_queue pops the largest: make that the lowest rank, then the leftmost.
    bool operator<(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  const std::size_t n = symbols.size();
  std::vector<std::ptrdiff_t> previous(n), next(n);
  std::vector<bool> removed(n, false);
  std::priority_queue<Candidate> queue;
  for (std::size_t i = 0; i < n; ++i) {
    previous[i] = static_cast<std::ptrdiff_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::ptrdiff_t>(i + 1) : -1;
    if (i + 1 < n) {
      if (const MergeResult* merge = merges.find(symbols[i], symbols[i + 1])) {
        queue.push({merge->rank, i, merge->merged});
      }
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (removed[top.position] || next[top.position] < 0) continue;
    const auto right = static_cast<std::size_t>(next[top.position]);
    const MergeResult* current = merges.find(symbols[top.position], symbols[right]);
    if (current == nullptr || current->merged != top.merged) continue;  // an expired entry
    symbols[top.position] = top.merged;
    removed[right] = true;
    next[top.position] = next[right];
    if (next[right] >= 0) previous[static_cast<std::size_t>(next[right])] = static_cast<std::ptrdiff_t>(top.position);
    if (previous[top.position] >= 0) {
      const auto left = static_cast<std::size_t>(previous[top.position]);
      if (const MergeResult* merge = merges.find(symbols[left], symbols[top.position])) {
        queue.push({merge->rank, left, merge->merged});
      }
    }
    if (next[top.position] >= 0) {
      const auto after = static_cast<std::size_t>(next[top.position]);
      if (const MergeResult* merge = merges.find(symbols[top.position], symbols[after])) {
        queue.push({merge->rank, top.position, merge->merged});
      }
    }
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!removed[i]) symbols[kept++] = symbols[i];
  }
  symbols.resize(kept);
}

}  // namespace blockformer::detail

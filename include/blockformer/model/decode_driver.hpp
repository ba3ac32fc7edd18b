// SPDX-License-Identifier: Apache-2.0
#pragma once
// The pieces of a generate() loop that both models share: chunked prefill of ragged prompts, and
// the sampling step that turns the members' newest hidden rows into one token each and lays out
// the next one-row call for those that go on. Buffers are sized once per session, so steady-state
// steps never allocate.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/ragged_batch.hpp"
#include "blockformer/tensor.hpp"
#include "blockformer/thread_pool.hpp"

namespace blockformer::detail {

/// Calls fn(chunk) for consecutive pieces of the sequences: sequence s has lengths[s] rows in cache
/// slot s starting at index 0; each call holds at most `budget` rows and rotary position = index.
template <class Fn>
void for_each_prefill_chunk(std::span<const int> lengths, int budget, RaggedBatch& chunk, Fn&& fn) {
  chunk.clear();
  for (int s = 0; s < int(lengths.size()); ++s) {
    for (int done = 0; done < lengths[s];) {
      const int count = std::min(lengths[s] - done, budget - chunk.rows());
      chunk.add_sequence(s, done, count);
      for (int i = 0; i < count; ++i) chunk.positions.push_back(done + i);
      done += count;
      if (chunk.rows() == budget) {
        fn(chunk);
        chunk.clear();
      }
    }
  }
  if (chunk.rows() > 0) fn(chunk);
}

/// The tokens of a chunk's rows, `per_row` tokens a row (1 for a vanilla model, L for the block
/// decoder): sequence i's rows are rows [cache_begin, cache_begin + count) of tokens_of(slot).
template <class TokensOf>
void chunk_ids(const RaggedBatch& chunk, int per_row, TokensOf&& tokens_of, std::vector<Token>& ids) {
  ids.clear();
  for (int i = 0; i < chunk.sequences(); ++i) {
    const std::span<const Token> tokens = tokens_of(chunk.cache_slot[i]);
    const int count = chunk.row_begin[i + 1] - chunk.row_begin[i];
    ids.insert(ids.end(), tokens.begin() + std::size_t(chunk.cache_begin[i]) * per_row,
               tokens.begin() + std::size_t(chunk.cache_begin[i] + count) * per_row);
  }
}

/// One sampling step per decode step, shared by both models. `members` lists the sequences whose
/// newest hidden state sits in row i of the hidden rows handed to sample(); after it, `members`
/// and `next` hold those that go on, in the same order, one row each, feeding `ids`.
template <Backend B>
class SamplingStep {
 public:
  SamplingStep(int max_batch, int vocab)
      : vocab_(vocab), logits_(max_batch, vocab), host_logits_(std::size_t(max_batch) * vocab) {
    members.reserve(max_batch);
    ids.reserve(max_batch);
  }

  std::vector<int> members;
  RaggedBatch next;        // the rows fed next: one per member that goes on
  std::vector<Token> ids;  // [next.rows()]: the token each row feeds

  /// Starts a request: every sequence the request has not already finished is a member.
  void start(const GenerationState& state, int sequences) {
    members.clear();
    for (int s = 0; s < sequences; ++s)
      if (!state.finished(s)) members.push_back(s);
  }

  /// Row of `members` that holds sequence s (prefill hands each finished prompt's last row there).
  int row_of(int s) const {
    const auto at = std::find(members.begin(), members.end(), s);
    return at == members.end() ? -1 : int(at - members.begin());
  }

  /// Samples each member's token from head(hidden row i); `place(s)` gives the {cache index,
  /// rotary position} of the new row of a member that goes on.
  template <class Place>
  void sample(const typename B::Linear& head, MatrixView<const float> hidden, GenerationState& state, Place&& place) {
    const int m = int(members.size());
    const auto logits = logits_.view().rows_slice(0, m);
    B::linear(hidden.rows_slice(0, m), head, logits, Epilogue::kStore);
    B::download(logits, std::span(host_logits_).first(std::size_t(m) * vocab_));
    next.clear();
    ids.clear();
    for (int i = 0; i < m; ++i) {
      const int s = members[i];
      const Token t = state.sample(s, std::span<const float>(host_logits_).subspan(std::size_t(i) * vocab_, vocab_));
      if (state.finished(s)) continue;
      const auto [index, position] = place(s);
      next.add_sequence(s, index, 1);
      next.positions.push_back(position);
      ids.push_back(t);
    }
    members.assign(next.cache_slot.begin(), next.cache_slot.end());
  }

 private:
  int vocab_;
  typename B::Buffer logits_;  // [max_batch, V]
  std::vector<float> host_logits_;
};

/// After a prefill chunk: copies the last row of each sequence that the chunk completes (it holds
/// lengths[s] rows in all) to the member row of `step` that sequence decodes from.
template <Backend B>
void keep_final_rows(const RaggedBatch& chunk, std::span<const int> lengths, const SamplingStep<B>& step,
                     MatrixView<const float> hidden, MatrixView<float> member_rows) {
  for (int i = 0; i < chunk.sequences(); ++i) {
    const int s = chunk.cache_slot[i];
    const int end = chunk.cache_begin[i] + (chunk.row_begin[i + 1] - chunk.row_begin[i]);
    const int row = step.row_of(s);
    if (end != lengths[s] || row < 0) continue;
    B::copy(hidden.rows_slice(chunk.row_begin[i + 1] - 1, 1), member_rows.rows_slice(row, 1));
  }
}

/// This machine's physical memory: the default limit of what one session may allocate.
inline std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : UINT64_MAX;
}

/// Checks a session's size before anything is allocated for it: each dimension in [1, limit],
/// then the bytes it needs against `budget` (0: physical memory). Returns max_batch.
inline int check_session(int max_batch, int max_tokens, int max_tokens_limit, std::uint64_t bytes, std::uint64_t budget) {
  check_session_size(max_batch, "max_batch", 1 << 20);
  check_session_size(max_tokens, "max_tokens", max_tokens_limit);
  const std::uint64_t limit = budget ? budget : physical_memory_bytes();
  if (bytes > limit)
    throw Error("session of max_batch " + std::to_string(max_batch) + " x max_tokens " + std::to_string(max_tokens) +
                " needs " + std::to_string(bytes) + " bytes (KV caches and scratch), more than the limit of " +
                std::to_string(limit) + " bytes (" + (budget ? "the memory budget given" : "physical memory") +
                "); make the session smaller or pass a larger memory budget");
  return max_batch;
}

/// Marks a session busy while a call runs on it: a streaming callback that calls generate() on
/// its own session, or a second thread on it, gets an Error instead of corrupting the call in
/// flight. A copied or moved session starts idle.
class SessionInUse {
 public:
  SessionInUse() = default;
  SessionInUse(const SessionInUse&) {}
  SessionInUse& operator=(const SessionInUse&) { return *this; }

  class Guard {
   public:
    explicit Guard(std::atomic<bool>& busy) : busy_(busy) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { busy_.store(false, std::memory_order_release); }

   private:
    std::atomic<bool>& busy_;
  };

  /// Marks the session busy until the guard goes; throws if it already was.
  [[nodiscard]] Guard enter(const char* call) {
    if (busy_.exchange(true, std::memory_order_acquire))
      throw Error(std::string(call) + ": this session is already running a call (a callback calling back into "
                  "its own session, or two threads on one session); use one session per concurrent call");
    return Guard(busy_);
  }

 private:
  std::atomic<bool> busy_{false};
};

/// A session's worker threads: started by its first call and kept for the next ones, restarted
/// only when a call asks for another count. A copied or moved session starts without them.
class SessionPool {
 public:
  SessionPool() = default;
  SessionPool(const SessionPool&) {}
  SessionPool& operator=(const SessionPool&) {
    pool_.reset();
    return *this;
  }

  /// The pool for `threads` (already resolved: >= 1).
  ThreadPool& get(int threads) {
    if (!pool_ || pool_->threads() != threads) {
      pool_.reset();  // join the old workers before starting new ones
      pool_ = std::make_unique<ThreadPool>(threads);
    }
    return *pool_;
  }

 private:
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace blockformer::detail

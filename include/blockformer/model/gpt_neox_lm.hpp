// SPDX-License-Identifier: Apache-2.0
#pragma once
// Vanilla GPT-NeoX causal LM (HF GPTNeoXForCausalLM): the paper's baseline.
#include <algorithm>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "blockformer/config.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/model/decode_driver.hpp"
#include "blockformer/model/decoder_stack.hpp"
#include "blockformer/model/weight_source.hpp"
#include "blockformer/scoring.hpp"

namespace blockformer {

template <VanillaConfig C, Backend B>
class GptNeoxLM {
  static_assert(check_config<C>());

 public:
  static constexpr VanillaConfig kConfig = C;
  using Stack = DecoderStack<C.decoder, B>;
  static constexpr int kWidth = C.decoder.width;
  /// Rows per prefill call: large enough for GEMM efficiency, small enough that the workspace
  /// (rows x FFN width floats) stays a few MB.
  static constexpr int kPrefillChunk = 256;

  /// Loads a safetensors checkpoint: a file, a sharded index, or a directory holding either.
  static GptNeoxLM load(const std::filesystem::path& path, const LoadOptions& options = {}) {
    return load_checkpoint<GptNeoxLM>(path, options);
  }
  /// A model with seeded random weights (benchmarks, invariant tests); position_limit as
  /// LoadOptions::position_limit.
  static GptNeoxLM random(std::uint64_t seed, int position_limit = 0) {
    return random_model<GptNeoxLM>(seed, position_limit);
  }

  /// Loads HF key names: gpt_neox.embed_in, gpt_neox.layers.N.*, gpt_neox.final_layer_norm, embed_out.
  template <class Source>
  static GptNeoxLM from_weights(Source& source, int position_limit = 0) {
    const int max_positions = detail::resolve_position_limit(position_limit, C.max_positions, 1);
    GptNeoxLM m{source.template embedding<B>("gpt_neox.embed_in.weight", C.vocab, kWidth),
                Stack::load(source, "gpt_neox.", max_positions),
                source.template linear<B>("embed_out", C.vocab, kWidth, false), max_positions};
    source.finish([](const std::string& key) { return Stack::is_legacy_buffer(key, "gpt_neox."); },
                  [](const io::Checkpoint& c) {
                    return std::vector<std::string>{detail::shape_disagreement(
                        "model", detail::stack_shape_in(c, "gpt_neox."), detail::stack_shape(C.decoder))};
                  });
    return m;
  }

  /// Per-request state: KV cache and scratch for up to max_batch sequences of max_tokens tokens.
  /// Use one session from one thread at a time; the model itself may be shared.
  class Session {
   public:
    Session(const GptNeoxLM& model, int max_batch, int max_tokens, std::uint64_t memory_budget = 0)
        : max_batch_(detail::check_session(max_batch, max_tokens, model.max_positions_, session_bytes(max_batch, max_tokens),
                                           memory_budget)),
          max_tokens_(max_tokens),
          cache_(model.stack_.make_cache(max_batch, max_tokens)),
          workspace_(std::max(kPrefillChunk, max_batch)),
          x_(workspace_.rows(), kWidth),
          hidden_(workspace_.rows(), kWidth),
          last_hidden_(max_batch, kWidth),
          step_(max_batch, C.vocab) {
      chunk_ids_.reserve(workspace_.rows());
    }
    int max_batch() const { return max_batch_; }
    int max_tokens() const { return max_tokens_; }
    std::size_t cache_bytes() const { return cache_.bytes(); }

   private:
    friend class GptNeoxLM;
    int max_batch_, max_tokens_;
    detail::SessionInUse in_use_;
    detail::SessionPool pool_;
    typename B::KvCache cache_;
    typename Stack::Workspace workspace_;
    typename B::Buffer x_, hidden_;   // [rows, H]
    typename B::Buffer last_hidden_;  // [max_batch, H]: newest hidden state of each member of step_
    detail::SamplingStep<B> step_;
    RaggedBatch chunk_;               // the prefill call being made
    std::vector<Token> chunk_ids_;    // [chunk_.rows()]
    std::vector<int> lengths_;        // tokens in each sequence's cache
  };

  /// Tokens a sequence may reach: kConfig.max_positions, or LoadOptions::position_limit past it.
  int max_positions() const { return max_positions_; }

  /// A session for up to max_batch sequences of max_tokens tokens; refused before allocating when
  /// it needs more than memory_budget bytes (0: this machine's physical memory).
  Session make_session(int max_batch, int max_tokens, std::uint64_t memory_budget = 0) const {
    return Session(*this, max_batch, max_tokens, memory_budget);
  }

  /// Bytes a session of this size allocates: the KV cache, the prefill workspace and the logits.
  static std::uint64_t session_bytes(int max_batch, int max_tokens) {
    const std::uint64_t batch = std::uint64_t(max_batch), w = kWidth, f = C.decoder.ffn;
    const std::uint64_t rows = std::max<std::uint64_t>(kPrefillChunk, batch);
    const std::uint64_t cache = 2 * std::uint64_t(C.decoder.layers) * batch * std::uint64_t(max_tokens) * w;
    const std::uint64_t scratch = rows * (5 * w + f) + 2 * rows * w + batch * w + 2 * batch * std::uint64_t(C.vocab);
    return (cache + scratch) * sizeof(float);
  }

  /// Teacher-forced logits [batch, T, V] for ids [batch, T] (row-major). A non-finite logit is an
  /// Error naming where it is. `threads` as GenerateOptions::threads.
  std::vector<float> forward(std::span<const Token> ids, int batch, int threads = 0) const {
    const int resolved = resolve_threads(threads, "forward");
    const int t = check_forward_shape(ids, batch);
    ThreadPool pool(resolved);
    const detail::PoolScope scope(pool);
    std::vector<float> logits(ids.size() * C.vocab);
    std::vector<std::span<const Token>> sequences;
    for (int b = 0; b < batch; ++b) sequences.push_back(ids.subspan(std::size_t(b) * t, t));
    std::size_t row = 0;
    run_sequences(sequences, [&](MatrixView<const float> chunk_logits, const RaggedBatch&) {
      B::download(chunk_logits, std::span(logits).subspan(row * C.vocab, std::size_t(chunk_logits.rows) * C.vocab));
      row += chunk_logits.rows;
    });
    for (std::size_t r = 0; r * C.vocab < logits.size(); ++r)
      detail::require_finite_logits(std::span(logits).subspan(r * C.vocab, C.vocab), [&] {
        return "forward: the logits after ids[" + std::to_string(r / t) + "][" + std::to_string(r % t) + "]";
      });
    return logits;
  }

  /// Log-likelihood of each sequence: every token after the first is scored, so a sequence needs two.
  /// `threads` as GenerateOptions::threads.
  std::vector<SequenceScore> score(std::span<const std::vector<Token>> sequences, int threads = 0) const {
    const int resolved = resolve_threads(threads, "score");
    if (sequences.empty()) return {};  // as the block model: nothing to score, not an error
    detail::check_scorable(sequences, C.vocab, 2, "the first token");
    ThreadPool pool(resolved);
    const detail::PoolScope scope(pool);
    const std::vector<std::span<const Token>> views(sequences.begin(), sequences.end());
    std::vector<SequenceScore> scores(sequences.size());
    std::vector<float> host;
    run_sequences(views, [&](MatrixView<const float> chunk_logits, const RaggedBatch& batch) {
      host.resize(std::size_t(chunk_logits.rows) * C.vocab);
      B::download(chunk_logits, host);
      for (int i = 0; i < batch.sequences(); ++i) {
        const int s = batch.cache_slot[i];
        for (int r = batch.row_begin[i]; r < batch.row_begin[i + 1]; ++r) {
          const int next = batch.positions[r] + 1;
          if (next >= int(views[s].size())) continue;
          const auto logits = std::span<const float>(host).subspan(std::size_t(r) * C.vocab, C.vocab);
          detail::require_finite_logits(logits, [&] {
            return "score: the logits predicting sequence[" + std::to_string(s) + "][" + std::to_string(next) + "]";
          });
          scores[s].nll += detail::token_nll(logits, views[s][next]);
          ++scores[s].tokens;
        }
      }
    });
    return scores;
  }
  /// score() for a braced list of sequences: model.score({{1, 2, 3}}).
  std::vector<SequenceScore> score(std::initializer_list<std::vector<Token>> sequences, int threads = 0) const {
    return score(std::span<const std::vector<Token>>(sequences.begin(), sequences.size()), threads);
  }

  /// Generates for a batch of prompts of any lengths; sequences stop independently.
  std::vector<Generation> generate(Session& ss, std::span<const Request> requests,
                                   const GenerateOptions& options = {}) const {
    detail::validate_requests(requests, C.vocab, max_positions_, ss.max_batch_, ss.max_tokens_,
                              [](int n) { return n; });
    const int threads = resolve_threads(options.threads, "generate");
    const auto busy = ss.in_use_.enter("generate");
    const detail::PoolScope pool(ss.pool_.get(threads));
    detail::GenerationState state(requests, C.vocab, options.on_token);
    ss.lengths_.clear();
    for (const Request& r : requests) ss.lengths_.push_back(int(r.prompt.size()));
    ss.step_.start(state, int(requests.size()));
    prefill(ss, requests);
    while (true) {
      ss.step_.sample(embed_out_, ss.last_hidden_.view(), state, [&](int s) {
        const int index = ss.lengths_[s]++;
        return std::pair{index, index};
      });
      if (ss.step_.members.empty()) break;
      const auto hidden = run_stack(ss, ss.step_.ids, ss.step_.next);
      B::copy(hidden, ss.last_hidden_.view().rows_slice(0, hidden.rows));
    }
    return state.take();
  }

  /// generate() with a session sized for exactly this batch.
  std::vector<Generation> generate(std::span<const Request> requests, const GenerateOptions& options = {}) const {
    const int tokens = detail::session_tokens_for(requests, max_positions_, [](int n) { return n; });
    Session session(*this, std::max<int>(1, int(requests.size())), tokens);
    return generate(session, requests, options);
  }
  /// generate() for a braced list of requests: model.generate({{.prompt = {1, 2}}}).
  std::vector<Generation> generate(Session& ss, std::initializer_list<Request> requests,
                                   const GenerateOptions& options = {}) const {
    return generate(ss, std::span<const Request>(requests.begin(), requests.size()), options);
  }
  std::vector<Generation> generate(std::initializer_list<Request> requests, const GenerateOptions& options = {}) const {
    return generate(std::span<const Request>(requests.begin(), requests.size()), options);
  }

 private:
  int check_forward_shape(std::span<const Token> ids, int batch) const {
    if (batch <= 0 || ids.empty() || ids.size() % batch != 0)
      throw Error("forward: " + std::to_string(ids.size()) + " ids do not form " + std::to_string(batch) + " equal rows");
    const int t = int(ids.size() / batch);
    if (t > max_positions_)
      throw Error("forward: sequence length " + std::to_string(t) + " exceeds max positions " + std::to_string(max_positions_));
    for (std::size_t i = 0; i < ids.size(); ++i)
      detail::check_token(ids[i], C.vocab, "ids[" + std::to_string(i / t) + "][" + std::to_string(i % t) + "]");
    return t;
  }

  /// Embeds `ids` (one per row of `batch`) and runs the stack; returns the final hidden rows.
  MatrixView<float> run_stack(Session& ss, std::span<const Token> ids, const RaggedBatch& batch) const {
    const int rows = batch.rows();
    const auto x = ss.x_.view().rows_slice(0, rows);
    const auto hidden = ss.hidden_.view().rows_slice(0, rows);
    B::gather(embed_in_, ids, x);
    stack_.forward(x, batch, ss.cache_, ss.workspace_, hidden);
    return hidden;
  }

  /// Runs every prompt through the stack; each member's last prompt row is its first hidden state.
  void prefill(Session& ss, std::span<const Request> requests) const {
    detail::for_each_prefill_chunk(ss.lengths_, ss.workspace_.rows(), ss.chunk_, [&](const RaggedBatch& chunk) {
      detail::chunk_ids(chunk, 1, [&](int s) { return std::span<const Token>(requests[s].prompt); }, ss.chunk_ids_);
      const auto hidden = run_stack(ss, ss.chunk_ids_, chunk);
      detail::keep_final_rows(chunk, ss.lengths_, ss.step_, hidden, ss.last_hidden_.view());
    });
  }

  /// Prefills whole sequences chunk by chunk and hands each chunk's logits to fn(logits, batch).
  template <class Fn>
  void run_sequences(std::span<const std::span<const Token>> sequences, Fn&& fn) const {
    int longest = 0;
    std::vector<int> lengths;
    for (std::size_t s = 0; s < sequences.size(); ++s) {
      for (std::size_t i = 0; i < sequences[s].size(); ++i)
        detail::check_token(sequences[s][i], C.vocab, "sequence[" + std::to_string(s) + "][" + std::to_string(i) + "]");
      lengths.push_back(int(sequences[s].size()));
      longest = std::max(longest, lengths.back());
    }
    if (longest > max_positions_)
      throw Error("sequence length " + std::to_string(longest) + " exceeds max positions " + std::to_string(max_positions_));
    Session ss(*this, int(sequences.size()), longest);
    typename B::Buffer logits(ss.workspace_.rows(), C.vocab);
    detail::for_each_prefill_chunk(lengths, ss.workspace_.rows(), ss.chunk_, [&](const RaggedBatch& batch) {
      detail::chunk_ids(batch, 1, [&](int s) { return sequences[s]; }, ss.chunk_ids_);
      const auto hidden = run_stack(ss, ss.chunk_ids_, batch);
      const auto chunk_logits = logits.view().rows_slice(0, batch.rows());
      B::linear(hidden, embed_out_, chunk_logits, Epilogue::kStore);
      fn(MatrixView<const float>(chunk_logits), batch);
    });
  }

  GptNeoxLM(typename B::Embedding embed_in, Stack stack, typename B::Linear embed_out, int max_positions)
      : embed_in_(std::move(embed_in)), stack_(std::move(stack)), embed_out_(std::move(embed_out)),
        max_positions_(max_positions) {}

  typename B::Embedding embed_in_;  // [V, H]
  Stack stack_;
  typename B::Linear embed_out_;    // [V, H], no bias
  int max_positions_;               // the rotary table's length
};

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Vanilla GPT-NeoX causal LM (HF GPTNeoXForCausalLM): the paper's baseline.
#include <algorithm>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blockformer/config.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/model/decoder_stack.hpp"
#include "blockformer/model/prefill.hpp"
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
  /// A model with seeded random weights (benchmarks, invariant tests).
  static GptNeoxLM random(std::uint64_t seed) { return random_model<GptNeoxLM>(seed); }

  /// Loads HF key names: gpt_neox.embed_in, gpt_neox.layers.N.*, gpt_neox.final_layer_norm, embed_out.
  template <class Source>
  static GptNeoxLM from_weights(Source& source) {
    GptNeoxLM m;
    m.embed_in_ = source.template embedding<B>("gpt_neox.embed_in.weight", C.vocab, kWidth);
    m.stack_.emplace(Stack::load(source, "gpt_neox.", C.max_positions));
    m.embed_out_ = source.template linear<B>("embed_out", C.vocab, kWidth, false);
    source.finish([](const std::string& key) { return Stack::is_legacy_buffer(key, "gpt_neox."); });
    return m;
  }

  /// Per-request state: KV cache and scratch for up to max_batch sequences of max_tokens tokens.
  /// Use one session from one thread at a time; the model itself may be shared.
  class Session {
   public:
    Session(const GptNeoxLM& model, int max_batch, int max_tokens)
        : max_batch_(detail::check_session_size(max_batch, "max_batch", 1 << 20)),
          max_tokens_(detail::check_session_size(max_tokens, "max_tokens", C.max_positions)),
          cache_(model.stack_->make_cache(max_batch, max_tokens)),
          workspace_(std::max(kPrefillChunk, max_batch)),
          x_(workspace_.rows(), kWidth),
          hidden_(workspace_.rows(), kWidth),
          last_hidden_(max_batch, kWidth),
          logits_(max_batch, C.vocab),
          host_logits_(std::size_t(max_batch) * C.vocab) {
      ids_.reserve(workspace_.rows());
    }
    int max_batch() const { return max_batch_; }
    int max_tokens() const { return max_tokens_; }
    std::size_t cache_bytes() const { return cache_.bytes(); }

   private:
    friend class GptNeoxLM;
    int max_batch_, max_tokens_;
    typename B::KvCache cache_;
    typename Stack::Workspace workspace_;
    typename B::Buffer x_, hidden_;  // [rows, H]
    typename B::Buffer last_hidden_;  // [max_batch, H]: newest hidden state of each active sequence
    typename B::Buffer logits_;       // [max_batch, V]
    std::vector<float> host_logits_;
    std::vector<Token> ids_;
    std::vector<int> lengths_, active_;
    RaggedBatch batch_;
  };

  Session make_session(int max_batch, int max_tokens) const { return Session(*this, max_batch, max_tokens); }

  /// Teacher-forced logits [batch, T, V] for ids [batch, T] (row-major).
  std::vector<float> forward(std::span<const Token> ids, int batch) const {
    const int t = check_forward_shape(ids, batch);
    std::vector<float> logits(ids.size() * C.vocab);
    std::vector<std::span<const Token>> sequences;
    for (int b = 0; b < batch; ++b) sequences.push_back(ids.subspan(std::size_t(b) * t, t));
    std::size_t row = 0;
    run_sequences(sequences, [&](MatrixView<const float> chunk_logits, const RaggedBatch&) {
      B::download(chunk_logits, std::span(logits).subspan(row * C.vocab, std::size_t(chunk_logits.rows) * C.vocab));
      row += chunk_logits.rows;
    });
    return logits;
  }

  /// Log-likelihood of each sequence: every token after the first is scored.
  std::vector<SequenceScore> score(std::span<const std::vector<Token>> sequences) const {
    std::vector<std::span<const Token>> views;
    for (std::size_t s = 0; s < sequences.size(); ++s) {
      if (sequences[s].empty()) throw Error("sequence " + std::to_string(s) + " is empty");
      views.emplace_back(sequences[s]);
    }
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
          scores[s].nll += detail::token_nll(std::span(host).subspan(std::size_t(r) * C.vocab, C.vocab), views[s][next]);
          ++scores[s].tokens;
        }
      }
    });
    return scores;
  }

  /// Generates for a batch of prompts of any lengths; sequences stop independently.
  std::vector<Generation> generate(Session& session, std::span<const Request> requests,
                                   const GenerateOptions& options = {}) const {
    detail::validate_requests(requests, C.vocab, C.max_positions, session.max_batch_,
                              session.max_tokens_, [](int n) { return n; });
    detail::GenerationState state(requests, C.vocab, options.on_token);
    Session& ss = session;
    ss.lengths_.clear();
    ss.active_.clear();
    for (std::size_t s = 0; s < requests.size(); ++s) {
      ss.lengths_.push_back(int(requests[s].prompt.size()));
      if (!state.finished(int(s))) ss.active_.push_back(int(s));
    }
    // Prefill every prompt; keep the last prompt row's hidden state of each active sequence.
    detail::for_each_prefill_chunk(ss.lengths_, ss.workspace_.rows(), ss.batch_, [&](const RaggedBatch& batch) {
      ss.ids_.clear();
      for (int i = 0; i < batch.sequences(); ++i) {
        const auto& prompt = requests[batch.cache_slot[i]].prompt;
        const int count = batch.row_begin[i + 1] - batch.row_begin[i];
        ss.ids_.insert(ss.ids_.end(), prompt.begin() + batch.cache_begin[i], prompt.begin() + batch.cache_begin[i] + count);
      }
      const auto hidden = run_stack(ss, batch);
      for (int i = 0; i < batch.sequences(); ++i) {
        const int s = batch.cache_slot[i];
        const auto at = std::find(ss.active_.begin(), ss.active_.end(), s);
        if (at == ss.active_.end() || !detail::ends_sequence(batch, i, ss.lengths_[s])) continue;
        B::copy(hidden.rows_slice(batch.row_begin[i + 1] - 1, 1),
                ss.last_hidden_.view().rows_slice(int(at - ss.active_.begin()), 1));
      }
    });
    while (!ss.active_.empty()) {
      const int n = int(ss.active_.size());
      const auto logits = ss.logits_.view().rows_slice(0, n);
      B::linear(ss.last_hidden_.view().rows_slice(0, n), embed_out_, logits, Epilogue::kStore);
      B::download(logits, std::span(ss.host_logits_).first(std::size_t(n) * C.vocab));
      ss.batch_.clear();
      ss.ids_.clear();
      for (int i = 0; i < n; ++i) {
        const int s = ss.active_[i];
        const Token t = state.sample(s, std::span(ss.host_logits_).subspan(std::size_t(i) * C.vocab, C.vocab));
        if (state.finished(s)) continue;
        ss.batch_.add_sequence(s, ss.lengths_[s], 1);
        ss.batch_.positions.push_back(ss.lengths_[s]++);
        ss.ids_.push_back(t);
      }
      ss.active_.assign(ss.batch_.cache_slot.begin(), ss.batch_.cache_slot.end());
      if (ss.active_.empty()) break;
      const auto hidden = run_stack(ss, ss.batch_);
      B::copy(hidden, ss.last_hidden_.view().rows_slice(0, hidden.rows));
    }
    return state.take();
  }

  /// generate() with a session sized for exactly this batch.
  std::vector<Generation> generate(std::span<const Request> requests, const GenerateOptions& options = {}) const {
    const int tokens = detail::session_tokens_for(requests, C.max_positions, [](int n) { return n; });
    Session session(*this, std::max<int>(1, int(requests.size())), tokens);
    return generate(session, requests, options);
  }

 private:
  GptNeoxLM() = default;

  static int check_forward_shape(std::span<const Token> ids, int batch) {
    if (batch <= 0 || ids.empty() || ids.size() % batch != 0)
      throw Error("forward: " + std::to_string(ids.size()) + " ids do not form " + std::to_string(batch) + " equal rows");
    const int t = int(ids.size() / batch);
    if (t > C.max_positions)
      throw Error("forward: sequence length " + std::to_string(t) + " exceeds max positions " + std::to_string(C.max_positions));
    for (std::size_t i = 0; i < ids.size(); ++i)
      detail::check_token(ids[i], C.vocab, "ids[" + std::to_string(i / t) + "][" + std::to_string(i % t) + "]");
    return t;
  }

  /// Embeds session.ids_ (one per row of `batch`) and runs the stack; returns the final hidden rows.
  MatrixView<float> run_stack(Session& ss, const RaggedBatch& batch) const {
    const int rows = batch.rows();
    const auto x = ss.x_.view().rows_slice(0, rows);
    const auto hidden = ss.hidden_.view().rows_slice(0, rows);
    B::gather(embed_in_, ss.ids_, x);
    stack_->forward(x, batch, ss.cache_, ss.workspace_, hidden);
    return hidden;
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
    if (longest > C.max_positions)
      throw Error("sequence length " + std::to_string(longest) + " exceeds max positions " + std::to_string(C.max_positions));
    Session ss(*this, int(sequences.size()), longest);
    typename B::Buffer logits(ss.workspace_.rows(), C.vocab);
    detail::for_each_prefill_chunk(lengths, ss.workspace_.rows(), ss.batch_, [&](const RaggedBatch& batch) {
      ss.ids_.clear();
      for (int i = 0; i < batch.sequences(); ++i) {
        const auto seq = sequences[batch.cache_slot[i]];
        ss.ids_.insert(ss.ids_.end(), seq.begin() + batch.cache_begin[i],
                       seq.begin() + batch.cache_begin[i] + (batch.row_begin[i + 1] - batch.row_begin[i]));
      }
      const auto hidden = run_stack(ss, batch);
      const auto chunk_logits = logits.view().rows_slice(0, batch.rows());
      B::linear(hidden, embed_out_, chunk_logits, Epilogue::kStore);
      fn(MatrixView<const float>(chunk_logits), batch);
    });
  }

  typename B::Embedding embed_in_;
  std::optional<Stack> stack_;
  typename B::Linear embed_out_;
};

}  // namespace blockformer

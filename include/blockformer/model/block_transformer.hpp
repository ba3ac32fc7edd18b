// SPDX-License-Identifier: Apache-2.0
#pragma once
// The Block Transformer (Ho et al., arXiv 2406.02657) as the authors' main models: a lookup
// embedder concatenating each block's L token embeddings, a GPT-NeoX block decoder causal over
// blocks, and a GPT-NeoX token decoder that decodes a block from R prefix vectors expanded
// (Conv1d, kernel 1) from the previous block's context embedding.
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

/// Host copies of every stage of a teacher-forced block forward, for inspection and tests.
struct BlockForwardTrace {
  std::vector<float> block_embeddings;      // [batch, n_blocks, D]
  std::vector<float> block_decoder_hidden;  // [batch, n_blocks, D] after final layer norm
  std::vector<float> prefix;                // [batch, n_blocks - 1, R, h]
  std::vector<float> token_decoder_hidden;  // [batch, n_blocks - 1, L, h] at the L output rows
};

template <BlockConfig C, Backend B>
class BlockTransformer {
  static_assert(check_config<C>());

 public:
  static constexpr BlockConfig kConfig = C;
  using BlockStack = DecoderStack<C.block_decoder, B>;
  using TokenStack = DecoderStack<C.token_decoder, B>;
  static constexpr int kL = C.block_length;
  static constexpr int kR = C.prefix_length;
  static constexpr int kD = C.block_embedding_width();
  static constexpr int kE = C.embedder_width;
  static constexpr int kH = C.token_decoder.width;
  static constexpr int kV = C.vocab;
  static constexpr int kLocal = C.local_length();  // R prefix rows + L-1 fed tokens
  /// Blocks per block-decoder prefill call (bounds the session workspace, keeps GEMMs tall).
  static constexpr int kPrefillChunk = 256;

  /// Loads a safetensors checkpoint: a file, a sharded index, or a directory holding either.
  static BlockTransformer load(const std::filesystem::path& path, const LoadOptions& options = {}) {
    return load_checkpoint<BlockTransformer>(path, options);
  }
  /// A model with seeded random weights (benchmarks, invariant tests).
  static BlockTransformer random(std::uint64_t seed) { return random_model<BlockTransformer>(seed); }

  /// Loads the authors' BlockTransformer state dict (see tests/data/FIXTURES.md section 2.2).
  template <class Source>
  static BlockTransformer from_weights(Source& source) {
    BlockTransformer m;
    m.embedder_ = source.template embedding<B>("embedder.embeddings.weight", kV, kE);
    m.block_.emplace(BlockStack::load(source, "block_decoder.gpt_neox.", C.max_blocks()));
    m.expansion_ = source.template conv1x1<B>("token_decoder.expansion_layer", kR * kH, kD);
    m.token_embed_ = source.template embedding<B>("token_decoder.gpt_neox.embed_in.weight", kV, kH);
    m.token_.emplace(TokenStack::load(source, "token_decoder.gpt_neox.", kLocal));
    m.embed_out_ = source.template linear<B>("token_decoder.embed_out", kV, kH, false);
    source.finish([](const std::string& key) {
      return key == "block_decoder.gpt_neox.embed_in.weight" ||  // unused: fed inputs_embeds
             BlockStack::is_legacy_buffer(key, "block_decoder.gpt_neox.") ||
             TokenStack::is_legacy_buffer(key, "token_decoder.gpt_neox.");
    });
    return m;
  }

  /// Tokens a prompt of n tokens occupies once left-padded with id 0 to a block boundary.
  static constexpr int padded_length(int n) { return (n + kL - 1) / kL * kL; }

  /// Per-request state: both KV caches and scratch for up to max_batch sequences of max_tokens
  /// (padded prompt + generated) tokens. One thread at a time; the model may be shared.
  class Session {
   public:
    Session(const BlockTransformer& model, int max_batch, int max_tokens)
        : max_batch_(detail::check_session_size(max_batch, "max_batch", 1 << 20)),
          capacity_tokens_(padded_length(detail::check_session_size(max_tokens, "max_tokens", C.max_positions))),
          block_cache_(model.block_->make_cache(max_batch, capacity_tokens_ / kL)),
          token_cache_(model.token_->make_cache(max_batch, kLocal)),
          block_workspace_(std::max(kPrefillChunk, max_batch)),
          token_workspace_(max_batch * kR),
          block_x_(block_workspace_.rows(), kD),
          block_hidden_(block_workspace_.rows(), kD),
          context_(max_batch, kD),
          token_x_(max_batch * kR, kH),
          token_hidden_(max_batch * kR, kH),
          last_hidden_(max_batch, kH),
          logits_(max_batch, kV),
          host_logits_(std::size_t(max_batch) * kV) {
      ids_.reserve(std::size_t(block_workspace_.rows()) * kL);
    }
    int max_batch() const { return max_batch_; }
    int capacity_tokens() const { return capacity_tokens_; }
    std::size_t cache_bytes() const { return block_cache_.bytes() + token_cache_.bytes(); }

   private:
    friend class BlockTransformer;
    int max_batch_, capacity_tokens_;
    typename B::KvCache block_cache_, token_cache_;
    typename BlockStack::Workspace block_workspace_;
    typename TokenStack::Workspace token_workspace_;
    typename B::Buffer block_x_, block_hidden_;  // [rows, D]
    typename B::Buffer context_;                 // [max_batch, D]: newest block-decoder output per active sequence
    typename B::Buffer token_x_, token_hidden_;  // [max_batch * R, h]
    typename B::Buffer last_hidden_;             // [max_batch, h]: token-decoder output to predict from
    typename B::Buffer logits_;                  // [max_batch, V]
    std::vector<float> host_logits_;
    std::vector<std::vector<Token>> padded_;
    std::vector<Token> ids_;
    std::vector<int> blocks_, active_, members_;
    RaggedBatch batch_;
  };

  Session make_session(int max_batch, int max_tokens) const { return Session(*this, max_batch, max_tokens); }

  /// Teacher-forced logits in the authors' layout [batch, n_blocks - 1, L, V] for ids
  /// [batch, n_blocks * L]: block i's context predicts the L tokens of block i + 1.
  std::vector<float> forward(std::span<const Token> ids, int batch, BlockForwardTrace* trace = nullptr) const {
    if (batch <= 0 || ids.empty() || ids.size() % batch != 0)
      throw Error("forward: " + std::to_string(ids.size()) + " ids do not form " + std::to_string(batch) + " equal rows");
    const int n = int(ids.size() / batch);
    if (n % kL != 0 || n < 2 * kL)
      throw Error("forward: row length " + std::to_string(n) + " must be a multiple of block_length " +
                  std::to_string(kL) + " and at least 2 blocks");
    if (n > C.max_positions)
      throw Error("forward: row length " + std::to_string(n) + " exceeds max positions " + std::to_string(C.max_positions));
    for (std::size_t i = 0; i < ids.size(); ++i)
      detail::check_token(ids[i], kV, "ids[" + std::to_string(i / n) + "][" + std::to_string(i % n) + "]");
    const int nb = n / kL, targets = nb - 1, local = batch * targets;

    // Block decoder over all blocks: the concat embedder is a reshape of the token lookups.
    typename B::Buffer block_x(batch * nb, kD), block_hidden(batch * nb, kD);
    B::gather(embedder_, ids, block_x.view().reshape(kE));
    if (trace) trace->block_embeddings = to_host(block_x.view());
    const RaggedBatch blocks = RaggedBatch::uniform(batch, nb);
    auto block_cache = block_->make_cache(batch, nb);
    typename BlockStack::Workspace block_ws(batch * nb);
    block_->forward(block_x.view(), blocks, block_cache, block_ws, block_hidden.view());
    if (trace) trace->block_decoder_hidden = to_host(block_hidden.view());

    // Token decoder input per target block: R prefix vectors from the previous block's context,
    // then the target block's first L-1 tokens.
    typename B::Buffer prefix(batch * nb, kR * kH), token_x(local, kLocal * kH);
    B::linear(block_hidden.view(), expansion_, prefix.view(), Epilogue::kStore);
    for (int b = 0; b < batch; ++b)
      B::copy(prefix.view().rows_slice(b * nb, targets), token_x.view().rows_slice(b * targets, targets).cols_slice(0, kR * kH));
    std::vector<Token> fed;
    for (int b = 0; b < batch; ++b)
      for (int j = 1; j < nb; ++j)
        fed.insert(fed.end(), ids.begin() + std::size_t(b) * n + j * kL, ids.begin() + std::size_t(b) * n + j * kL + kL - 1);
    typename B::Buffer fed_x(local * (kL - 1), kH);
    B::gather(token_embed_, fed, fed_x.view());
    B::copy(fed_x.view().reshape((kL - 1) * kH), token_x.view().cols_slice(kR * kH, (kL - 1) * kH));
    if (trace) trace->prefix = to_host(token_x.view().cols_slice(0, kR * kH));

    const RaggedBatch locals = RaggedBatch::uniform(local, kLocal);
    auto token_cache = token_->make_cache(local, kLocal);
    typename TokenStack::Workspace token_ws(local * kLocal);
    typename B::Buffer token_hidden(local * kLocal, kH), outputs(local, kL * kH), logits(local * kL, kV);
    token_->forward(token_x.view().reshape(kH), locals, token_cache, token_ws, token_hidden.view());
    // Rows R-1 .. R+L-2 predict the block's L tokens; the earlier prefix rows predict nothing.
    B::copy(token_hidden.view().reshape(kLocal * kH).cols_slice((kR - 1) * kH, kL * kH), outputs.view());
    if (trace) trace->token_decoder_hidden = to_host(outputs.view());
    B::linear(outputs.view().reshape(kH), embed_out_, logits.view(), Epilogue::kStore);
    return to_host(logits.view());
  }

  /// Log-likelihood of each sequence, left-padded to a block boundary as in generation. The first
  /// block is context only, so its tokens are not scored.
  std::vector<SequenceScore> score(std::span<const std::vector<Token>> sequences) const {
    std::vector<SequenceScore> scores(sequences.size());
    for (std::size_t s = 0; s < sequences.size(); ++s) {
      if (sequences[s].empty()) throw Error("sequence " + std::to_string(s) + " is empty");
      const std::vector<Token> padded = left_pad(sequences[s]);
      if (padded.size() < 2 * kL) continue;
      const std::vector<float> logits = forward(padded, 1);
      for (std::size_t t = kL; t < padded.size(); ++t)
        scores[s].nll += detail::token_nll(std::span(logits).subspan((t - kL) * kV, kV), padded[t]);
      scores[s].tokens = int(padded.size()) - kL;
    }
    return scores;
  }

  /// Generates for a batch of prompts of any lengths; each is left-padded with id 0 to a block
  /// boundary, and sequences stop independently (max_new_tokens, eos, callback).
  std::vector<Generation> generate(Session& ss, std::span<const Request> requests,
                                   const GenerateOptions& options = {}) const {
    detail::validate_requests(requests, kV, C.max_positions, ss.max_batch_, ss.capacity_tokens_, padded_length);
    detail::GenerationState state(requests, kV, options.on_token);
    const bool authors_positions = options.token_positions == TokenPositions::kAuthorsGenerate;
    ss.padded_.resize(requests.size());
    ss.blocks_.clear();
    ss.active_.clear();
    for (std::size_t s = 0; s < requests.size(); ++s) {
      ss.padded_[s] = left_pad(requests[s].prompt);
      ss.blocks_.push_back(int(ss.padded_[s].size()) / kL);
      if (!state.finished(int(s))) ss.active_.push_back(int(s));
    }

    // Prefill the block decoder; keep each active sequence's last-block context.
    detail::for_each_prefill_chunk(ss.blocks_, ss.block_workspace_.rows(), ss.batch_, [&](const RaggedBatch& batch) {
      ss.ids_.clear();
      for (int i = 0; i < batch.sequences(); ++i) {
        const auto& padded = ss.padded_[batch.cache_slot[i]];
        const int count = batch.row_begin[i + 1] - batch.row_begin[i];
        ss.ids_.insert(ss.ids_.end(), padded.begin() + batch.cache_begin[i] * kL,
                       padded.begin() + (batch.cache_begin[i] + count) * kL);
      }
      const int rows = batch.rows();
      const auto x = ss.block_x_.view().rows_slice(0, rows);
      const auto hidden = ss.block_hidden_.view().rows_slice(0, rows);
      B::gather(embedder_, ss.ids_, x.reshape(kE));
      block_->forward(x, batch, ss.block_cache_, ss.block_workspace_, hidden);
      for (int i = 0; i < batch.sequences(); ++i) {
        const int s = batch.cache_slot[i];
        const auto at = std::find(ss.active_.begin(), ss.active_.end(), s);
        if (at == ss.active_.end() || !detail::ends_sequence(batch, i, ss.blocks_[s])) continue;
        B::copy(hidden.rows_slice(batch.row_begin[i + 1] - 1, 1), ss.context_.view().rows_slice(int(at - ss.active_.begin()), 1));
      }
    });

    while (!ss.active_.empty()) {
      const int n = int(ss.active_.size());
      // Token decoder, step 0: the R prefix vectors of every active sequence.
      const auto prefix = ss.token_x_.view().rows_slice(0, n * kR);
      B::linear(ss.context_.view().rows_slice(0, n), expansion_, prefix.reshape(kR * kH), Epilogue::kStore);
      ss.batch_.clear();
      for (int s : ss.active_) {
        ss.batch_.add_sequence(s, 0, kR);
        for (int p = 0; p < kR; ++p) ss.batch_.positions.push_back(authors_positions ? 0 : p);
      }
      const auto prefix_hidden = ss.token_hidden_.view().rows_slice(0, n * kR);
      token_->forward(prefix, ss.batch_, ss.token_cache_, ss.token_workspace_, prefix_hidden);
      B::copy(prefix_hidden.reshape(kR * kH).cols_slice((kR - 1) * kH, kH), ss.last_hidden_.view().rows_slice(0, n));

      ss.members_ = ss.active_;
      for (int k = 0;; ++k) {
        const int m = int(ss.members_.size());
        const auto logits = ss.logits_.view().rows_slice(0, m);
        B::linear(ss.last_hidden_.view().rows_slice(0, m), embed_out_, logits, Epilogue::kStore);
        B::download(logits, std::span(ss.host_logits_).first(std::size_t(m) * kV));
        ss.batch_.clear();
        ss.ids_.clear();
        for (int i = 0; i < m; ++i) {
          const int s = ss.members_[i];
          const Token t = state.sample(s, std::span(ss.host_logits_).subspan(std::size_t(i) * kV, kV));
          if (state.finished(s)) continue;
          ss.batch_.add_sequence(s, kR + k, 1);
          ss.batch_.positions.push_back(authors_positions ? k + 1 : kR + k);
          ss.ids_.push_back(t);
        }
        ss.members_.assign(ss.batch_.cache_slot.begin(), ss.batch_.cache_slot.end());
        if (k == kL - 1 || ss.members_.empty()) break;
        // Token decoder, step k+1: feed the token just sampled.
        const int fed = int(ss.members_.size());
        const auto x = ss.token_x_.view().rows_slice(0, fed);
        B::gather(token_embed_, ss.ids_, x);
        token_->forward(x, ss.batch_, ss.token_cache_, ss.token_workspace_, ss.last_hidden_.view().rows_slice(0, fed));
      }

      // Sequences that go on feed their new block to the block decoder for the next context.
      ss.batch_.clear();
      ss.ids_.clear();
      for (int s : ss.members_) {
        ss.batch_.add_sequence(s, ss.blocks_[s], 1);
        ss.batch_.positions.push_back(ss.blocks_[s]++);
        const auto& tokens = state.tokens(s);
        ss.ids_.insert(ss.ids_.end(), tokens.end() - kL, tokens.end());
      }
      ss.active_ = ss.members_;
      if (ss.active_.empty()) break;
      const int rows = int(ss.active_.size());
      const auto x = ss.block_x_.view().rows_slice(0, rows);
      B::gather(embedder_, ss.ids_, x.reshape(kE));
      block_->forward(x, ss.batch_, ss.block_cache_, ss.block_workspace_, ss.context_.view().rows_slice(0, rows));
    }
    return state.take();
  }

  /// generate() with a session sized for exactly this batch.
  std::vector<Generation> generate(std::span<const Request> requests, const GenerateOptions& options = {}) const {
    Session session(*this, std::max<int>(1, int(requests.size())),
                    detail::session_tokens_for(requests, C.max_positions, padded_length));
    return generate(session, requests, options);
  }

 private:
  BlockTransformer() = default;

  static std::vector<Token> left_pad(const std::vector<Token>& prompt) {
    std::vector<Token> padded(padded_length(int(prompt.size())) - prompt.size(), Token{0});
    padded.insert(padded.end(), prompt.begin(), prompt.end());
    return padded;
  }

  static std::vector<float> to_host(MatrixView<const float> v) {
    std::vector<float> host(std::size_t(v.rows) * v.cols);
    B::download(v, host);
    return host;
  }

  typename B::Embedding embedder_;     // [V, e]
  std::optional<BlockStack> block_;
  typename B::Linear expansion_;       // [R * h, D]: Conv1d kernel 1 as a linear map
  typename B::Embedding token_embed_;  // [V, h]
  std::optional<TokenStack> token_;
  typename B::Linear embed_out_;       // [V, h], no bias
};

}  // namespace blockformer

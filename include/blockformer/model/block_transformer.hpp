// SPDX-License-Identifier: Apache-2.0
#pragma once
// The Block Transformer (Ho et al., arXiv 2406.02657) as the authors' main models: a lookup
// embedder concatenating each block's L token embeddings, a GPT-NeoX block decoder causal over
// blocks, and a GPT-NeoX token decoder that decodes a block from R prefix vectors expanded
// (Conv1d, kernel 1) from the previous block's context embedding.
#include <algorithm>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "blockformer/config.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/model/decode_driver.hpp"
#include "blockformer/model/decoder_stack.hpp"
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
  /// A model with seeded random weights (benchmarks, invariant tests); position_limit as
  /// LoadOptions::position_limit.
  static BlockTransformer random(std::uint64_t seed, int position_limit = 0) {
    return random_model<BlockTransformer>(seed, position_limit);
  }

  /// Loads the authors' BlockTransformer state dict (see tests/data/FIXTURES.md section 2.2).
  template <class Source>
  static BlockTransformer from_weights(Source& source, int position_limit = 0) {
    const int max_positions = detail::resolve_position_limit(position_limit, C.max_positions, kL);
    BlockTransformer m{max_positions,
                       source.template embedding<B>("embedder.embeddings.weight", kV, kE),
                       BlockStack::load(source, "block_decoder.gpt_neox.", max_positions / kL),
                       source.template conv1x1<B>("token_decoder.expansion_layer", kR * kH, kD),
                       source.template embedding<B>("token_decoder.gpt_neox.embed_in.weight", kV, kH),
                       TokenStack::load(source, "token_decoder.gpt_neox.", kLocal),
                       source.template linear<B>("token_decoder.embed_out", kV, kH, false)};
    source.finish([](const std::string& key) {
      return key == "block_decoder.gpt_neox.embed_in.weight" ||  // unused: fed inputs_embeds
             BlockStack::is_legacy_buffer(key, "block_decoder.gpt_neox.") ||
             TokenStack::is_legacy_buffer(key, "token_decoder.gpt_neox.");
    }, [](const io::Checkpoint& c) {
      return std::vector<std::string>{
          detail::shape_disagreement("block decoder", detail::stack_shape_in(c, "block_decoder.gpt_neox."),
                                     detail::stack_shape(C.block_decoder)),
          detail::shape_disagreement("token decoder", detail::stack_shape_in(c, "token_decoder.gpt_neox."),
                                     detail::stack_shape(C.token_decoder))};
    });
    return m;
  }

  /// Tokens a prompt of n tokens occupies once left-padded with id 0 to a block boundary.
  static constexpr int padded_length(int n) { return (n + kL - 1) / kL * kL; }

  /// Per-request state: both KV caches and scratch for up to max_batch sequences of max_tokens
  /// (padded prompt + generated) tokens. One thread at a time; the model may be shared.
  class Session {
   public:
    Session(const BlockTransformer& model, int max_batch, int max_tokens, std::uint64_t memory_budget = 0)
        : max_batch_(detail::check_session(max_batch, max_tokens, model.max_positions_, session_bytes(max_batch, max_tokens),
                                           memory_budget)),
          capacity_tokens_(padded_length(max_tokens)),
          block_cache_(model.block_.make_cache(max_batch, capacity_tokens_ / kL)),
          token_cache_(model.token_.make_cache(max_batch, kLocal)),
          block_workspace_(std::max(kPrefillChunk, max_batch)),
          token_workspace_(max_batch * kR),
          block_x_(block_workspace_.rows(), kD),
          block_hidden_(block_workspace_.rows(), kD),
          context_(max_batch, kD),
          token_x_(max_batch * kR, kH),
          token_hidden_(max_batch * kR, kH),
          last_hidden_(max_batch, kH),
          step_(max_batch, kV) {
      block_ids_.reserve(std::size_t(block_workspace_.rows()) * kL);
    }
    int max_batch() const { return max_batch_; }
    int capacity_tokens() const { return capacity_tokens_; }
    std::size_t cache_bytes() const { return block_cache_.bytes() + token_cache_.bytes(); }

   private:
    friend class BlockTransformer;
    int max_batch_, capacity_tokens_;
    detail::SessionInUse in_use_;
    detail::SessionPool pool_;
    typename B::KvCache block_cache_, token_cache_;
    typename BlockStack::Workspace block_workspace_;
    typename TokenStack::Workspace token_workspace_;
    typename B::Buffer block_x_, block_hidden_;  // [rows, D]
    typename B::Buffer context_;                 // [max_batch, D]: newest block-decoder output of each member
    typename B::Buffer token_x_, token_hidden_;  // [max_batch * R, h]
    typename B::Buffer last_hidden_;             // [max_batch, h]: token-decoder output each member samples from
    detail::SamplingStep<B> step_;
    RaggedBatch batch_;                          // the block-decoder or prefix call being made
    std::vector<Token> block_ids_;               // [batch_.rows() * L]: the tokens of its blocks
    std::vector<std::vector<Token>> padded_;     // each prompt, left-padded to whole blocks
    std::vector<int> blocks_;                    // blocks in each sequence's block-decoder cache
  };

  /// Tokens a sequence may reach: kConfig.max_positions, or LoadOptions::position_limit past it.
  int max_positions() const { return max_positions_; }

  /// A session for up to max_batch sequences of max_tokens tokens; refused before allocating when
  /// it needs more than memory_budget bytes (0: this machine's physical memory).
  Session make_session(int max_batch, int max_tokens, std::uint64_t memory_budget = 0) const {
    return Session(*this, max_batch, max_tokens, memory_budget);
  }

  /// Bytes a session of this size allocates: both KV caches, both workspaces and the logits.
  static std::uint64_t session_bytes(int max_batch, int max_tokens) {
    const std::uint64_t batch = std::uint64_t(max_batch), d = kD, h = kH;
    const std::uint64_t blocks = std::uint64_t(padded_length(std::max(max_tokens, 0)) / kL);
    const std::uint64_t block_rows = std::max<std::uint64_t>(kPrefillChunk, batch), token_rows = batch * kR;
    const std::uint64_t caches = 2 * std::uint64_t(C.block_decoder.layers) * batch * blocks * d +
                                 2 * std::uint64_t(C.token_decoder.layers) * batch * kLocal * h;
    const std::uint64_t scratch = block_rows * (5 * d + std::uint64_t(C.block_decoder.ffn)) + 2 * block_rows * d +
                                  token_rows * (5 * h + std::uint64_t(C.token_decoder.ffn)) + 2 * token_rows * h +
                                  batch * (d + h) + 2 * batch * std::uint64_t(kV);
    return (caches + scratch) * sizeof(float);
  }

  /// Teacher-forced logits in the authors' layout [batch, n_blocks - 1, L, V] for ids
  /// [batch, n_blocks * L]: block i's context predicts the L tokens of block i + 1.
  /// A non-finite logit is an Error naming where it is. `threads` as GenerateOptions::threads.
  std::vector<float> forward(std::span<const Token> ids, int batch, BlockForwardTrace* trace = nullptr,
                             int threads = 0) const {
    ThreadPool pool(resolve_threads(threads, "forward"));
    const detail::PoolScope scope(pool);
    std::vector<float> logits = teacher_forced_logits(ids, batch, trace);
    const std::size_t n = ids.size() / batch, targets = n / kL - 1;
    for (std::size_t row = 0; row * kV < logits.size(); ++row)
      detail::require_finite_logits(std::span(logits).subspan(row * kV, kV), [&] {
        const std::size_t b = row / (targets * kL), t = kL + row % (targets * kL);
        return "forward: the logits predicting ids[" + std::to_string(b) + "][" + std::to_string(t) + "]";
      });
    return logits;
  }

  /// Log-likelihood of each sequence, laid out in blocks by `padding` (the preset's
  /// score_padding unless given): kLeft left-pads with id 0 to a block boundary as generation does;
  /// kRight starts at a block boundary and right-pads the last block with id 1, unscored (the
  /// authors' nopad evaluation). The first block is context only, so its tokens are not scored and
  /// a sequence needs more than L tokens. `threads` as GenerateOptions::threads.
  std::vector<SequenceScore> score(std::span<const std::vector<Token>> sequences,
                                   BlockPadding padding = C.score_padding, int threads = 0) const {
    const int resolved = resolve_threads(threads, "score");
    const bool left = padding == BlockPadding::kLeft;
    detail::check_scorable(sequences, kV, kL + 1,
                           "the first block (" + std::to_string(kL) + (left ? " tokens, left-padded)" : " tokens)"));
    std::vector<SequenceScore> scores(sequences.size());
    ThreadPool pool(resolved);
    const detail::PoolScope scope(pool);
    for (std::size_t s = 0; s < sequences.size(); ++s) {
      std::vector<Token> padded = left ? left_pad(sequences[s]) : sequences[s];
      const std::size_t pad = left ? padded.size() - sequences[s].size() : 0;
      const std::size_t scored_end = pad + sequences[s].size();
      padded.resize(std::size_t(padded_length(int(padded.size()))), Token{1});  // kRight's masked pad
      const std::vector<float> logits = teacher_forced_logits(padded, 1, nullptr);
      for (std::size_t t = kL; t < scored_end; ++t) {
        const auto row = std::span(logits).subspan((t - kL) * kV, kV);
        detail::require_finite_logits(row, [&] {
          return "score: the logits predicting sequence[" + std::to_string(s) + "][" + std::to_string(t - pad) + "]";
        });
        scores[s].nll += detail::token_nll(row, padded[t]);
      }
      scores[s].tokens = int(scored_end) - kL;
    }
    return scores;
  }
  /// score() for a braced list of sequences: model.score({{1, 2, 3, 4, 5}}).
  std::vector<SequenceScore> score(std::initializer_list<std::vector<Token>> sequences,
                                   BlockPadding padding = C.score_padding, int threads = 0) const {
    return score(std::span<const std::vector<Token>>(sequences.begin(), sequences.size()), padding, threads);
  }

  /// Generates for a batch of prompts of any lengths; each is left-padded with id 0 to a block
  /// boundary, and sequences stop independently (max_new_tokens, eos, callback).
  std::vector<Generation> generate(Session& ss, std::span<const Request> requests,
                                   const GenerateOptions& options = {}) const {
    detail::validate_requests(requests, kV, max_positions_, ss.max_batch_, ss.capacity_tokens_, padded_length);
    const int threads = resolve_threads(options.threads, "generate");
    const auto busy = ss.in_use_.enter("generate");
    const detail::PoolScope pool(ss.pool_.get(threads));
    detail::GenerationState state(requests, kV, options.on_token);
    ss.padded_.resize(requests.size());
    ss.blocks_.clear();
    for (std::size_t s = 0; s < requests.size(); ++s) {
      ss.padded_[s] = left_pad(requests[s].prompt);
      ss.blocks_.push_back(int(ss.padded_[s].size()) / kL);
    }
    ss.step_.start(state, int(requests.size()));
    prefill_blocks(ss);
    while (!ss.step_.members.empty()) {
      decode_block(ss, state, options.token_positions == TokenPositions::kAuthorsGenerate);
      if (ss.step_.members.empty()) break;
      advance_context(ss, state);
    }
    return state.take();
  }

  /// generate() with a session sized for exactly this batch.
  std::vector<Generation> generate(std::span<const Request> requests, const GenerateOptions& options = {}) const {
    Session session(*this, std::max<int>(1, int(requests.size())),
                    detail::session_tokens_for(requests, max_positions_, padded_length));
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
  BlockTransformer(int max_positions, typename B::Embedding embedder, BlockStack block, typename B::Linear expansion,
                   typename B::Embedding token_embed, TokenStack token, typename B::Linear embed_out)
      : max_positions_(max_positions), embedder_(std::move(embedder)), block_(std::move(block)), expansion_(std::move(expansion)),
        token_embed_(std::move(token_embed)), token_(std::move(token)), embed_out_(std::move(embed_out)) {}

  /// Generation, step 1: every padded prompt's blocks through the block decoder; each member's
  /// last-block output is its first context.
  void prefill_blocks(Session& ss) const {
    detail::for_each_prefill_chunk(ss.blocks_, ss.block_workspace_.rows(), ss.batch_, [&](const RaggedBatch& chunk) {
      detail::chunk_ids(chunk, kL, [&](int s) { return std::span<const Token>(ss.padded_[s]); }, ss.block_ids_);
      const auto x = ss.block_x_.view().rows_slice(0, chunk.rows());
      const auto hidden = ss.block_hidden_.view().rows_slice(0, chunk.rows());
      B::gather(embedder_, ss.block_ids_, x.reshape(kE));
      block_.forward(x, chunk, ss.block_cache_, ss.block_workspace_, hidden);
      detail::keep_final_rows(chunk, ss.blocks_, ss.step_, hidden, ss.context_.view());
    });
  }

  /// Step 2: the token decoder writes one block for every member: R prefix rows expanded from its
  /// context (a fresh local cache), then L sampled tokens, each fed back. Members that finish
  /// drop out of step_.
  void decode_block(Session& ss, detail::GenerationState& state, bool authors_positions) const {
    detail::SamplingStep<B>& step = ss.step_;
    const int n = int(step.members.size());
    const auto prefix = ss.token_x_.view().rows_slice(0, n * kR);
    B::linear(ss.context_.view().rows_slice(0, n), expansion_, prefix.reshape(kR * kH), Epilogue::kStore);
    ss.batch_.clear();
    for (int s : step.members) {
      ss.batch_.add_sequence(s, 0, kR);
      for (int p = 0; p < kR; ++p) ss.batch_.positions.push_back(authors_positions ? 0 : p);
    }
    const auto prefix_hidden = ss.token_hidden_.view().rows_slice(0, n * kR);
    token_.forward(prefix, ss.batch_, ss.token_cache_, ss.token_workspace_, prefix_hidden);
    // The last prefix row predicts the block's first token.
    B::copy(prefix_hidden.reshape(kR * kH).cols_slice((kR - 1) * kH, kH), ss.last_hidden_.view().rows_slice(0, n));
    for (int k = 0;; ++k) {
      step.sample(embed_out_, ss.last_hidden_.view(), state,
                  [&](int) { return std::pair{kR + k, authors_positions ? k + 1 : kR + k}; });
      if (k == kL - 1 || step.members.empty()) return;
      const auto x = ss.token_x_.view().rows_slice(0, step.next.rows());
      B::gather(token_embed_, step.ids, x);
      token_.forward(x, step.next, ss.token_cache_, ss.token_workspace_, ss.last_hidden_.view().rows_slice(0, x.rows));
    }
  }

  /// Step 3: each member's new block through the block decoder, one row each: the next context.
  void advance_context(Session& ss, const detail::GenerationState& state) const {
    ss.batch_.clear();
    ss.block_ids_.clear();
    for (int s : ss.step_.members) {
      ss.batch_.add_sequence(s, ss.blocks_[s], 1);
      ss.batch_.positions.push_back(ss.blocks_[s]++);
      const std::vector<Token>& tokens = state.tokens(s);
      ss.block_ids_.insert(ss.block_ids_.end(), tokens.end() - kL, tokens.end());
    }
    const auto x = ss.block_x_.view().rows_slice(0, ss.batch_.rows());
    B::gather(embedder_, ss.block_ids_, x.reshape(kE));
    block_.forward(x, ss.batch_, ss.block_cache_, ss.block_workspace_, ss.context_.view().rows_slice(0, x.rows));
  }

  /// forward() without the finiteness check, which forward and score make in their own terms.
  std::vector<float> teacher_forced_logits(std::span<const Token> ids, int batch, BlockForwardTrace* trace) const {
    if (batch <= 0 || ids.empty() || ids.size() % batch != 0)
      throw Error("forward: " + std::to_string(ids.size()) + " ids do not form " + std::to_string(batch) + " equal rows");
    const int n = int(ids.size() / batch);
    if (n % kL != 0 || n < 2 * kL)
      throw Error("forward: row length " + std::to_string(n) + " must be a multiple of block_length " +
                  std::to_string(kL) + " and at least 2 blocks");
    if (n > max_positions_)
      throw Error("forward: row length " + std::to_string(n) + " exceeds max positions " + std::to_string(max_positions_));
    for (std::size_t i = 0; i < ids.size(); ++i)
      detail::check_token(ids[i], kV, "ids[" + std::to_string(i / n) + "][" + std::to_string(i % n) + "]");
    const int nb = n / kL, targets = nb - 1, local = batch * targets;

    // Block decoder over all blocks: the concat embedder is a reshape of the token lookups.
    typename B::Buffer block_x(batch * nb, kD), block_hidden(batch * nb, kD);
    B::gather(embedder_, ids, block_x.view().reshape(kE));
    if (trace) trace->block_embeddings = to_host(block_x.view());
    const RaggedBatch blocks = RaggedBatch::uniform(batch, nb);
    auto block_cache = block_.make_cache(batch, nb);
    typename BlockStack::Workspace block_ws(batch * nb);
    block_.forward(block_x.view(), blocks, block_cache, block_ws, block_hidden.view());
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
    auto token_cache = token_.make_cache(local, kLocal);
    typename TokenStack::Workspace token_ws(local * kLocal);
    typename B::Buffer token_hidden(local * kLocal, kH), outputs(local, kL * kH), logits(local * kL, kV);
    token_.forward(token_x.view().reshape(kH), locals, token_cache, token_ws, token_hidden.view());
    // Rows R-1 .. R+L-2 predict the block's L tokens; the earlier prefix rows predict nothing.
    B::copy(token_hidden.view().reshape(kLocal * kH).cols_slice((kR - 1) * kH, kL * kH), outputs.view());
    if (trace) trace->token_decoder_hidden = to_host(outputs.view());
    B::linear(outputs.view().reshape(kH), embed_out_, logits.view(), Epilogue::kStore);
    return to_host(logits.view());
  }


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

  int max_positions_;                  // tokens; the block decoder's rotary table has max_positions_ / L
  typename B::Embedding embedder_;     // [V, e]
  BlockStack block_;
  typename B::Linear expansion_;       // [R * h, D]: Conv1d kernel 1 as a linear map
  typename B::Embedding token_embed_;  // [V, h]
  TokenStack token_;
  typename B::Linear embed_out_;       // [V, h], no bias
};

}  // namespace blockformer

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Model architectures as compile-time values: one aggregate per model family, used as a
// class-type template argument (template <BlockConfig C>). Derived sizes are constexpr members;
// validity is checked by static_asserts in check_config(), which say what to change.
#include <cstddef>
#include <ostream>

namespace blockformer {

/// One GPT-NeoX stack (HF GPTNeoXConfig fields that shape the computation).
struct DecoderConfig {
  int layers = 0;
  int width = 0;             // hidden size H
  int heads = 0;
  int ffn = 0;               // intermediate size I
  int rotary_dims = 0;       // per head: int(head_dim * rotary_pct)
  float rotary_base = 10000.0f;
  float layer_norm_eps = 1e-5f;
  bool parallel_residual = true;

  constexpr int head_dim() const { return heads > 0 ? width / heads : 0; }
  /// Parameters of the layer stack and final layer norm (no embeddings).
  constexpr std::size_t stack_parameters() const {
    const std::size_t h = width, i = ffn;
    const std::size_t per_layer = 4 * h /*two layer norms*/ + 3 * h * h + 3 * h + h * h + h +
                                  i * h + i + h * i + h;
    return per_layer * layers + 2 * h;
  }
  constexpr bool operator==(const DecoderConfig&) const = default;
};

/// Vanilla GPT-NeoX causal LM (HF GPTNeoXForCausalLM, untied embed_out).
struct VanillaConfig {
  int vocab = 0;
  int max_positions = 2048;  // trained context length in tokens
  DecoderConfig decoder{};

  constexpr std::size_t parameters() const {
    return 2 * static_cast<std::size_t>(vocab) * decoder.width + decoder.stack_parameters();
  }
  constexpr bool operator==(const VanillaConfig&) const = default;
};

/// Block Transformer with a lookup (concat) embedder and a prefix token decoder.
/// How a block model's score() lays a sequence out in blocks: the authors' two evaluation
/// wrappers, one per way their models were trained.
enum class BlockPadding {
  kLeft,   // left-pad with id 0 to a block boundary, as generation does (block_transformer): models
           // trained with random first-block padding
  kRight,  // start at a block boundary and right-pad the last block with id 1, masked
           // (block_transformer_nopad): the 300M-and-larger models, trained without that padding
};

struct BlockConfig {
  int vocab = 0;
  int max_positions = 2048;  // trained context length in tokens
  int block_length = 4;      // L tokens per block
  int embedder_width = 0;    // e: per-token lookup width; block embedding is L * e
  int prefix_length = 2;     // R: expansion ratio, prefix vectors per block context
  DecoderConfig block_decoder{};
  DecoderConfig token_decoder{};
  BlockPadding score_padding = BlockPadding::kLeft;  // score()'s default layout

  constexpr int block_embedding_width() const { return block_length * embedder_width; }
  constexpr int max_blocks() const { return block_length > 0 ? max_positions / block_length : 0; }
  /// Token-decoder sequence: R prefix vectors then the L-1 fed tokens of the block.
  constexpr int local_length() const { return prefix_length + block_length - 1; }
  /// Parameters as the paper counts them: everything but the block decoder's unused embed_in.
  constexpr std::size_t parameters() const {
    const std::size_t v = vocab, h = token_decoder.width, d = block_decoder.width;
    const std::size_t expansion = d * h * prefix_length + h * prefix_length;
    return v * embedder_width + block_decoder.stack_parameters() + 2 * v * h + expansion +
           token_decoder.stack_parameters();
  }
  constexpr bool operator==(const BlockConfig&) const = default;
};

namespace detail {
template <DecoderConfig D>
constexpr bool check_decoder() {
  static_assert(D.layers > 0, "DecoderConfig.layers must be positive");
  static_assert(D.width > 0 && D.heads > 0, "DecoderConfig.width and .heads must be positive");
  static_assert(D.width % D.heads == 0, "DecoderConfig.width must be a multiple of .heads");
  static_assert(D.ffn > 0, "DecoderConfig.ffn must be positive");
  static_assert(D.rotary_dims >= 0 && D.rotary_dims <= D.head_dim(),
                "DecoderConfig.rotary_dims must lie in [0, head_dim]");
  static_assert(D.rotary_dims % 2 == 0, "DecoderConfig.rotary_dims must be even (NeoX rotates halves)");
  static_assert(D.rotary_base > 0.0f, "DecoderConfig.rotary_base must be positive");
  static_assert(D.layer_norm_eps > 0.0f, "DecoderConfig.layer_norm_eps must be positive");
  return true;
}
}  // namespace detail

/// Instantiating this fails with a message naming the field to change.
template <VanillaConfig C>
constexpr bool check_config() {
  static_assert(C.vocab > 0, "VanillaConfig.vocab must be positive");
  static_assert(C.max_positions > 0, "VanillaConfig.max_positions must be positive");
  return detail::check_decoder<C.decoder>();
}

template <BlockConfig C>
constexpr bool check_config() {
  static_assert(C.vocab > 0, "BlockConfig.vocab must be positive");
  static_assert(C.block_length > 0, "BlockConfig.block_length must be positive");
  static_assert(C.prefix_length > 0, "BlockConfig.prefix_length must be positive");
  static_assert(C.embedder_width > 0, "BlockConfig.embedder_width must be positive");
  static_assert(C.max_positions > 0 && C.max_positions % C.block_length == 0,
                "BlockConfig.max_positions must be a positive multiple of block_length");
  static_assert(C.block_decoder.width == C.block_embedding_width(),
                "block_decoder.width must equal block_length * embedder_width (concat embedder)");
  return detail::check_decoder<C.block_decoder>() && detail::check_decoder<C.token_decoder>();
}

inline std::ostream& operator<<(std::ostream& os, const DecoderConfig& d) {
  return os << "{layers " << d.layers << ", width " << d.width << ", heads " << d.heads << ", ffn "
            << d.ffn << ", rotary_dims " << d.rotary_dims << ", rotary_base " << d.rotary_base
            << ", eps " << d.layer_norm_eps << (d.parallel_residual ? ", parallel" : ", sequential")
            << "}";
}
inline std::ostream& operator<<(std::ostream& os, const VanillaConfig& c) {
  return os << "VanillaConfig{vocab " << c.vocab << ", max_positions " << c.max_positions
            << ", decoder " << c.decoder << "}";
}
inline std::ostream& operator<<(std::ostream& os, const BlockConfig& c) {
  return os << "BlockConfig{vocab " << c.vocab << ", max_positions " << c.max_positions
            << ", block_length " << c.block_length << ", embedder_width " << c.embedder_width
            << ", prefix_length " << c.prefix_length << ", block_decoder " << c.block_decoder
            << ", token_decoder " << c.token_decoder
            << (c.score_padding == BlockPadding::kLeft ? ", score padding left" : ", score padding right") << "}";
}

}  // namespace blockformer

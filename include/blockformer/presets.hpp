// SPDX-License-Identifier: Apache-2.0
#pragma once
// Every model of the paper (arXiv 2406.02657, Table 1 and appendix), plus the golden-fixture
// configs. Block models start from the pythia-410m config (rotary 25%, base 10000, vocab 50304,
// parallel residual, eps 1e-5) with layers and width overridden.
#include "blockformer/config.hpp"

namespace blockformer::presets {

/// The authors' util/config.py autofill for a GPT-NeoX decoder whose heads are unset:
/// head_dim 32 up to width 256, 64 up to 1536, else 128; FFN 4 x width; rotary 25% of head_dim.
constexpr DecoderConfig neox_autofill(int layers, int width) {
  const int head_dim = width <= 256 ? 32 : width <= 1536 ? 64 : 128;
  return DecoderConfig{.layers = layers,
                       .width = width,
                       .heads = width / head_dim,
                       .ffn = 4 * width,
                       .rotary_dims = head_dim / 4};
}

/// A block model as the paper names it: block_main_b4_<size>, block length 4, prefix 2. The authors
/// trained the 300M-and-larger ones without random first-block padding and evaluate them with
/// their block_transformer_nopad wrapper: those presets score with BlockPadding::kRight.
constexpr BlockConfig block_main(int layers_per_decoder, int width, BlockPadding score_padding = BlockPadding::kLeft) {
  return BlockConfig{.vocab = 50304,
                     .max_positions = 2048,
                     .block_length = 4,
                     .embedder_width = width / 4,
                     .prefix_length = 2,
                     .block_decoder = neox_autofill(layers_per_decoder, width),
                     .token_decoder = neox_autofill(layers_per_decoder, width),
                     .score_padding = score_padding};
}

inline constexpr BlockConfig block_main_b4_5 = block_main(3, 256);
inline constexpr BlockConfig block_main_b4_19 = block_main(3, 512);
inline constexpr BlockConfig block_main_b4_85 = block_main(6, 768);
inline constexpr BlockConfig block_main_b4_300 = block_main(12, 1024, BlockPadding::kRight);
inline constexpr BlockConfig block_main_b4_800 = block_main(8, 2048, BlockPadding::kRight);
inline constexpr BlockConfig block_main_b4_1_2b = block_main(12, 2048, BlockPadding::kRight);

/// A vanilla GPT-NeoX on Pythia's base config (vocab 50304, rotary 25% of head_dim). Heads and FFN are
/// given explicitly: the authors' autofill (util/config.py) applies to block models only.
constexpr VanillaConfig pythia(int layers, int width, int heads, int ffn) {
  return VanillaConfig{.vocab = 50304,
                       .max_positions = 2048,
                       .decoder = DecoderConfig{.layers = layers,
                                                .width = width,
                                                .heads = heads,
                                                .ffn = ffn,
                                                .rotary_dims = width / heads / 4}};
}

// vanilla_70/160/410 are Pythia-70m/160m/410m unchanged. vanilla_31 is no Pythia model: the authors'
// conf/trainer/vanilla_31.yaml (github.com/itsnamgyu/block-transformer) takes pythia-410m-deduped and
// overrides only layers 6, heads 8 and width 256, so the FFN keeps 410m's 4096 (16 x width, not 4 x).
inline constexpr VanillaConfig vanilla_31 = pythia(6, 256, 8, 4096);
inline constexpr VanillaConfig vanilla_70 = pythia(6, 512, 8, 2048);
inline constexpr VanillaConfig vanilla_160 = pythia(12, 768, 12, 3072);
inline constexpr VanillaConfig vanilla_410 = pythia(24, 1024, 16, 4096);

/// tests/data/block_tiny (tests/data/FIXTURES.md): vocab 512, L 4, e 32, R 2, two 2-layer decoders of width 128.
inline constexpr BlockConfig block_tiny{
    .vocab = 512,
    .max_positions = 2048,
    .block_length = 4,
    .embedder_width = 32,
    .prefix_length = 2,
    .block_decoder = {.layers = 2, .width = 128, .heads = 4, .ffn = 512, .rotary_dims = 8},
    .token_decoder = {.layers = 2, .width = 128, .heads = 4, .ffn = 512, .rotary_dims = 8}};

/// tests/data/vanilla_tiny (tests/data/FIXTURES.md): vocab 512, 2 layers of width 128, 4 heads.
inline constexpr VanillaConfig vanilla_tiny{
    .vocab = 512,
    .max_positions = 2048,
    .decoder = {.layers = 2, .width = 128, .heads = 4, .ffn = 512, .rotary_dims = 8}};

/// models/shakespeare (its MODEL_CARD.md): the trained demo pair, vocab 4096, width 256, 4 heads of 64.
/// The block model is the authors' main recipe (L 4, e 64, R 2) with two 2-layer decoders; the vanilla
/// twin has 4 layers, about the same non-embedding parameters. Both were trained on 256-token windows.
inline constexpr DecoderConfig shakespeare_decoder(int layers) {
  return DecoderConfig{.layers = layers, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16};
}
inline constexpr BlockConfig shakespeare_block{.vocab = 4096,
                                               .max_positions = 2048,
                                               .block_length = 4,
                                               .embedder_width = 64,
                                               .prefix_length = 2,
                                               .block_decoder = shakespeare_decoder(2),
                                               .token_decoder = shakespeare_decoder(2)};
inline constexpr VanillaConfig shakespeare_vanilla{
    .vocab = 4096, .max_positions = 2048, .decoder = shakespeare_decoder(4)};

}  // namespace blockformer::presets

// SPDX-License-Identifier: Apache-2.0
// Compile-time configs: presets carry the paper's dimensions and parameter counts.
#include <blockformer/backends/head_dims.hpp>
#include <blockformer/blockformer.hpp>
#include <doctest/doctest.h>

#include <sstream>

using namespace blockformer;

namespace {
// Paper (arXiv 2406.02657) Table 1 total parameters, in millions, rounded as printed there.
double millions(std::size_t n) { return double(n) / 1e6; }
}  // namespace

TEST_CASE("config: block presets match the paper's parameter counts") {
  static_assert(check_config<presets::block_main_b4_5>() && check_config<presets::block_main_b4_1_2b>());
  CHECK(millions(presets::block_main_b4_5.parameters()) == doctest::Approx(33.8).epsilon(0.002));
  CHECK(millions(presets::block_main_b4_19.parameters()) == doctest::Approx(77.4).epsilon(0.002));
  CHECK(millions(presets::block_main_b4_85.parameters()) == doctest::Approx(173).epsilon(0.003));
  CHECK(millions(presets::block_main_b4_300.parameters()) == doctest::Approx(420).epsilon(0.003));
  CHECK(millions(presets::block_main_b4_800.parameters()) == doctest::Approx(1046).epsilon(0.002));
  CHECK(millions(presets::block_main_b4_1_2b.parameters()) == doctest::Approx(1449).epsilon(0.002));
}

TEST_CASE("config: the authors' head and FFN autofill") {
  CHECK(presets::block_main_b4_5.block_decoder.heads == 8);
  CHECK(presets::block_main_b4_5.embedder_width == 64);
  CHECK(presets::block_main_b4_19.token_decoder.head_dim() == 64);
  CHECK(presets::block_main_b4_85.block_decoder.heads == 12);
  CHECK(presets::block_main_b4_85.block_decoder.ffn == 3072);
  CHECK(presets::block_main_b4_300.block_decoder.heads == 16);
  CHECK(presets::block_main_b4_800.block_decoder.head_dim() == 128);
  CHECK(presets::block_main_b4_1_2b.token_decoder.layers == 12);
  CHECK(presets::block_main_b4_1_2b.embedder_width == 512);
  CHECK(presets::block_main_b4_1_2b.token_decoder.rotary_dims == 32);
}

TEST_CASE("config: vanilla presets are the Pythia shapes, vanilla_31 the authors' cut-down pythia-410m") {
  // Pythia-70m/160m/410m report 70.4M, 162.3M, 405.3M parameters (untied embed_in and embed_out).
  CHECK(millions(presets::vanilla_70.parameters()) == doctest::Approx(70.4).epsilon(0.003));
  CHECK(millions(presets::vanilla_160.parameters()) == doctest::Approx(162.3).epsilon(0.003));
  CHECK(millions(presets::vanilla_410.parameters()) == doctest::Approx(405.3).epsilon(0.003));
  CHECK(presets::vanilla_410.decoder.rotary_dims == 16);
  // The authors' conf/trainer/vanilla_31.yaml (github.com/itsnamgyu/block-transformer): pythia-410m-deduped
  // with num_hidden_layers 6, num_attention_heads 8, hidden_size 256; intermediate_size is not overridden,
  // so it stays 410m's 4096, not the 4 x width a Pythia-shaped model would have.
  CHECK(presets::vanilla_31.decoder.layers == 6);
  CHECK(presets::vanilla_31.decoder.heads == 8);
  CHECK(presets::vanilla_31.decoder.width == 256);
  CHECK(presets::vanilla_31.decoder.ffn == presets::vanilla_410.decoder.ffn);
  CHECK(presets::vanilla_31.decoder.ffn == 4096);
}

TEST_CASE("config: printable and comparable") {
  std::ostringstream os;
  os << presets::block_tiny;
  CHECK(os.str().find("block_length 4") != std::string::npos);
  CHECK(os.str().find("prefix_length 2") != std::string::npos);
  CHECK(presets::block_main_b4_800 != presets::block_main_b4_1_2b);
  CHECK(presets::block_main(8, 2048, BlockPadding::kRight) == presets::block_main_b4_800);
  CHECK(presets::block_main(8, 2048) != presets::block_main_b4_800);  // the score padding is part of it
  CHECK(os.str().find("score padding left") != std::string::npos);
}

TEST_CASE("head dims: run-time dispatch is a closed list that names what is supported") {
  for (int d : kCompiledHeadDims) CHECK(dispatch_head_dim(d, [](auto hd) { return decltype(hd)::value; }) == d);
  for (int d : {0, -1, 8, 80, 96, 256}) {
    CAPTURE(d);
    CHECK(!head_dim_compiled(d));
    try {
      dispatch_head_dim(d, [](auto) { return 0; });
      FAIL("no error for head_dim " << d);
    } catch (const Error& e) {
      CHECK(std::string(e.what()) == "blockformer: attention: head_dim " + std::to_string(d) +
                                         " not compiled; supported: 16, 32, 48, 64, 128");
    }
  }
}

// SPDX-License-Identifier: Apache-2.0
// GPU tests of the CUDA backend (fp32): every op against the Eigen backend, the golden fixtures
// (logits within 1e-4, greedy tokens exact), cached == uncached, batched == one-by-one, and
// CUDA == Eigen end to end. Without a device each case reports itself skipped.
#include <blockformer/backends/head_dims.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "../fixtures.hpp"
#include "gpu_test.hpp"
#include "harness.hpp"

using namespace blockformer;

namespace {
/// Per-op fp32 tolerance, relative to the magnitude: the GPU sums in a different order than Eigen,
/// so results differ by a few ulps of the partial sums (~1e-6 relative for these sizes).
constexpr double kOpTolerance = 1e-5;
/// End to end: FIXTURES.md section 4 puts fp32 rounding noise near 1.5e-5.
constexpr double kModelTolerance = 1e-4;

/// max |a - b| / (1 + |b|); NaN anywhere is infinite.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(b[i])));
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

std::vector<float> normal(std::size_t n, std::mt19937& rng, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void check_close(const char* what, const std::vector<float>& ours, const std::vector<float>& expected, double tol) {
  const double diff = fixtures::max_abs_diff(ours, expected);
  MESSAGE(what << " max abs diff " << diff);
  CHECK(diff <= tol);
}
}  // namespace

// ------------------------------------------------------------------------------------ ops
TEST_CASE("cuda gpu: linear with every epilogue matches the Eigen backend") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("linear");
  std::mt19937 rng(1);
  const int rows = 37, in = 200, out = 129;
  const auto x = normal(std::size_t(rows) * in, rng), w = normal(std::size_t(out) * in, rng, 0.07f);
  const auto b = normal(out, rng), y0 = normal(std::size_t(rows) * out, rng);
  for (const bool with_bias : {true, false}) {
    for (const Epilogue e : {Epilogue::kStore, Epilogue::kGelu, Epilogue::kAccumulate}) {
      CAPTURE(with_bias);
      CAPTURE(int(e));
      const std::vector<float> bias = with_bias ? b : std::vector<float>{};
      const auto lin = EigenBackend::make_linear(w, bias, out, in);
      std::vector<float> expected = y0;
      EigenBackend::linear(contiguous_view(x.data(), rows, in), lin, contiguous_view(expected.data(), rows, out), e);
      const auto ours = cuda_harness::linear(x, rows, in, w, bias, out, e, y0, 3);
      CHECK(max_rel_diff(ours, expected) <= kOpTolerance);
    }
  }
}

TEST_CASE("cuda gpu: layer norm and rotary and gather match the Eigen backend") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("layer norm / rotary / gather");
  std::mt19937 rng(2);
  {
    const int rows = 5, cols = 768;
    auto x = normal(std::size_t(rows) * cols, rng, 3.0f);
    for (float& v : x) v += 1.5f;  // an offset mean, as in a residual stream
    const auto w = normal(cols, rng), b = normal(cols, rng);
    std::vector<float> expected(x.size());
    EigenBackend::layer_norm(contiguous_view(x.data(), rows, cols), EigenBackend::make_norm(w, b), 1e-5f,
                             contiguous_view(expected.data(), rows, cols));
    CHECK(max_rel_diff(cuda_harness::layer_norm(x, rows, cols, w, b, 1e-5f), expected) <= kOpTolerance);
  }
  for (int head_dim : kCompiledHeadDims) {
    CAPTURE(head_dim);
    const AttentionShape shape{3, head_dim, head_dim / 4};
    const RaggedBatch batch = cuda_harness::make_batch({{0, 0, 4}, {1, 1500, 2}});
    const int rows = batch.rows(), cols = 3 * shape.heads * head_dim;
    const auto qkv = normal(std::size_t(rows) * cols, rng);
    std::vector<float> expected = qkv;
    const EigenBackend::RotaryTable table(shape.rotary_dims, 10000.0f, 2048);
    EigenBackend::rotary(contiguous_view(expected.data(), rows, cols), batch, table, shape);
    CHECK(max_rel_diff(cuda_harness::rotary(qkv, rows, batch, shape, 10000.0f, 2048), expected) <= kOpTolerance);
  }
  {
    const int vocab = 50, width = 96;
    const auto table = normal(std::size_t(vocab) * width, rng);
    const std::vector<Token> ids{3, 0, 49, 3, 17};
    const auto ours = cuda_harness::gather(table, vocab, width, ids);
    for (std::size_t i = 0; i < ids.size(); ++i)
      CHECK(std::equal(ours.begin() + i * width, ours.begin() + (i + 1) * width, table.begin() + ids[i] * width));
  }
}

TEST_CASE("cuda gpu: attention matches Eigen for every head dim (prefill then chunked prefill then decode then split-KV decode)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("attention");
  std::mt19937 rng(3);
  for (int head_dim : kCompiledHeadDims) {
    CAPTURE(head_dim);
    const AttentionShape shape{2, head_dim, head_dim / 4};
    const int layers = 2, layer = 1, slots = 4, capacity = 1100;
    // Prefill two sequences, continue one in a second chunk, decode all three together, then
    // decode one alone over ~1000 keys (split along the keys), then a 3-row block step.
    const std::vector<RaggedBatch> batches{
        cuda_harness::make_batch({{0, 0, 37}, {2, 0, 300}}), cuda_harness::make_batch({{2, 300, 700}, {3, 0, 5}}),
        cuda_harness::make_batch({{0, 37, 1}, {2, 1000, 1}, {3, 5, 1}}), cuda_harness::make_batch({{2, 1001, 1}}), cuda_harness::make_batch({{3, 6, 3}})};
    std::vector<cuda_harness::AttentionStep> steps;
    for (const RaggedBatch& b : batches)
      steps.push_back({normal(std::size_t(b.rows()) * 3 * shape.heads * head_dim, rng), b});
    const auto ours = cuda_harness::attention(steps, shape, layers, slots, capacity, layer);

    EigenBackend::KvCache cache(layers, slots, shape.heads, capacity, head_dim);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      CAPTURE(i);
      const int rows = steps[i].batch.rows(), width = shape.heads * head_dim;
      std::vector<float> expected(std::size_t(rows) * width);
      dispatch_head_dim(head_dim, [&](auto hd) {
        EigenBackend::attention<decltype(hd)::value>(contiguous_view(steps[i].qkv.data(), rows, 3 * width), cache,
                                                     layer, steps[i].batch, contiguous_view(expected.data(), rows, width),
                                                     shape);
      });
      CHECK(max_rel_diff(ours[i], expected) <= kOpTolerance);
    }
  }
}

TEST_CASE("cuda gpu: out of memory is an error naming requested and free bytes") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("out of memory");
  const std::string error = cuda_harness::error_of_huge_cache();
  MESSAGE(error);
  CHECK(error.find("CUDA out of memory allocating KV cache (K): requested 17592186044416 bytes (16.00 TiB)") !=
        std::string::npos);
  CHECK(error.find("free of") != std::string::npos);
}

// ------------------------------------------------------------------------------------ fixtures
TEST_CASE("cuda gpu: fixture block_tiny forward stage by stage with fp32 weights to 1e-4") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("fixture block_tiny forward");
  BlockForwardTrace trace;
  const auto logits = cuda_harness::block_tiny_forward(fixtures::path("block_tiny/model.safetensors"),
                                                       fixtures::tokens("block_tiny", "input_ids"),
                                                       fixtures::batch("block_tiny"), &trace);
  check_close("block_embeddings", trace.block_embeddings, fixtures::floats("block_tiny", "block_embeddings"), kModelTolerance);
  check_close("block_decoder_hidden", trace.block_decoder_hidden, fixtures::floats("block_tiny", "block_decoder_hidden"), kModelTolerance);
  check_close("prefix_embeddings", trace.prefix, fixtures::floats("block_tiny", "prefix_embeddings"), kModelTolerance);
  check_close("token_decoder_hidden", trace.token_decoder_hidden, fixtures::floats("block_tiny", "token_decoder_hidden"), kModelTolerance);
  check_close("logits", logits, fixtures::floats("block_tiny", "logits"), kModelTolerance);
}

TEST_CASE("cuda gpu: fixture block_tiny forward with bf16 weights (1e-4)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("fixture block_tiny bf16 weights");
  const auto logits = cuda_harness::block_tiny_forward(fixtures::path("block_tiny/model_bf16.safetensors"),
                                                       fixtures::tokens("block_tiny", "input_ids"),
                                                       fixtures::batch("block_tiny"));
  check_close("logits_bf16_weights", logits, fixtures::floats("block_tiny", "logits_bf16_weights"), kModelTolerance);
}

TEST_CASE("cuda gpu: fixture vanilla_tiny forward (1e-4)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("fixture vanilla_tiny forward");
  const auto logits = cuda_harness::vanilla_tiny_forward(fixtures::path("vanilla_tiny/model.safetensors"),
                                                         fixtures::tokens("vanilla_tiny", "input_ids"),
                                                         fixtures::batch("vanilla_tiny"));
  check_close("vanilla logits", logits, fixtures::floats("vanilla_tiny", "logits"), kModelTolerance);
}

TEST_CASE("cuda gpu: fixture greedy generation is exact (block_tiny in both position modes and vanilla_tiny)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("fixture greedy generation");
  const std::string block = fixtures::path("block_tiny/model.safetensors");
  const auto block_requests = fixtures::generation_requests("block_tiny");
  const auto vanilla_requests = fixtures::generation_requests("vanilla_tiny");
  const auto training = cuda_harness::block_tiny_generate(block, block_requests);
  GenerateOptions authors;
  authors.token_positions = TokenPositions::kAuthorsGenerate;
  const auto authors_out = cuda_harness::block_tiny_generate(block, block_requests, authors);
  const auto vanilla = cuda_harness::vanilla_tiny_generate(fixtures::path("vanilla_tiny/model.safetensors"), vanilla_requests);
  REQUIRE(training.size() == block_requests.size());
  REQUIRE(authors_out.size() == block_requests.size());
  REQUIRE(vanilla.size() == vanilla_requests.size());
  for (std::size_t i = 0; i < block_requests.size(); ++i) {
    CAPTURE(i);
    const std::string n = std::to_string(i);
    CHECK(training[i].tokens == fixtures::tokens("block_tiny", "gen" + n + "_output"));
    CHECK(authors_out[i].tokens == fixtures::tokens("block_tiny", "gen" + n + "_output_authors_generate_positions"));
  }
  for (std::size_t i = 0; i < vanilla_requests.size(); ++i) {
    CAPTURE(i);
    CHECK(vanilla[i].tokens == fixtures::tokens("vanilla_tiny", "gen" + std::to_string(i) + "_output"));
  }
}

// ------------------------------------------------------------------------------------ invariants
TEST_CASE("cuda gpu: batched generation equals one-by-one") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("batched == one-by-one");
  for (const std::string model : {"block_tiny", "vanilla_tiny"}) {
    CAPTURE(model);
    const std::string path = fixtures::path(model + "/model.safetensors");
    const auto requests = fixtures::generation_requests(model);
    auto run = [&](std::span<const Request> r) {
      return model == "block_tiny" ? cuda_harness::block_tiny_generate(path, r) : cuda_harness::vanilla_tiny_generate(path, r);
    };
    const auto together = run(requests);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      CAPTURE(i);
      CHECK(run(std::span(requests).subspan(i, 1))[0].tokens == together[i].tokens);
    }
  }
}

TEST_CASE("cuda gpu: cached decoding equals an uncached forward over the output (vanilla_tiny)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("cached == uncached");
  const std::string path = fixtures::path("vanilla_tiny/model.safetensors");
  const auto requests = fixtures::generation_requests("vanilla_tiny");
  const auto out = cuda_harness::vanilla_tiny_generate(path, requests);
  constexpr int kV = presets::vanilla_tiny.vocab;
  for (std::size_t i = 0; i < out.size(); ++i) {
    CAPTURE(i);
    const auto& tokens = out[i].tokens;
    const auto logits = cuda_harness::vanilla_tiny_forward(path, tokens, 1);
    for (std::size_t t = requests[i].prompt.size(); t < tokens.size(); ++t) {
      const auto row = logits.begin() + (t - 1) * kV;
      CHECK(Token(std::max_element(row, row + kV) - row) == tokens[t]);
    }
  }
}

TEST_CASE("cuda gpu: random-weight models match the Eigen backend end to end (1e-4)") {
  BLOCKFORMER_REQUIRE_CUDA_DEVICE("CUDA == Eigen, random weights");
  std::mt19937 rng(4);
  auto ids = [&](int n) {
    std::vector<Token> v(n);
    for (Token& t : v) t = Token(rng() % 512);
    return v;
  };
  {  // 2 x 300 tokens: crosses the 256-row prefill chunk
    const auto input = ids(600);
    const auto expected =
        GptNeoxLM<presets::vanilla_tiny, EigenBackend>::random(11).forward(input, 2);
    check_close("vanilla_tiny random", cuda_harness::vanilla_tiny_random_forward(11, input, 2), expected, kModelTolerance);
  }
  {
    const auto input = ids(2 * 64);
    const auto expected = BlockTransformer<presets::block_tiny, EigenBackend>::random(12).forward(input, 2);
    check_close("block_tiny random", cuda_harness::block_tiny_random_forward(12, input, 2), expected, kModelTolerance);
  }
}

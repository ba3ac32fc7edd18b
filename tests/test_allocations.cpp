// SPDX-License-Identifier: Apache-2.0
// The decode loop allocates nothing: with a session sized up front, generating 4x more tokens
// performs exactly as many heap allocations (the per-call ones: results, samplers, prompts), with
// penalties, logit bias, banned ids, stop ids and log-probabilities on.
#include <atomic>
#include <cstdlib>

#include "fixtures.hpp"

// Counting malloc itself (not operator new) also catches Eigen's aligned_malloc. glibc lets the
// executable interpose malloc and forward to __libc_malloc; sanitizers interpose it themselves,
// so under them the count is unavailable and the tests skip.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BLOCKFORMER_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define BLOCKFORMER_COUNT_MALLOC 0
#endif
#endif
#ifndef BLOCKFORMER_COUNT_MALLOC
#define BLOCKFORMER_COUNT_MALLOC 1
#endif

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

#if BLOCKFORMER_COUNT_MALLOC
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
#endif

using namespace blockformer;

namespace {
template <class Model>
long allocations_for(const Model& model, typename Model::Session& session, int new_tokens) {
  // Sequence 0 uses every logits processor and records top-5 log-probabilities (its stop ids are
  // banned, so it runs to new_tokens and still checks them every step); sequence 1 is greedy with a
  // windowed penalty, a vocab limit and log-probabilities; sequence 2 is plain sampling.
  std::vector<Request> requests{
      {.prompt = {5, 9, 13, 200, 31}, .max_new_tokens = new_tokens,
       .sampling = {.temperature = 0.7f, .top_k = 20, .seed = 1, .repetition_penalty = 1.3f, .frequency_penalty = 0.4f,
                    .presence_penalty = 0.2f, .logit_bias = {{7, 1.5f}, {9, -2.0f}}, .banned_ids = {1, 2, 3}},
       .stop_ids = {1, 2}, .top_logprobs = 5},
      {.prompt = {7, 8}, .max_new_tokens = new_tokens,
       .sampling = {.repetition_penalty = 1.2f, .presence_penalty = 0.5f, .penalty_last_n = 8, .vocab_limit = 500},
       .logprobs = true},
      {{40, 41, 42, 43, 44, 45, 46, 47, 48}, new_tokens, {.temperature = 1.0f, .top_p = 0.9f}}};
  const long probe = g_allocations.load();
  std::free(std::malloc(64));  // the counter must see plain malloc, or this test proves nothing
  REQUIRE(g_allocations.load() == probe + 1);
  model.generate(session, requests);  // warm: thread-local scratch reaches its high-water mark
  const long before = g_allocations.load();
  model.generate(session, requests);
  return g_allocations.load() - before;
}
}  // namespace

TEST_CASE("allocations: block decode steps allocate nothing" * doctest::skip(!BLOCKFORMER_COUNT_MALLOC)) {
  auto session = fixtures::block_tiny().make_session(3, 160);
  const long short_run = allocations_for(fixtures::block_tiny(), session, 16);
  const long long_run = allocations_for(fixtures::block_tiny(), session, 64);
  MESSAGE("block generate: " << short_run << " allocations for 16 tokens, " << long_run << " for 64");
  CHECK(long_run == short_run);
}

TEST_CASE("allocations: vanilla decode steps allocate nothing" * doctest::skip(!BLOCKFORMER_COUNT_MALLOC)) {
  auto session = fixtures::vanilla_tiny().make_session(3, 160);
  const long short_run = allocations_for(fixtures::vanilla_tiny(), session, 16);
  const long long_run = allocations_for(fixtures::vanilla_tiny(), session, 64);
  MESSAGE("vanilla generate: " << short_run << " allocations for 16 tokens, " << long_run << " for 64");
  CHECK(long_run == short_run);
}

namespace {
// Wide enough that Eigen's GEMM packing blocks exceed its stack limit (heap-sized on every call
// unless the backend supplies them), small enough to build in a blink.
constexpr VanillaConfig kWide{.vocab = 4096, .max_positions = 512,
                              .decoder = {.layers = 2, .width = 512, .heads = 8, .ffn = 2048, .rotary_dims = 16}};
}  // namespace

TEST_CASE("allocations: decode steps of a wide model allocate nothing" * doctest::skip(!BLOCKFORMER_COUNT_MALLOC)) {
  const auto model = GptNeoxLM<kWide, EigenBackend>::random(3);
  auto session = model.make_session(3, 160);
  const long short_run = allocations_for(model, session, 8);
  const long long_run = allocations_for(model, session, 40);
  MESSAGE("wide vanilla generate: " << short_run << " allocations for 8 tokens, " << long_run << " for 40");
  CHECK(long_run == short_run);
}

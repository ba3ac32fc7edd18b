// SPDX-License-Identifier: Apache-2.0
// The decode loop allocates nothing: with a session sized up front, generating 4x more tokens
// performs exactly as many heap allocations (the per-call ones: results, samplers, prompts).
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
  std::vector<Request> requests{{{5, 9, 13, 200, 31}, new_tokens, {.temperature = 0.7f, .top_k = 20, .seed = 1}},
                                {{7, 8}, new_tokens},
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

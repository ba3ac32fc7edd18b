// SPDX-License-Identifier: Apache-2.0
// Thread-safety contract (README "Thread safety"): a loaded model is immutable and shared by any number of
// threads; each thread generates through its own Session. Every concurrent result must equal the
// single-threaded one. scripts/sanitizers.sh runs this file under ThreadSanitizer.
#include <atomic>
#include <thread>
#include <vector>

#include "fixtures.hpp"

using namespace blockformer;

namespace {

constexpr int kThreads = 3;  // per model; both models run at once, so 6 generating threads plus readers
constexpr int kRounds = 2;   // each thread reuses its session

/// A ragged batch that differs per thread: prompt lengths, greedy and sampled rows, per-row seeds, one eos.
std::vector<Request> thread_requests(int thread) {
  std::vector<Request> requests;
  const int lengths[] = {1 + thread, 7, 4 + 2 * thread};
  for (int s = 0; s < 3; ++s) {
    Request r;
    for (int i = 0; i < lengths[s]; ++i) r.prompt.push_back(Token((37 * thread + 11 * s + 5 * i + 3) % 512));
    r.max_new_tokens = 9 + 3 * s + thread;
    if (s > 0) r.sampling = {.temperature = 0.7f + 0.1f * s, .top_k = s == 1 ? 40 : 0, .top_p = s == 2 ? 0.9f : 1.0f,
                             .seed = std::uint64_t(1000 * thread + s)};
    if (s == 2) r.eos = Token(17);
    requests.push_back(std::move(r));
  }
  return requests;
}

template <class Model>
void check_concurrent_sessions(const Model& model, const std::vector<Token>& forward_ids, int forward_batch) {
  // Single-threaded references.
  std::vector<std::vector<Generation>> expected;
  for (int t = 0; t < kThreads; ++t) {
    auto session = model.make_session(3, 64);
    expected.push_back(model.generate(session, thread_requests(t)));
  }
  const std::vector<float> expected_logits = model.forward(forward_ids, forward_batch);

  // Concurrent: kThreads generating threads with their own sessions, one thread using the session-less
  // generate(), and one computing forward() on the same model, all at once.
  std::vector<std::vector<std::vector<Generation>>> got(kThreads + 1);
  std::vector<float> got_logits;
  std::atomic<int> ready{0};
  const auto start_together = [&] {
    ready.fetch_add(1);
    while (ready.load() < kThreads + 2) std::this_thread::yield();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start_together();
      auto session = model.make_session(3, 64);
      const auto requests = thread_requests(t);
      for (int round = 0; round < kRounds; ++round) got[t].push_back(model.generate(session, requests));
    });
  threads.emplace_back([&] {
    start_together();
    got[kThreads].push_back(model.generate(thread_requests(0)));
  });
  threads.emplace_back([&] {
    start_together();
    got_logits = model.forward(forward_ids, forward_batch);
  });
  for (auto& th : threads) th.join();

  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(got[t].size() == std::size_t(kRounds));
    for (int round = 0; round < kRounds; ++round)
      for (std::size_t s = 0; s < expected[t].size(); ++s) {
        CAPTURE(t);
        CAPTURE(round);
        CAPTURE(s);
        CHECK(got[t][round][s].tokens == expected[t][s].tokens);
        CHECK(got[t][round][s].stop == expected[t][s].stop);
      }
  }
  REQUIRE(got[kThreads].size() == 1);
  for (std::size_t s = 0; s < expected[0].size(); ++s) CHECK(got[kThreads][0][s].tokens == expected[0][s].tokens);
  CHECK(fixtures::max_abs_diff(got_logits, expected_logits) <= 1e-6);
}

}  // namespace

TEST_CASE("threads: sessions on one shared block model from several threads equal the single-threaded run") {
  const auto& model = fixtures::block_tiny();
  check_concurrent_sessions(model, fixtures::tokens("block_tiny", "input_ids"), fixtures::batch("block_tiny"));
}

TEST_CASE("threads: sessions on one shared vanilla model from several threads equal the single-threaded run") {
  const auto& model = fixtures::vanilla_tiny();
  check_concurrent_sessions(model, fixtures::tokens("vanilla_tiny", "input_ids"), fixtures::batch("vanilla_tiny"));
}

TEST_CASE("threads: both models generate concurrently, each thread with its own session") {
  const auto& block = fixtures::block_tiny();
  const auto& vanilla = fixtures::vanilla_tiny();
  const auto requests = thread_requests(1);
  const auto block_expected = block.generate(requests);
  const auto vanilla_expected = vanilla.generate(requests);
  std::vector<Generation> block_got, vanilla_got;
  std::thread a([&] { block_got = block.generate(requests); });
  std::thread b([&] { vanilla_got = vanilla.generate(requests); });
  a.join();
  b.join();
  for (std::size_t s = 0; s < requests.size(); ++s) {
    CHECK(block_got[s].tokens == block_expected[s].tokens);
    CHECK(vanilla_got[s].tokens == vanilla_expected[s].tokens);
  }
}

// Wide enough that prefill and the LM head are split over the workers (EigenBackend::kMinThreadedWork).
constexpr VanillaConfig kThreadsWide{
    .vocab = 2048, .max_positions = 128, .decoder = {.layers = 2, .width = 256, .heads = 4, .ffn = 1024, .rotary_dims = 16}};

TEST_CASE("threads: two sessions, each calling with two worker threads, on two caller threads at once") {
  const auto& block = fixtures::block_tiny();
  const auto vanilla = GptNeoxLM<kThreadsWide, EigenBackend>::random(11);
  const auto requests = thread_requests(2);
  const GenerateOptions one{.threads = 1}, two{.threads = 2};
  const auto block_expected = block.generate(requests, one);
  const auto vanilla_expected = vanilla.generate(requests, one);
  auto block_session = block.make_session(3, 64);
  auto vanilla_session = vanilla.make_session(3, 64);
  std::vector<std::vector<Generation>> block_got, vanilla_got;
  std::thread a([&] {
    for (int round = 0; round < kRounds; ++round) block_got.push_back(block.generate(block_session, requests, two));
  });
  std::thread b([&] {
    for (int round = 0; round < kRounds; ++round) vanilla_got.push_back(vanilla.generate(vanilla_session, requests, two));
  });
  a.join();
  b.join();
  for (int round = 0; round < kRounds; ++round)
    for (std::size_t s = 0; s < requests.size(); ++s) {
      CHECK(block_got[round][s].tokens == block_expected[s].tokens);
      CHECK(vanilla_got[round][s].tokens == vanilla_expected[s].tokens);
    }
}

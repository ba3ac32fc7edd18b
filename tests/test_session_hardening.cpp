// SPDX-License-Identifier: Apache-2.0
// A session misused (re-entered from its own callback, shared by two threads) or sized past the
// memory it may take is refused with an Error naming it, before anything runs or is allocated
// (docs/bad_inputs.md G11, R5).
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.hpp"

using namespace blockformer;

namespace session_hardening_test {

const std::vector<Request> kRequests{{.prompt = {3, 1, 4, 1, 5}, .max_new_tokens = 9}, {.prompt = {9, 2}, .max_new_tokens = 6}};

template <class Model>
void callback_reentry_is_refused(const Model& model) {
  auto session = model.make_session(2, 32);
  const std::vector<Generation> expected = model.generate(session, kRequests);
  std::string inner_error;
  GenerateOptions reentrant;
  reentrant.on_token = [&](int, Token) {
    try {
      model.generate(session, kRequests);
    } catch (const Error& e) {
      inner_error = e.what();
    }
    return true;
  };
  const std::vector<Generation> outer = model.generate(session, kRequests, reentrant);
  CHECK(inner_error.find("generate: this session is already running a call") != std::string::npos);
  // The refused inner call touched nothing: the outer call's tokens are the plain ones.
  REQUIRE(outer.size() == expected.size());
  for (std::size_t s = 0; s < outer.size(); ++s) CHECK(outer[s].tokens == expected[s].tokens);
  // And the session is free again afterwards.
  CHECK(model.generate(session, kRequests)[0].tokens == expected[0].tokens);
}

template <class Model>
void second_thread_is_refused(const Model& model) {
  auto session = model.make_session(2, 32);
  std::atomic<int> stage{0};  // 1: the first call is inside; 2: the second thread has tried
  std::string second_error;
  GenerateOptions wait_inside;
  wait_inside.on_token = [&](int, Token) {
    if (stage.load() == 0) {
      stage.store(1);
      while (stage.load() != 2) std::this_thread::yield();
    }
    return true;
  };
  std::thread second([&] {
    while (stage.load() != 1) std::this_thread::yield();
    try {
      model.generate(session, kRequests);
    } catch (const Error& e) {
      second_error = e.what();
    }
    stage.store(2);
  });
  const auto first = model.generate(session, kRequests, wait_inside);
  second.join();
  CHECK(second_error.find("this session is already running a call") != std::string::npos);
  CHECK(first[0].tokens.size() == kRequests[0].prompt.size() + 9);
}

}  // namespace session_hardening_test

TEST_CASE("session hardening: a callback re-entering its own session gets an Error (G11)") {
  session_hardening_test::callback_reentry_is_refused(fixtures::block_tiny());
  session_hardening_test::callback_reentry_is_refused(fixtures::vanilla_tiny());
}

TEST_CASE("session hardening: a second thread on a busy session gets an Error (G11)") {
  session_hardening_test::second_thread_is_refused(fixtures::block_tiny());
  session_hardening_test::second_thread_is_refused(fixtures::vanilla_tiny());
}

TEST_CASE("session hardening: a session larger than the memory budget is refused before allocating (R5)") {
  const auto& block = fixtures::block_tiny();
  const std::string huge = fixtures::error_of([&] { block.make_session(1 << 20, 2048); });
  CHECK(huge.find("session of max_batch 1048576 x max_tokens 2048 needs " +
                  std::to_string(fixtures::BlockTiny::session_bytes(1 << 20, 2048)) + " bytes") != std::string::npos);
  CHECK(huge.find("(physical memory)") != std::string::npos);
  const std::uint64_t small = fixtures::VanillaTiny::session_bytes(2, 64);
  CHECK(fixtures::error_of([&] { fixtures::vanilla_tiny().make_session(2, 64, small); }) == "(no error)");
  CHECK(fixtures::error_of([&] { fixtures::vanilla_tiny().make_session(2, 64, small - 1); })
            .find("more than the limit of " + std::to_string(small - 1) + " bytes (the memory budget given)") !=
        std::string::npos);
  // The count is what the session holds: its KV caches alone are part of it.
  CHECK(fixtures::BlockTiny::session_bytes(4, 64) >= block.make_session(4, 64).cache_bytes());
  CHECK(fixtures::VanillaTiny::session_bytes(4, 64) >= fixtures::vanilla_tiny().make_session(4, 64).cache_bytes());
}

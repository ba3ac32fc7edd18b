// SPDX-License-Identifier: Apache-2.0
// The worker pool (thread_pool.hpp): every task runs exactly once per call, tasks do run at once on
// different threads, calls back to back and pools torn down mid-sleep are clean. scripts/sanitizers.sh
// runs this file under ThreadSanitizer as well.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <blockformer/thread_pool.hpp>

using namespace blockformer;

TEST_CASE("thread pool: each task runs exactly once, over many calls of varied sizes") {
  ThreadPool pool(3);
  CHECK(pool.threads() == 3);
  std::vector<int> runs(257);
  for (int call = 0; call < 2000; ++call) {
    const int tasks = 1 + call % 257;
    auto count = [&](int task) { ++runs[task]; };  // tasks are distinct: no two threads share an element
    pool.run(tasks, count);
    for (int t = 0; t < 257; ++t) {
      if (runs[t] != (t < tasks ? 1 : 0)) FAIL("call " << call << ": task " << t << " ran " << runs[t] << " times");
      runs[t] = 0;
    }
  }
}

TEST_CASE("thread pool: two tasks run at the same time on two threads") {
  ThreadPool pool(2);
  // Each task waits until the other has started, so the call can only finish if a worker took one.
  std::atomic<int> started{0};
  std::thread::id ids[2];
  bool timed_out = false;
  auto meet = [&](int task) {
    ids[task] = std::this_thread::get_id();
    started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (started.load() < 2)
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
  };
  pool.run(2, meet);
  CHECK_FALSE(timed_out);
  CHECK(ids[0] != ids[1]);
}

TEST_CASE("thread pool: a call after the workers went to sleep wakes them; a sleeping pool shuts down") {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  auto add = [&](int task) { sum.fetch_add(task + 1); };
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(ThreadPool::kSpin * 20);  // long past the spin: workers are blocked
    pool.run(100, add);
  }
  CHECK(sum.load() == 3 * 5050);
}

TEST_CASE("thread pool: parallel_for uses the scoped pool, groups counts above kMaxTasks, and runs serially outside") {
  const int count = ThreadPool::kMaxTasks + 1000;
  std::vector<unsigned char> seen(std::size_t(count), 0);
  auto mark = [&](int i) { ++seen[std::size_t(i)]; };
  CHECK(current_threads() == 1);
  parallel_for(100, mark);  // no pool: the caller alone
  {
    ThreadPool pool(2);
    const detail::PoolScope scope(pool);
    CHECK(current_threads() == 2);
    parallel_for(count, mark);
  }
  CHECK(current_threads() == 1);
  for (int i = 0; i < count; ++i)
    if (seen[std::size_t(i)] != (i < 100 ? 2 : 1)) FAIL("index " << i << " ran " << int(seen[std::size_t(i)]) << " times");
}

TEST_CASE("thread pool: pools on several caller threads at once, built and destroyed repeatedly") {
  std::vector<std::thread> callers;
  std::atomic<long> total{0};
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        ThreadPool pool(2);
        auto add = [&](int task) { total.fetch_add(task); };
        for (int call = 0; call < 50; ++call) pool.run(64, add);
      }
    });
  for (auto& t : callers) t.join();
  CHECK(total.load() == 3L * 20 * 50 * (63 * 64 / 2));
}

TEST_CASE("thread pool: a bad thread count or task count is refused") {
  CHECK_THROWS_WITH_AS(ThreadPool(-3), "blockformer: ThreadPool: threads -3 not in [1, 1024] (0 means the default, one per physical core)",
                       Error);
  CHECK(ThreadPool(0).threads() == default_threads());
  ThreadPool pool(2);
  int ran = 0;
  auto count = [&](int) { ++ran; };
  CHECK_THROWS_WITH_AS(pool.run(ThreadPool::kMaxTasks + 1, count), doctest::Contains("more than kMaxTasks"), Error);
  CHECK(ran == 0);
}

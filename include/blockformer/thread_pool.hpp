// SPDX-License-Identifier: Apache-2.0
#pragma once
// CPU worker threads for one model call at a time. A session owns a pool; the model entry points
// make it the calling thread's current pool for the duration of the call (PoolScope), and CPU
// kernels split their work over it with parallel_for(). Backends keep their op signatures, and a
// backend that does not thread (CUDA) never looks at the pool.
//
// Why not OpenMP: GOMP's idle threads spin for a long time (OMP_WAIT_POLICY, GOMP_SPINCOUNT),
// which stalls every op when another process shares the cores, and only environment variables,
// read once when libgomp loads, change that; a library inside someone else's process cannot set
// them. Workers here spin briefly (kSpin), then sleep on a futex (std::atomic::wait). Tasks are
// claimed one at a time, so a worker the OS has descheduled delays a call only by the task it
// holds: the caller takes whatever is left. Dispatch passes a function pointer and a pointer to
// the caller's functor: no allocation per call, so decode steps stay allocation-free.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "blockformer/error.hpp"

namespace blockformer {

/// Most threads a pool accepts: far above any CPU we target, low enough to catch a garbage count.
inline constexpr int kMaxThreads = 1024;

/// Threads a call uses by default: the physical cores this process may run on. Counted as the
/// distinct SMT sibling groups (/sys/devices/system/cpu/cpuN/topology/thread_siblings_list) of the
/// CPUs in the affinity mask (taskset, cpusets), since two SMT threads of a core share its FMA
/// units and a second one adds little to GEMMs; hardware_concurrency() when sysfs is unreadable.
/// CPU quotas (docker --cpus) are not seen: pass a thread count there.
inline int default_threads() {
  static const int cores = [] {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return int(std::max(1u, std::thread::hardware_concurrency()));
    std::set<std::string> groups;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &mask)) continue;
      std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
      std::string siblings;
      if (!std::getline(in, siblings)) return CPU_COUNT(&mask);  // no topology: count CPUs
      groups.insert(siblings);
    }
    return std::clamp(int(groups.size()), 1, kMaxThreads);
  }();
  return cores;
}

/// A thread count given by a user: 0 means default_threads(); else it must be in [1, kMaxThreads].
inline int resolve_threads(int threads, const char* where) {
  if (threads == 0) return default_threads();
  if (threads < 0 || threads > kMaxThreads)
    throw Error(std::string(where) + ": threads " + std::to_string(threads) + " not in [1, " +
                std::to_string(kMaxThreads) + "] (0 means the default, one per physical core)");
  return threads;
}

/// `threads - 1` workers plus the calling thread. One call at a time: run() from two threads at
/// once is a misuse the owning session already refuses (detail::SessionInUse).
class ThreadPool {
 public:
  /// How long an idle worker polls for the next call before it sleeps: long enough to bridge the
  /// gaps between the ops of a decode step (microseconds), short enough that a pool between
  /// calls costs a busy machine nothing.
  static constexpr std::chrono::microseconds kSpin{50};

  explicit ThreadPool(int threads = 1) : threads_(resolve_threads(threads, "ThreadPool")) {
    workers_.reserve(threads_ - 1);
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { work(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    stop_.store(true);
    epoch_.fetch_add(1);
    epoch_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  int threads() const { return threads_; }

  /// Calls fn(task) for every task in [0, tasks), on the caller and the workers, and returns when
  /// all are done. fn must not throw (kernels don't). At most kMaxTasks tasks; parallel_for()
  /// takes any count.
  template <class Fn>
  void run(int tasks, Fn& fn) {
    if (tasks <= 0) return;
    if (tasks > kMaxTasks)
      throw Error("ThreadPool::run: " + std::to_string(tasks) + " tasks, more than kMaxTasks " +
                  std::to_string(kMaxTasks) + "; use parallel_for()");
    if (threads_ == 1 || tasks == 1) {
      for (int t = 0; t < tasks; ++t) fn(t);
      return;
    }
    call_ = [](void* f, int task) { (*static_cast<Fn*>(f))(task); };
    fn_ = &fn;
    done_.store(0, std::memory_order_relaxed);
    serial_ = (serial_ + 1) & kSerialMask;
    ticket_.store(ticket(serial_, tasks, 0), std::memory_order_release);
    epoch_.fetch_add(1);  // seq_cst: pairs with a worker's sleeping_ increment (no lost wake-up)
    if (sleeping_.load() > 0) epoch_.notify_all();
    int finished = drain(serial_);
    if (finished == tasks) return;
    // The rest is held by workers: poll briefly, then sleep until the last one finishes.
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0; (finished = done_.load(std::memory_order_acquire)) < tasks; ++i) {
      if (i % 64 != 63) {
        pause();
      } else if (std::chrono::steady_clock::now() > until) {
        caller_waiting_.store(true);
        while ((finished = done_.load()) < tasks) done_.wait(finished);
        caller_waiting_.store(false, std::memory_order_relaxed);
        break;
      }
    }
  }

 private:
  // ticket_ packs the call's serial number, its task count and the next unclaimed task, so one
  // compare-exchange claims a task of exactly the call a worker woke for: a worker that wakes
  // late, after its call ended, claims nothing of the next.
  static constexpr int kTaskBits = 20;
  static constexpr std::uint64_t kTaskMask = (std::uint64_t(1) << kTaskBits) - 1;
  static constexpr std::uint64_t kSerialMask = (std::uint64_t(1) << (64 - 2 * kTaskBits)) - 1;
  static std::uint64_t ticket(std::uint64_t serial, int tasks, int next) {
    return serial << (2 * kTaskBits) | std::uint64_t(tasks) << kTaskBits | std::uint64_t(next);
  }

 public:
  /// Most tasks of one run(); parallel_for() groups larger counts.
  static constexpr int kMaxTasks = int(kTaskMask);

 private:
  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  /// Claims and runs tasks of call `serial` until none is left; returns how many tasks of that
  /// call are done once this thread's last one is.
  int drain(std::uint64_t serial) {
    int finished = 0;
    std::uint64_t t = ticket_.load(std::memory_order_acquire);
    while (true) {
      const int tasks = int(t >> kTaskBits & kTaskMask), next = int(t & kTaskMask);
      if (t >> (2 * kTaskBits) != serial || next >= tasks) return finished;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      call_(fn_, next);
      finished = done_.fetch_add(1) + 1;  // seq_cst: pairs with the caller's caller_waiting_ store
      if (finished == tasks && caller_waiting_.load()) done_.notify_all();
      t = ticket_.load(std::memory_order_acquire);
    }
  }

  void work() {
    // The epoch at construction, not at this thread's start: a call or the destructor may bump it
    // before the thread runs, and it must see that bump.
    std::uint32_t seen = 0;
    while (true) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int i = 0; epoch_.load(std::memory_order_acquire) == seen; ++i) {
        if (i % 64 != 63) {
          pause();
        } else if (std::chrono::steady_clock::now() > until) {
          sleeping_.fetch_add(1);
          epoch_.wait(seen);
          sleeping_.fetch_sub(1);
        }
      }
      seen = epoch_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      drain(ticket_.load(std::memory_order_acquire) >> (2 * kTaskBits));
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  void (*call_)(void*, int) = nullptr;  // written by run() before the ticket is published
  void* fn_ = nullptr;
  std::uint64_t serial_ = 0;
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<std::uint32_t> epoch_{0};  // bumped per call: what idle workers wait on
  std::atomic<int> sleeping_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
};

namespace detail {

/// The pool of the model call running on this thread; nullptr outside one (ops then run serially).
inline ThreadPool*& current_pool() {
  thread_local ThreadPool* pool = nullptr;
  return pool;
}

/// Makes `pool` the calling thread's current pool until the scope ends (nests: restores the outer).
class PoolScope {
 public:
  explicit PoolScope(ThreadPool& pool) : outer_(current_pool()) { current_pool() = &pool; }
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;
  ~PoolScope() { current_pool() = outer_; }

 private:
  ThreadPool* outer_;
};

}  // namespace detail

/// Threads the current call may use (1 outside a model call).
inline int current_threads() {
  const ThreadPool* pool = detail::current_pool();
  return pool ? pool->threads() : 1;
}

/// Calls fn(i) for i in [0, count) on the current call's pool, or serially outside one. Counts
/// above ThreadPool::kMaxTasks go in contiguous groups, so any count is accepted.
template <class Fn>
void parallel_for(int count, Fn&& fn) {
  ThreadPool* pool = detail::current_pool();
  if (!pool || pool->threads() == 1 || count <= 1) {
    for (int i = 0; i < count; ++i) fn(i);
    return;
  }
  const int tasks = std::min(count, ThreadPool::kMaxTasks);
  auto group = [&](int task) {
    const int begin = int(std::int64_t(count) * task / tasks), end = int(std::int64_t(count) * (task + 1) / tasks);
    for (int i = begin; i < end; ++i) fn(i);
  };
  pool->run(tasks, group);
}

}  // namespace blockformer

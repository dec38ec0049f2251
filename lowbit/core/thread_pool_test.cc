#include "lowbit/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace lowbit {
namespace {

// Runs parallel_for and checks that every task ran exactly once.
void expect_each_task_once(ThreadPool& pool, size_t num_tasks, int max_threads) {
  std::unique_ptr<std::atomic<int>[]> counts(new std::atomic<int>[num_tasks + 1]);
  for (size_t i = 0; i <= num_tasks; ++i) counts[i] = 0;
  pool.parallel_for(num_tasks, max_threads, [&](size_t task) {
    ASSERT_LT(task, num_tasks);
    counts[task].fetch_add(1);
  });
  for (size_t i = 0; i < num_tasks; ++i) {
    ASSERT_EQ(counts[i].load(), 1) << "task " << i << " of " << num_tasks
                                   << ", max_threads " << max_threads;
  }
}

TEST(ThreadPoolTest, EveryTaskRunsExactlyOnce) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  for (size_t num_tasks : {0, 1, 2, 3, 4, 5, 7, 64, 1000, 10007}) {
    for (int max_threads : {-1, 0, 1, 2, 3, 4, 5, 8, 64}) {
      expect_each_task_once(pool, num_tasks, max_threads);
    }
  }
}

TEST(ThreadPoolTest, GlobalPoolRunsEveryTaskOnce) {
  for (size_t num_tasks : {0, 1, 2, 17, 1000}) {
    for (int max_threads : {1, 2, 3, 6}) {
      expect_each_task_once(ThreadPool::global(), num_tasks, max_threads);
    }
  }
}

TEST(ThreadPoolTest, GlobalPoolGrowsOnDemand) {
  ThreadPool& pool = ThreadPool::global();
  EXPECT_EQ(&pool, &ThreadPool::global());
  pool.parallel_for(100, 5, [](size_t) {});
  EXPECT_GE(pool.size(), 4);
  const int before = pool.size();
  pool.parallel_for(100, 2, [](size_t) {});
  EXPECT_EQ(pool.size(), before);  // it never shrinks
}

TEST(ThreadPoolTest, ZeroWorkerPoolRunsInline) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), 0);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> ran{0};
  pool.parallel_for(50, 8, [&](size_t) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++ran;
  });
  EXPECT_EQ(ran.load(), 50);
}

TEST(ThreadPoolTest, SingleThreadRunsInOrderOnCaller) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<size_t> order;
  pool.parallel_for(10, 1, [&](size_t task) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(task);
  });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// Each of four tasks waits until all four have started, which can only
// happen if four threads (the caller and three workers) run at once. The
// deadline turns a bug into a failure instead of a hang; it does not measure
// speed.
TEST(ThreadPoolTest, WorkersReallyRunConcurrently) {
  ThreadPool pool(3);
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  std::mutex ids_mutex;
  std::set<std::thread::id> ids;
  pool.parallel_for(4, 4, [&](size_t) {
    {
      std::lock_guard<std::mutex> lock(ids_mutex);
      ids.insert(std::this_thread::get_id());
    }
    ++arrived;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (arrived.load() < 4) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_FALSE(timed_out.load());
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(ids.count(std::this_thread::get_id()));
}

TEST(ThreadPoolTest, MaxThreadsLargerThanWorkers) {
  ThreadPool pool(2);
  std::mutex ids_mutex;
  std::set<std::thread::id> ids;
  std::atomic<int> ran{0};
  pool.parallel_for(1000, 16, [&](size_t) {
    std::lock_guard<std::mutex> lock(ids_mutex);
    ids.insert(std::this_thread::get_id());
    ++ran;
  });
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_LE(ids.size(), 3u);  // two workers plus the caller, never more
  EXPECT_EQ(pool.size(), 2);  // an explicit pool does not grow
}

TEST(ThreadPoolTest, ExceptionPropagates) {
  ThreadPool pool(3);
  for (int max_threads : {1, 2, 4}) {
    std::atomic<int> ran{0};
    try {
      pool.parallel_for(100, max_threads, [&](size_t task) {
        ++ran;
        if (task == 5) throw std::runtime_error("task 5 failed");
      });
      FAIL() << "no exception, max_threads " << max_threads;
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task 5 failed");
    }
    EXPECT_GE(ran.load(), 6);
    // The pool is still usable afterwards.
    expect_each_task_once(pool, 100, max_threads);
  }
}

TEST(ThreadPoolTest, OneOfManyExceptionsPropagates) {
  ThreadPool pool(3);
  try {
    pool.parallel_for(1000, 4, [](size_t task) {
      throw std::runtime_error("task " + std::to_string(task));
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("task ", 0), 0u);
  }
}

TEST(ThreadPoolTest, NestedCallsRunInline) {
  ThreadPool pool(3);
  constexpr size_t kOuter = 16;
  constexpr size_t kInner = 50;
  std::vector<std::atomic<int>> counts(kOuter * kInner);
  pool.parallel_for(kOuter, 4, [&](size_t outer) {
    const std::thread::id me = std::this_thread::get_id();
    pool.parallel_for(kInner, 4, [&](size_t inner) {
      EXPECT_EQ(std::this_thread::get_id(), me);
      counts[outer * kInner + inner]++;
    });
    // A nested call on a different pool is inline too.
    ThreadPool::global().parallel_for(3, 4, [&](size_t) {
      EXPECT_EQ(std::this_thread::get_id(), me);
    });
  });
  for (auto& c : counts) EXPECT_EQ(c.load(), 1);
}

TEST(ThreadPoolTest, NestedExceptionPropagatesOutward) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(8, 3,
                                 [&](size_t outer) {
                                   pool.parallel_for(8, 3, [&](size_t inner) {
                                     if (outer == 3 && inner == 4) throw std::logic_error("inner");
                                   });
                                 }),
               std::logic_error);
  expect_each_task_once(pool, 64, 3);
}

TEST(ThreadPoolTest, ConcurrentCallersShareOnePool) {
  ThreadPool pool(2);
  constexpr int kCallers = 4;
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        std::vector<std::atomic<int>> counts(200);
        pool.parallel_for(counts.size(), 3, [&](size_t task) { counts[task]++; });
        for (auto& n : counts) {
          if (n.load() != 1) ++failures;
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ThreadPoolTest, ResultsAreVisibleToTheCaller) {
  ThreadPool pool(3);
  std::vector<uint64_t> out(100000);
  pool.parallel_for(100, 4, [&](size_t task) {
    for (size_t i = task * 1000; i < (task + 1) * 1000; ++i) out[i] = i * i;
  });
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], i * i);
}

// Sets LOWBIT_NUM_THREADS for one test and restores it afterwards.
class EnvThreads {
 public:
  EnvThreads() {
    const char* old = std::getenv("LOWBIT_NUM_THREADS");
    had_ = old != nullptr;
    if (had_) old_ = old;
  }
  ~EnvThreads() {
    if (had_) {
      ::setenv("LOWBIT_NUM_THREADS", old_.c_str(), 1);
    } else {
      ::unsetenv("LOWBIT_NUM_THREADS");
    }
  }
  void set(const char* value) { ::setenv("LOWBIT_NUM_THREADS", value, 1); }
  void unset() { ::unsetenv("LOWBIT_NUM_THREADS"); }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(ThreadPoolTest, DefaultThreadCount) {
  EnvThreads env;
  env.unset();
  const unsigned hw = std::thread::hardware_concurrency();
  const int fallback = hw >= 1 ? static_cast<int>(hw) : 1;
  EXPECT_EQ(default_thread_count(), fallback);
  env.set("3");
  EXPECT_EQ(default_thread_count(), 3);
  env.set("1");
  EXPECT_EQ(default_thread_count(), 1);
  for (const char* bad : {"0", "-2", "", "abc", "4x", " 4", "99999999999999999999"}) {
    env.set(bad);
    EXPECT_EQ(default_thread_count(), fallback) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace lowbit

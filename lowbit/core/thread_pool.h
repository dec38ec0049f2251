// A small persistent thread pool for data-parallel array kernels.
//
// Kernels split an array into chunks and call parallel_for; the pool keeps
// its threads alive between calls so that a kernel on a few hundred KiB does
// not pay thread start-up each time, and idle threads poll for new work for
// a moment before they sleep, so that a run of small calls (a one-token
// forward pass) does not pay a wake-up each time either. Tasks are claimed dynamically through an
// atomic counter, so uneven chunks balance themselves, and results never
// depend on which thread ran which task as long as each task writes only its
// own output (the design's "bit-exact for every thread count" rule).
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

// The thread count to use when the user has not chosen one: the environment
// variable LOWBIT_NUM_THREADS if it is a decimal integer >= 1, otherwise
// available_cores(). An invalid value is ignored here rather than an error,
// so a stray setting cannot break a library user's run; the CLI refuses it.
int default_thread_count();

// The CPUs this process may run on (its affinity mask, which taskset and
// container limits narrow), at least 1.
int available_cores();

class ThreadPool {
 public:
  // The process-wide pool. It starts with no worker threads and grows
  // lazily, up to a cap, to max_threads - 1 workers the first time a
  // parallel_for asks for more than it has. It is never destroyed: worker
  // threads blocked at exit would otherwise race with static destructors.
  static ThreadPool& global();

  // A pool with exactly num_workers worker threads (0 is allowed: everything
  // then runs on the calling thread). It does not grow.
  explicit ThreadPool(int num_workers);
  // Joins the workers. No parallel_for may be running on this pool.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The number of worker threads, not counting the threads that call
  // parallel_for.
  int size() const;

  // Runs fn(task) for every task in [0, num_tasks) on up to max_threads
  // threads, the calling thread included, and returns when all have
  // finished. max_threads <= 1 or num_tasks <= 1 runs everything inline.
  //
  // If tasks throw, no new tasks are started once the first exception is
  // seen (the remaining work would be discarded anyway), the tasks already
  // running finish, and then the first exception is rethrown.
  //
  // A parallel_for called from inside a task (of any pool) runs inline on
  // that thread: waiting for other workers from inside a worker is how
  // nested pools deadlock. Several threads may call parallel_for on the same
  // pool at once; each call then gets whichever workers are free and does
  // the rest of its work itself.
  void parallel_for(size_t num_tasks, int max_threads,
                    const std::function<void(size_t task)>& fn);

 private:
  struct Job;

  ThreadPool(int num_workers, bool growable);
  void worker_loop();
  // Starts workers until there are `wanted` (requires mutex_ held).
  void grow_locked(size_t wanted);
  static void run_tasks(Job& job);
  void pop_front_locked();

  const bool growable_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // a job was queued, or stop_
  std::condition_variable done_cv_;  // a helper left a job
  std::deque<Job*> queue_;           // jobs that still accept helpers
  std::atomic<size_t> queued_{0};    // queue_.size(), for idle workers to poll without the lock
  std::atomic<bool> spin_{false};    // threads fit the cores: idle threads poll before sleeping
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

// fn(begin, end) over [0, count) in chunks of `chunk` elements, on the
// global pool: for element-wise work, where any partition gives the same
// result and the chunk only sets the grain.
inline void parallel_chunks(int64_t count, int64_t chunk, int threads,
                            const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (count <= 0) return;
  const int64_t tasks = (count + chunk - 1) / chunk;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) * chunk;
    fn(b, count - b < chunk ? count : b + chunk);
  });
}

}  // namespace lowbit

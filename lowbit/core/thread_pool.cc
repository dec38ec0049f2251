#include "lowbit/core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <system_error>

namespace lowbit {
namespace {

// The global pool grows on request, but a typo such as max_threads = 100000
// must not start that many threads.
constexpr size_t kMaxGlobalWorkers = 255;

// How long an idle thread polls for work before it sleeps on a condition
// variable, and how long a caller polls for its helpers before it sleeps.
// A one-token forward pass is a few hundred parallel_for calls of tens of
// microseconds each; a futex wake-up costs about as much as the work, so
// without the polling two threads ran decode slower than one. Polling is
// only done while the pool has no more threads than the process has cores
// (an oversubscribed pool would take the time from the threads doing work).
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls done() for up to kSpin; true as soon as it holds.
template <class Done>
bool spin_until(const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// True while this thread runs a parallel_for task; nested calls then run
// inline instead of waiting on workers that may all be busy waiting too.
thread_local bool t_in_task = false;

// Restores t_in_task on scope exit, also when a task throws.
class InTaskScope {
 public:
  InTaskScope() : saved_(t_in_task) { t_in_task = true; }
  ~InTaskScope() { t_in_task = saved_; }
  InTaskScope(const InTaskScope&) = delete;
  InTaskScope& operator=(const InTaskScope&) = delete;

 private:
  bool saved_;
};

}  // namespace

int default_thread_count() {
  if (const char* env = std::getenv("LOWBIT_NUM_THREADS"); env != nullptr) {
    int value = 0;
    const char* end = env + std::strlen(env);
    const auto [ptr, ec] = std::from_chars(env, end, value);
    if (ec == std::errc() && ptr == end && ptr != env && value >= 1) return value;
  }
  return available_cores();
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw >= 1 ? static_cast<int>(std::min<unsigned>(hw, 1u << 16)) : 1;
}

// One parallel_for call. It lives on the caller's stack; workers reach it
// only through queue_ and only while counted in `helpers_active`, and the
// caller does not return before that count is zero and the job is unqueued.
struct ThreadPool::Job {
  const std::function<void(size_t)>* fn = nullptr;
  size_t num_tasks = 0;
  std::atomic<size_t> next{0};         // the next unclaimed task
  std::atomic<bool> failed{false};     // a task threw: claim nothing more
  std::exception_ptr error;            // the first exception, set once
  int helpers_wanted = 0;              // guarded by mutex_
  // Raised under mutex_ only; lowered by each helper as it leaves. Once
  // the job is unqueued it only falls, and the caller may read it without
  // the lock (and return, destroying the job, when it reaches zero).
  std::atomic<int> helpers_active{0};
};

ThreadPool& ThreadPool::global() {
  // Deliberately leaked; see the header.
  static ThreadPool* const pool = new ThreadPool(0, /*growable=*/true);
  return *pool;
}

ThreadPool::ThreadPool(int num_workers) : ThreadPool(num_workers, /*growable=*/false) {}

ThreadPool::ThreadPool(int num_workers, bool growable) : growable_(growable) {
  std::lock_guard<std::mutex> lock(mutex_);
  grow_locked(static_cast<size_t>(std::max(num_workers, 0)));
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int ThreadPool::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(workers_.size());
}

void ThreadPool::grow_locked(size_t wanted) {
  // The common case, every parallel_for on the global pool: nothing to do
  // (and no affinity syscall).
  if (workers_.size() >= wanted) return;
  // Whatever happens below, poll only while threads fit the cores.
  struct Update {
    ThreadPool* p;
    ~Update() { p->spin_.store(p->workers_.size() + 1 <= static_cast<size_t>(available_cores())); }
  } update{this};
  while (workers_.size() < wanted) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      // Out of threads (ulimit -u, memory): run with the workers we have;
      // the caller's thread still makes progress on its own.
      if (!growable_ && workers_.empty()) throw;
      break;
    }
  }
}

void ThreadPool::pop_front_locked() {
  queue_.pop_front();
  queued_.store(queue_.size(), std::memory_order_relaxed);
}

void ThreadPool::run_tasks(Job& job) {
  InTaskScope scope;
  while (!job.failed.load(std::memory_order_relaxed)) {
    const size_t task = job.next.fetch_add(1, std::memory_order_relaxed);
    if (task >= job.num_tasks) break;
    try {
      (*job.fn)(task);
    } catch (...) {
      // Only the first failure is kept; its writer is the only one that sees
      // `failed` flip, so `error` is written once. The caller reads it after
      // every helper has left the job under mutex_, which orders the write.
      if (!job.failed.exchange(true)) job.error = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_.empty() && !stop_ && spin_.load(std::memory_order_relaxed)) {
      lock.unlock();
      spin_until([this] { return queued_.load(std::memory_order_relaxed) != 0; });
      lock.lock();
    }
    work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and nothing left to help with
    Job* job = queue_.front();
    if (--job->helpers_wanted == 0) pop_front_locked();
    job->helpers_active.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    run_tasks(*job);
    lock.lock();
    // The job is not touched after this: once helpers_active reaches zero
    // the caller may return and destroy it. The notify is under the lock so
    // that a caller between its check and its sleep cannot miss it.
    if (job->helpers_active.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_all();
  }
}

void ThreadPool::parallel_for(size_t num_tasks, int max_threads,
                              const std::function<void(size_t task)>& fn) {
  if (num_tasks == 0) return;
  const auto run_inline = [&] {
    InTaskScope scope;
    for (size_t task = 0; task < num_tasks; ++task) fn(task);
  };
  if (max_threads <= 1 || num_tasks <= 1 || t_in_task) return run_inline();

  // Helpers beyond the number of tasks would find nothing to do.
  size_t helpers = std::min(static_cast<size_t>(max_threads) - 1, num_tasks - 1);
  Job job;
  job.fn = &fn;
  job.num_tasks = num_tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (growable_) grow_locked(std::min(helpers, kMaxGlobalWorkers));
    helpers = std::min(helpers, workers_.size());
    if (helpers > 0) {
      job.helpers_wanted = static_cast<int>(helpers);
      queue_.push_back(&job);
      queued_.store(queue_.size(), std::memory_order_relaxed);
    }
  }
  if (helpers == 0) return run_inline();
  // Wake at most as many workers as the job can use.
  for (size_t i = 0; i < helpers; ++i) work_cv_.notify_one();

  run_tasks(job);

  {
    std::unique_lock<std::mutex> lock(mutex_);
    // Every task is claimed (or the job failed): workers that have not
    // joined yet would only find an empty counter, so withdraw the offer.
    if (job.helpers_wanted > 0) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
      queued_.store(queue_.size(), std::memory_order_relaxed);
      job.helpers_wanted = 0;
    }
  }
  const auto helpers_done = [&] { return job.helpers_active.load(std::memory_order_acquire) == 0; };
  if (!(spin_.load(std::memory_order_relaxed) && spin_until(helpers_done))) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, helpers_done);
  }
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace lowbit

#include "lowbit/core/signal_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "lowbit/core/error.h"
#include "lowbit/core/temp_paths.h"

namespace lowbit {
namespace {

constexpr int kTerminating[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// What a handler tells the guardian thread. One write(2) of a few bytes to
// a pipe is atomic and async-signal-safe.
struct Message {
  int32_t signal;
  uint32_t slot;    // SIGBUS: the mapped range hit
  uint64_t offset;  // SIGBUS: the byte offset into that file
};

// Mapped ranges, readable from a signal handler without locks: a slot is
// live while begin != 0. Paths are only read by the guardian thread.
constexpr size_t kSlots = 512;
struct Slot {
  std::atomic<uintptr_t> begin{0}, end{0};
};
std::array<Slot, kSlots> g_slots;
std::mutex g_paths_mutex;
std::array<std::string, kSlots>* g_paths = new std::array<std::string, kSlots>;  // never destroyed (see temp_paths.cc)

std::atomic<int> g_pipe_write{-1};
std::once_flag g_installed;

void send(const Message& m) {
  const int fd = g_pipe_write.load(std::memory_order_relaxed);
  if (fd < 0) return;
  ssize_t n;
  do {
    n = ::write(fd, &m, sizeof m);
  } while (n < 0 && errno == EINTR);
}

void on_terminating_signal(int sig) { send({sig, 0, 0}); }

void on_sigbus(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (uint32_t i = 0; i < kSlots; ++i) {
    const uintptr_t b = g_slots[i].begin.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < g_slots[i].end.load(std::memory_order_acquire)) {
      send({sig, i, addr - b});
      // The guardian ends the process; this thread must not go on with
      // data it could not read.
      for (;;) ::pause();
    }
  }
  // Not a mapped input: a real fault, or a SIGBUS someone sent. Restore the
  // default action and raise it again (pending until this handler returns,
  // while a faulting instruction would also fault again): the process dies
  // as it would have without the guard.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
  ::raise(SIGBUS);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    default: return "a signal";
  }
}

[[noreturn]] void guardian(int read_fd) {
  for (;;) {
    Message m{};
    const ssize_t n = ::read(read_fd, &m, sizeof m);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof m) {
      // The pipe broke; nothing is left to guard with. Keep the thread
      // parked rather than spinning.
      for (;;) ::pause();
    }
    if (m.signal == SIGBUS) {
      std::string path;
      {
        std::lock_guard lock(g_paths_mutex);
        path = (*g_paths)[m.slot];
      }
      remove_temp_paths_for_exit();
      std::fprintf(stderr,
                   "lowbit: error: cannot read '%s': it was truncated while lowbit was reading it (no data at byte "
                   "%llu); nothing was written\n",
                   path.c_str(), static_cast<unsigned long long>(m.offset));
      std::fflush(stderr);
      ::_exit(1);
    }
    // A second signal during the clean-up takes the default action at once.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (const int s : kTerminating) {
      struct sigaction old {};
      ::sigaction(s, nullptr, &old);
      if (old.sa_handler != SIG_IGN) ::sigaction(s, &dfl, nullptr);
    }
    const size_t removed = remove_temp_paths_for_exit();
    std::fprintf(stderr, "\nlowbit: interrupted by %s%s\n", signal_name(m.signal),
                 removed ? "; the unfinished output was removed" : "");
    std::fflush(stderr);
    // Die of the signal itself: a shell then sees 128 + its number.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, m.signal);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(m.signal);
    ::_exit(128 + m.signal);  // not reached unless the signal is ignored
  }
}

void install() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail_internal(std::string("signal guard: pipe: ") + std::strerror(errno));
  g_pipe_write.store(fds[1]);
  std::thread(guardian, fds[0]).detach();
  for (const int s : kTerminating) {
    struct sigaction old {};
    ::sigaction(s, nullptr, &old);
    if (old.sa_handler == SIG_IGN) continue;  // nohup and friends
    struct sigaction sa {};
    sa.sa_handler = on_terminating_signal;
    sigemptyset(&sa.sa_mask);
    // The interrupted thread goes on with its system call; the guardian
    // ends the process.
    sa.sa_flags = SA_RESTART;
    ::sigaction(s, &sa, nullptr);
  }
  struct sigaction bus {};
  bus.sa_sigaction = on_sigbus;
  sigemptyset(&bus.sa_mask);
  bus.sa_flags = SA_SIGINFO;
  ::sigaction(SIGBUS, &bus, nullptr);
}

}  // namespace

void install_signal_guard() { std::call_once(g_installed, install); }

uint32_t guard_mapped_range(const void* begin, size_t size, const std::string& path) {
  if (begin == nullptr || size == 0) return 0;
  std::lock_guard lock(g_paths_mutex);
  for (uint32_t i = 0; i < kSlots; ++i) {
    if (g_slots[i].begin.load(std::memory_order_relaxed) != 0) continue;
    (*g_paths)[i] = path;
    const auto b = reinterpret_cast<uintptr_t>(begin);
    g_slots[i].end.store(b + size, std::memory_order_release);
    g_slots[i].begin.store(b, std::memory_order_release);
    return i + 1;
  }
  return 0;
}

void unguard_mapped_range(uint32_t token) noexcept {
  if (token == 0 || token > kSlots) return;
  std::lock_guard lock(g_paths_mutex);
  g_slots[token - 1].begin.store(0, std::memory_order_release);
  g_slots[token - 1].end.store(0, std::memory_order_release);
}

}  // namespace lowbit

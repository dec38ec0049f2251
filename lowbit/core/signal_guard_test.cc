// The signal guard, in child processes (GoogleTest death tests): a signal
// removes the registered temporary outputs and the process still dies of
// it; a SIGBUS from a truncated mapped file is an error naming the file.
#include "lowbit/core/signal_guard.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "lowbit/core/file_io.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/core/output_directory.h"
#include "lowbit/core/temp_paths.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

// The default ("fast") death tests fork: the child sees this test's
// directory, and the guard's thread starts in the child only.
class SignalGuardTest : public testing_support::TempDirTest {};

// In the child: a file and a directory under construction, then the signal.
[[noreturn]] void die_mid_write(const std::string& dir, int sig, bool guard = true) {
  if (guard) install_signal_guard();
  AtomicFile f(dir + "/out.bin");
  f.write("partial", 7);
  OutputDirectory d(dir + "/outdir", false);
  std::ofstream(d.temp_path() + "/model.safetensors") << "partial";
  ::raise(sig);
  // The guardian thread ends the process; give it the time.
  for (;;) ::pause();
}

TEST_F(SignalGuardTest, EachTerminatingSignalRemovesTemporaryOutputsAndStillKills) {
  // Without the guard the two temporaries stay: what the check below sees.
  EXPECT_EXIT(die_mid_write(dir_.string(), SIGTERM, false), ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_EQ(listing().size(), 2u);
  for (const std::string& f : listing()) fs::remove_all(dir_ / f);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    SCOPED_TRACE(sig);
    EXPECT_EXIT(die_mid_write(dir_.string(), sig), ::testing::KilledBySignal(sig), "interrupted by SIG");
    EXPECT_TRUE(listing().empty()) << "left behind: " << (listing().empty() ? "" : listing()[0]);
  }
}

TEST_F(SignalGuardTest, IgnoredSignalsStayIgnored) {
  // nohup's SIGHUP: ignored at start, so the guard leaves it ignored and
  // the process goes on (and exits 0 here).
  EXPECT_EXIT(
      {
        ::signal(SIGHUP, SIG_IGN);
        install_signal_guard();
        ::raise(SIGHUP);
        ::usleep(100000);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalGuardTest, CommittedOutputsAreNotRemoved) {
  const std::string dir = dir_.string();
  EXPECT_EXIT(
      {
        install_signal_guard();
        write_file_atomic(dir + "/done.bin", "complete", 8);
        ::raise(SIGTERM);
        for (;;) ::pause();
      },
      ::testing::KilledBySignal(SIGTERM), "interrupted by SIGTERM");
  EXPECT_EQ(listing(), std::vector<std::string>{"done.bin"});
}

TEST_F(SignalGuardTest, TruncatedMappedFileIsAnErrorNamingIt) {
  const std::string in = path("input.bin"), out = path("out.bin");
  {
    std::ofstream f(in, std::ios::binary);
    const std::string page(1 << 16, 'x');
    for (int i = 0; i < 16; ++i) f << page;
  }
  EXPECT_EXIT(
      {
        install_signal_guard();
        MappedFile m = MappedFile::open(in);
        AtomicFile f(out);
        f.write("partial", 7);
        fs::resize_file(in, 4096);
        unsigned sum = 0;
        for (size_t i = 0; i < m.size(); i += 4096) sum += static_cast<unsigned>(*(volatile const std::byte*)(m.data() + i));
        std::exit(sum == 0 ? 0 : 0);  // not reached: the read past the new end faults
      },
      ::testing::ExitedWithCode(1), "cannot read '.*input.bin': it was truncated while lowbit was reading it");
  EXPECT_EQ(listing(), std::vector<std::string>{"input.bin"});
}

TEST_F(SignalGuardTest, OtherBusErrorsKeepTheirDefaultAction) {
  // A SIGBUS that no mapped input explains is a bug: it must still crash.
  EXPECT_EXIT(
      {
        install_signal_guard();
        ::raise(SIGBUS);
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGBUS), "");
}

}  // namespace
}  // namespace lowbit

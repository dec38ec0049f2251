#include "lowbit/core/temp_paths.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lowbit/core/file_io.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

class TempPathsTest : public testing_support::TempDirTest {};

// What a signal's clean-up would remove: AtomicFile's temporary while it is
// being written, and nothing once it is committed or abandoned. Checked in
// a child process, since the clean-up holds the registry until exit.
TEST_F(TempPathsTest, AtomicFileIsRegisteredUntilCommitted) {
  const std::string dir = dir_.string();
  EXPECT_EXIT(
      {
        AtomicFile pending(dir + "/a.bin");
        pending.write("x", 1);
        write_file_atomic(dir + "/b.bin", "y", 1);  // committed: stays
        fs::create_directory(dir + "/tmpdir");
        std::ofstream(dir + "/tmpdir/inside") << "z";
        register_temp_path(dir + "/tmpdir", true);
        const size_t removed = remove_temp_paths_for_exit();
        std::exit(removed == 2 && !fs::exists(pending.temp_path()) && !fs::exists(dir + "/tmpdir") ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"b.bin"});
}

TEST_F(TempPathsTest, UnregisteredPathsStay) {
  const std::string dir = dir_.string();
  EXPECT_EXIT(
      {
        std::ofstream(dir + "/kept") << "k";
        unregister_temp_path(register_temp_path(dir + "/kept", false));
        unregister_temp_path(0);  // ignored
        std::exit(remove_temp_paths_for_exit() == 0 ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"kept"});
}

}  // namespace
}  // namespace lowbit

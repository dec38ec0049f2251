#include "lowbit/core/path_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

class PathIdentityTest : public testing_support::TempDirTest {};

TEST_F(PathIdentityTest, TrailingSlashes) {
  EXPECT_EQ(without_trailing_slashes("out/"), "out");
  EXPECT_EQ(without_trailing_slashes("out//"), "out");
  EXPECT_EQ(without_trailing_slashes("a/b"), "a/b");
  EXPECT_EQ(without_trailing_slashes("/"), "/");
  EXPECT_EQ(without_trailing_slashes(""), "");
}

TEST_F(PathIdentityTest, SameFileHoweverSpelled) {
  std::ofstream(path("a.npy")) << "x";
  fs::create_directory(path("sub"));
  fs::create_symlink(path("a.npy"), path("link.npy"));
  fs::create_hard_link(path("a.npy"), path("hard.npy"));
  EXPECT_TRUE(same_path(path("a.npy"), path("a.npy")));
  EXPECT_TRUE(same_path(path("a.npy"), (dir_ / "sub" / ".." / "a.npy").string()));
  EXPECT_TRUE(same_path(path("a.npy"), path("link.npy")));
  EXPECT_TRUE(same_path(path("a.npy"), path("hard.npy")));
  EXPECT_FALSE(same_path(path("a.npy"), path("sub")));
  // Paths that do not exist yet: the same name in the same directory.
  EXPECT_TRUE(same_path(path("new.gguf"), (dir_ / "sub" / ".." / "new.gguf").string()));
  EXPECT_FALSE(same_path(path("new.gguf"), path("other.gguf")));
  EXPECT_FALSE(same_path(path("new.gguf"), path("a.npy")));
}

TEST_F(PathIdentityTest, WithinADirectory) {
  fs::create_directories(path("m/sub"));
  std::ofstream(path("m/sub/w.safetensors")) << "x";
  fs::create_symlink(path("m"), path("alias"));
  EXPECT_TRUE(is_within(path("m/sub/w.safetensors"), path("m")));
  EXPECT_TRUE(is_within(path("m/sub/w.safetensors"), path("m/")));
  EXPECT_TRUE(is_within(path("alias/sub/w.safetensors"), path("m")));
  EXPECT_TRUE(is_within(path("m"), path("m")));
  EXPECT_TRUE(is_within(path("m/not-yet"), path("m")));
  EXPECT_FALSE(is_within(path("m"), path("m/sub")));
  EXPECT_FALSE(is_within(path("elsewhere"), path("m")));
  EXPECT_FALSE(is_within(path("m/x"), path("missing")));
}

}  // namespace
}  // namespace lowbit

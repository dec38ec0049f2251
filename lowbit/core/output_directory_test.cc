#include "lowbit/core/output_directory.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_support::catch_error;

class OutputDirectoryTest : public testing_support::TempDirTest {
 protected:
  // Builds an output with the given files (name -> contents) and commits it.
  uint64_t write_output(const std::string& out, const std::map<std::string, std::string>& files,
                        bool overwrite = false) {
    OutputDirectory d(out, overwrite);
    for (const auto& [name, text] : files) {
      fs::create_directories((fs::path(d.temp_path()) / name).parent_path());
      std::ofstream(fs::path(d.temp_path()) / name) << text;
    }
    return d.commit();
  }
  std::string read(const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::set<std::string> tree(const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) out.insert(e.path().lexically_relative(dir).string());
    }
    return out;
  }
};

TEST_F(OutputDirectoryTest, NewDirectoryAppearsWithItsManifest) {
  const uint64_t bytes = write_output(path("out"), {{"model.safetensors", "abc"}, {"1_Pooling/config.json", "{}"}});
  EXPECT_EQ(tree(path("out")),
            (std::set<std::string>{"model.safetensors", "1_Pooling/config.json", OutputDirectory::kManifest}));
  EXPECT_GT(bytes, 5u);
  EXPECT_EQ(listing(), std::vector<std::string>{"out"});  // no temporary left
}

TEST_F(OutputDirectoryTest, TrailingSlashAndEmptyDirectory) {
  fs::create_directory(path("empty"));
  write_output(path("empty") + "/", {{"a", "1"}});
  EXPECT_EQ(read(path("empty/a")), "1");
}

TEST_F(OutputDirectoryTest, PreviousLowbitOutputIsReplacedWhole) {
  write_output(path("out"), {{"old-only", "old"}, {"model.safetensors", "v1"}});
  write_output(path("out"), {{"model.safetensors", "v2"}});
  EXPECT_EQ(tree(path("out")), (std::set<std::string>{"model.safetensors", OutputDirectory::kManifest}));
  EXPECT_EQ(read(path("out/model.safetensors")), "v2");
  EXPECT_EQ(listing(), std::vector<std::string>{"out"});
}

TEST_F(OutputDirectoryTest, ForeignFilesAreRefusedBeforeAnyWork) {
  fs::create_directory(path("d"));
  std::ofstream(path("d/notes.txt")) << "mine";
  const Error e = catch_error([&] { OutputDirectory::check(path("d"), false); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  EXPECT_EQ(catch_error([&] { OutputDirectory d(path("d"), false); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(tree(path("d")), std::set<std::string>{"notes.txt"});
  // A lowbit output to which the user added a file is no longer lowbit's alone.
  write_output(path("out"), {{"model.safetensors", "v1"}});
  std::ofstream(path("out/added.txt")) << "mine";
  EXPECT_EQ(catch_error([&] { OutputDirectory::check(path("out"), false); }).kind(), ErrorKind::kUsage);
  // A symbolic link is never lowbit's either.
  fs::create_directory(path("l"));
  fs::create_symlink(path("d/notes.txt"), path("l/link"));
  EXPECT_EQ(catch_error([&] { OutputDirectory::check(path("l"), false); }).kind(), ErrorKind::kUsage);
}

TEST_F(OutputDirectoryTest, OverwriteReplacesOnlyLowbitsFiles) {
  fs::create_directory(path("d"));
  std::ofstream(path("d/notes.txt")) << "mine";
  std::ofstream(path("d/config.json")) << "theirs";
  write_output(path("d"), {{"config.json", "lowbit's"}, {"model.safetensors", "v1"}, {"stale", "s"}}, true);
  EXPECT_EQ(read(path("d/notes.txt")), "mine");
  EXPECT_EQ(read(path("d/config.json")), "lowbit's");
  // A second run: what the earlier manifest listed and this run does not
  // write goes; the user's file stays.
  write_output(path("d"), {{"config.json", "lowbit's 2"}, {"model.safetensors", "v2"}}, true);
  EXPECT_EQ(tree(path("d")),
            (std::set<std::string>{"notes.txt", "config.json", "model.safetensors", OutputDirectory::kManifest}));
  EXPECT_EQ(read(path("d/model.safetensors")), "v2");
  EXPECT_EQ(read(path("d/notes.txt")), "mine");
}

TEST_F(OutputDirectoryTest, UnfinishedOutputLeavesNothing) {
  write_output(path("out"), {{"model.safetensors", "v1"}});
  {
    OutputDirectory d(path("out"), false);
    std::ofstream(fs::path(d.temp_path()) / "model.safetensors") << "half";
  }  // no commit: an exception on the way
  EXPECT_EQ(read(path("out/model.safetensors")), "v1");
  EXPECT_EQ(listing(), std::vector<std::string>{"out"});
}

TEST_F(OutputDirectoryTest, MissingParentAndFileInTheWay) {
  EXPECT_EQ(catch_error([&] { OutputDirectory::check(path("missing/out"), false); }).kind(), ErrorKind::kIo);
  std::ofstream(path("file")) << "x";
  EXPECT_EQ(catch_error([&] { OutputDirectory::check(path("file"), false); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(catch_error([&] { OutputDirectory::check("", false); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(listing(), std::vector<std::string>{"file"});
}

}  // namespace
}  // namespace lowbit

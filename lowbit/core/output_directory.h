// A directory output (a compressed-tensors checkpoint, a comparison run's
// folder) that appears complete or not at all, and that never deletes or
// overwrites a file lowbit did not write.
//
//   OutputDirectory::check(out, overwrite);   // before any work
//   OutputDirectory dir(out, overwrite);      // "<out>.lowbit-tmp-XXXXXX" beside it
//   ... write files under dir.temp_path() ...
//   dir.commit();                             // manifest, then into place
//
// Every directory lowbit writes carries a manifest, ".lowbit-output.json",
// listing the files it wrote. What happens to an existing `out`:
//  - missing, or an empty directory: the finished directory is renamed
//    there (one atomic step);
//  - a previous lowbit output (every file in it is listed in its manifest):
//    swapped with the finished directory in one atomic step
//    (renameat2 RENAME_EXCHANGE, or two renames where the file system lacks
//    it), then the old one is removed;
//  - anything else: refused by check(), naming a file that is not lowbit's,
//    unless `overwrite` is given. With `overwrite`, lowbit moves each file
//    it wrote into the directory (replacing a file of the same name) and
//    removes the files its earlier manifest listed that this run did not
//    write again; every other file stays as it was.
// The parent directory must exist: lowbit creates no directories but the
// output itself, so a failed run leaves none behind.
//
// The temporary directory is registered with temp_paths.h, so a signal
// removes it too; the destructor removes it unless commit() was reached.
#pragma once

#include <cstdint>
#include <string>

namespace lowbit {

class OutputDirectory {
 public:
  // The manifest's file name.
  static constexpr const char* kManifest = ".lowbit-output.json";

  // Throws kUsage when `path` may not receive a directory output (see
  // above), kIo when its parent directory is missing.
  static void check(const std::string& path, bool overwrite);

  // check(), then creates the temporary directory.
  OutputDirectory(const std::string& path, bool overwrite);
  ~OutputDirectory();
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;

  const std::string& path() const { return path_; }
  // Where the output is built.
  const std::string& temp_path() const { return temp_; }

  // Writes the manifest and moves the output into place; returns the total
  // size in bytes of the files written (the manifest included).
  uint64_t commit();

 private:
  std::string path_, temp_;
  bool overwrite_ = false;
  bool committed_ = false;
  uint64_t token_ = 0;
};

}  // namespace lowbit

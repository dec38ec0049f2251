// Whether two path names lead to the same file, decided by the file system
// (device and inode), not by spelling: "a.npy", "./a.npy", "dir/../a.npy", a
// symbolic link and a hard link to it are all the same file. Commands use
// it to refuse an output that is one of their inputs before any work.
#pragma once

#include <optional>
#include <string>

namespace lowbit {

// Strips trailing slashes: "out/" -> "out", "out//" -> "out"; "/" stays.
std::string without_trailing_slashes(std::string path);

// True when `a` and `b` name the same existing file or directory, or, for
// paths that do not exist yet, the same name in the same existing directory.
bool same_path(const std::string& a, const std::string& b);

// True when `path` (existing or not) lies inside the existing directory
// `dir`, at any depth, or is `dir` itself.
bool is_within(const std::string& path, const std::string& dir);

}  // namespace lowbit

#include "lowbit/core/output_directory.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/path_identity.h"
#include "lowbit/core/temp_paths.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

struct Listing {
  std::vector<std::string> files;  // regular files, relative, sorted
  std::vector<std::string> other;  // symbolic links, FIFOs, sockets, devices: never lowbit's
};

Listing list_tree(const fs::path& dir) {
  Listing l;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::file_status s = it->symlink_status(ec);
    if (ec) break;
    const std::string rel = it->path().lexically_relative(dir).string();
    if (fs::is_directory(s)) continue;
    (fs::is_regular_file(s) ? l.files : l.other).push_back(rel);
  }
  if (ec) fail_io("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(l.files.begin(), l.files.end());
  return l;
}

// The files a manifest lists; nullopt when there is none or it is not one
// lowbit wrote.
std::optional<std::set<std::string>> read_manifest(const fs::path& dir) {
  std::ifstream f(dir / OutputDirectory::kManifest);
  if (!f) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    if (!j.is_object() || j.value("written_by", "") != "lowbit" || !j.contains("files") || !j["files"].is_array()) {
      return std::nullopt;
    }
    std::set<std::string> files;
    for (const auto& e : j["files"]) {
      if (e.is_string()) files.insert(e.get<std::string>());
    }
    return files;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// A file in `dir` that no lowbit manifest there accounts for, or nullopt.
std::optional<std::string> first_foreign(const fs::path& dir) {
  const Listing l = list_tree(dir);
  if (!l.other.empty()) return l.other.front();
  const auto listed = read_manifest(dir);
  for (const std::string& f : l.files) {
    if (f == OutputDirectory::kManifest) continue;
    if (!listed || !listed->count(f)) return f;
  }
  return std::nullopt;
}

bool is_empty_directory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec) && !ec;
}

[[noreturn]] void fail_os(const std::string& what, int err) { fail_io(what + ": " + std::strerror(err)); }

}  // namespace

void OutputDirectory::check(const std::string& path_in, bool overwrite) {
  const fs::path p(without_trailing_slashes(path_in));
  if (p.empty()) fail_usage("the output path is empty");
  fs::path parent = p.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    fail_io("cannot write '" + p.string() + "': the directory '" + parent.string() +
            "' does not exist (lowbit creates the output itself but no directories above it)");
  }
  const fs::file_status s = fs::symlink_status(p, ec);
  if (!fs::exists(s)) return;
  if (!fs::is_directory(fs::status(p, ec))) {
    fail_usage("'" + p.string() + "' exists and is not a directory; this output is a directory. Name a new one");
  }
  if (overwrite || is_empty_directory(p)) return;
  if (const auto f = first_foreign(p)) {
    fail_usage("the output directory '" + p.string() + "' holds files lowbit did not write (such as '" + *f +
               "'), and lowbit never deletes or overwrites those. Name a new or empty directory, or pass --overwrite "
               "to write lowbit's files into it and leave the others as they are");
  }
}

OutputDirectory::OutputDirectory(const std::string& path, bool overwrite)
    : path_(without_trailing_slashes(path)), overwrite_(overwrite) {
  check(path_, overwrite_);
  std::string name = path_ + ".lowbit-tmp-XXXXXX";
  const auto lock = lock_temp_paths();
  if (::mkdtemp(name.data()) == nullptr) fail_os("cannot write '" + path_ + "'", errno);
  token_ = register_temp_path(name, true);
  temp_ = std::move(name);
}

OutputDirectory::~OutputDirectory() {
  if (!committed_ && !temp_.empty()) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
  unregister_temp_path(token_);
}

uint64_t OutputDirectory::commit() {
  if (committed_) fail_internal("OutputDirectory::commit on '" + path_ + "' twice");
  const Listing mine = list_tree(temp_);
  {
    nlohmann::json m;
    m["written_by"] = "lowbit";
    m["files"] = mine.files;
    const std::string text = m.dump(2) + "\n";
    write_file_atomic((fs::path(temp_) / kManifest).string(), text.data(), text.size());
  }
  uint64_t total = 0;
  for (const std::string& f : list_tree(temp_).files) {
    std::error_code ec;
    total += fs::file_size(fs::path(temp_) / f, ec);
  }

  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(path_, ec));
  const bool replace_whole = !exists || is_empty_directory(path_) || !first_foreign(path_);
  if (!replace_whole && !overwrite_) {
    fail_usage("the output directory '" + path_ + "' received files lowbit did not write while lowbit ran; " +
               "nothing was changed in it");
  }
  auto lock = lock_temp_paths();
  if (!exists || is_empty_directory(path_)) {
    // rename(2) replaces an empty directory.
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail_os("cannot move the output to '" + path_ + "'", errno);
    unregister_temp_path(std::exchange(token_, 0));
    committed_ = true;
    return total;
  }
  if (replace_whole) {
    // A previous lowbit output: swap it with the new one in one step; the
    // old one then sits at the temporary name, still registered, and goes.
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) != 0) {
      if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
        fail_os("cannot replace '" + path_ + "'", errno);
      }
      // No RENAME_EXCHANGE on this file system: move the old one aside
      // (onto an empty directory of a fresh name), then the new one in,
      // both under the lock, so a signal sees one state or the other.
      std::string old = path_ + ".lowbit-old-XXXXXX";
      if (::mkdtemp(old.data()) == nullptr) fail_os("cannot replace '" + path_ + "'", errno);
      if (::rename(path_.c_str(), old.c_str()) != 0) {
        const int err = errno;
        ::rmdir(old.c_str());
        fail_os("cannot replace '" + path_ + "'", err);
      }
      if (::rename(temp_.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        (void)::rename(old.c_str(), path_.c_str());  // put the old output back
        fail_os("cannot move the output to '" + path_ + "'", err);
      }
      unregister_temp_path(std::exchange(token_, 0));
      temp_ = old;
      token_ = register_temp_path(temp_, true);
    }
    committed_ = true;
    lock.unlock();
    fs::remove_all(temp_, ec);
    unregister_temp_path(std::exchange(token_, 0));
    return total;
  }
  // --overwrite into a directory that holds other files: move each of ours
  // in, and drop what lowbit's earlier manifest listed and this run did
  // not write again. Nothing else is touched.
  const auto before = read_manifest(path_);
  std::vector<std::string> ours = mine.files;
  ours.push_back(kManifest);  // last: its presence means the rest is in place
  for (const std::string& f : ours) {
    const fs::path dst = fs::path(path_) / f;
    fs::create_directories(dst.parent_path(), ec);
    if (fs::is_directory(fs::symlink_status(dst, ec))) {
      fail_usage("cannot write '" + dst.string() + "': a directory of that name is in the way");
    }
    if (::rename((fs::path(temp_) / f).c_str(), dst.c_str()) != 0) fail_os("cannot write '" + dst.string() + "'", errno);
  }
  if (before) {
    const std::set<std::string> now(mine.files.begin(), mine.files.end());
    for (const std::string& f : *before) {
      // Only plain relative names inside the directory, and regular files.
      const fs::path rel = fs::path(f).lexically_normal();
      if (now.count(f) || rel.is_absolute() || rel.empty() || *rel.begin() == "..") continue;
      if (fs::is_regular_file(fs::symlink_status(fs::path(path_) / rel, ec))) fs::remove(fs::path(path_) / rel, ec);
    }
  }
  committed_ = true;
  lock.unlock();
  fs::remove_all(temp_, ec);
  unregister_temp_path(std::exchange(token_, 0));
  return total;
}

}  // namespace lowbit

#include "lowbit/core/path_identity.h"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

namespace lowbit {
namespace {

namespace fs = std::filesystem;

struct Id {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const Id&) const = default;
};

std::optional<Id> stat_id(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return Id{st.st_dev, st.st_ino};
}

// The parent of a path as written: "x" -> ".", "a/b" -> "a".
fs::path parent_of(const fs::path& p) {
  const fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

bool same_path(const std::string& a, const std::string& b) {
  const fs::path pa(without_trailing_slashes(a)), pb(without_trailing_slashes(b));
  const auto ia = stat_id(pa), ib = stat_id(pb);
  if (ia || ib) return ia && ib && *ia == *ib;
  // Neither exists yet: the same name in the same directory.
  if (pa.filename() != pb.filename()) return false;
  const auto da = stat_id(parent_of(pa)), db = stat_id(parent_of(pb));
  if (da && db) return *da == *db;
  std::error_code ec;
  return fs::absolute(pa, ec).lexically_normal() == fs::absolute(pb, ec).lexically_normal();
}

bool is_within(const std::string& path, const std::string& dir) {
  const auto target = stat_id(fs::path(without_trailing_slashes(dir)));
  if (!target) return false;
  std::error_code ec;
  // weakly_canonical resolves symbolic links and ".." in the part that
  // exists, so walking up follows the real directories.
  fs::path p = fs::weakly_canonical(fs::path(without_trailing_slashes(path)), ec);
  if (ec) return false;
  for (;;) {
    if (const auto id = stat_id(p); id && *id == *target) return true;
    if (!p.has_relative_path()) return false;  // reached the root
    p = p.parent_path();
  }
}

}  // namespace lowbit

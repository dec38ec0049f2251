#include "lowbit/core/temp_paths.h"

#include <filesystem>
#include <map>
#include <system_error>

namespace lowbit {
namespace {

struct Registry {
  std::recursive_mutex mutex;
  std::map<uint64_t, std::pair<std::string, bool>> paths;  // token -> (path, directory); tokens grow with time
  uint64_t next = 1;
};

// Never destroyed: a signal's clean-up may run while static destructors
// run at exit.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

std::unique_lock<std::recursive_mutex> lock_temp_paths() { return std::unique_lock(registry().mutex); }

uint64_t register_temp_path(const std::string& path, bool directory) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const uint64_t token = r.next++;
  r.paths.emplace(token, std::make_pair(path, directory));
  return token;
}

void unregister_temp_path(uint64_t token) {
  if (token == 0) return;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.paths.erase(token);
}

size_t remove_temp_paths_for_exit() {
  Registry& r = registry();
  r.mutex.lock();  // never unlocked: the process is about to end
  size_t removed = 0;
  // Newest first: a file registered inside a temporary directory goes
  // before the directory.
  for (auto it = r.paths.rbegin(); it != r.paths.rend(); ++it) {
    std::error_code ec;
    const bool gone = it->second.second ? std::filesystem::remove_all(it->second.first, ec) > 0
                                        : std::filesystem::remove(it->second.first, ec);
    removed += gone && !ec;
  }
  r.paths.clear();
  return removed;
}

}  // namespace lowbit

// The temporary outputs this process has on disk right now.
//
// Every output lowbit writes is first built under a temporary name beside
// its final place (AtomicFile's "<path>.tmp.XXXXXX", OutputDirectory's
// "<dir>.lowbit-tmp-<pid>") and renamed into place when complete. An
// exception unwinds through their destructors, which remove them; a signal
// does not. This registry is what a signal's clean-up (signal_guard.h)
// removes before the process dies, so that an interrupted run leaves nothing
// behind.
//
// Creating a temporary and registering it happen under one lock, and so do
// renaming it into place and unregistering it: the clean-up, which holds the
// lock from its start until the process ends, therefore sees every
// temporary either registered (and removes it) or already published (and
// leaves the finished output alone), never half of either.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace lowbit {

// Holds the registry's lock: create-and-register or rename-and-unregister
// as one step. Recursive, so register_temp_path() may be called inside.
std::unique_lock<std::recursive_mutex> lock_temp_paths();

// Registers a temporary file or directory (removed recursively) and returns
// a token for unregister_temp_path().
uint64_t register_temp_path(const std::string& path, bool directory);
// Forgets a registration (the path was published or removed). Unknown
// tokens and 0 are ignored.
void unregister_temp_path(uint64_t token);

// Removes every registered path, newest first, and keeps the lock until the
// process ends: nothing new can be registered (or published) afterwards.
// For the signal clean-up only; returns how many paths it removed.
size_t remove_temp_paths_for_exit();

}  // namespace lowbit

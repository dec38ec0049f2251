// What the process does when a signal ends it: remove its temporary outputs
// and say why, instead of dying with half-written files behind it.
//
// install_signal_guard() (the lowbit CLI calls it first thing in main; the
// library never changes signal dispositions behind a host program's back):
//
//  - SIGINT, SIGTERM, SIGHUP, SIGQUIT: every registered temporary output
//    (temp_paths.h) is removed, then the signal is raised again with its
//    default action, so the parent sees the conventional status (128 + the
//    signal number from a shell; SIGQUIT still dumps core where core dumps
//    are enabled). A signal that was ignored when the process started stays
//    ignored (nohup keeps working). A second signal while the clean-up runs
//    kills at once.
//  - SIGBUS from reading a memory-mapped input that shrank while mapped (a
//    file truncated by another process): instead of a silent crash, the
//    message "lowbit: error: cannot read '<file>': it was truncated while
//    lowbit was reading it (...)", the clean-up, and exit status 1. A SIGBUS
//    anywhere else keeps its default action (a bug must still crash).
//
// The handlers themselves only write a few bytes to a pipe (async-signal-
// safe); a guardian thread does the clean-up in a normal context. The
// thread that hit a SIGBUS waits in its handler until the guardian ends the
// process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {

// Idempotent; throws ErrorKind::kInternal if the pipe or thread cannot be
// created.
void install_signal_guard();

// A mapped range whose SIGBUS means "this file was truncated": MappedFile
// registers its mapping. Returns a token for unguard_mapped_range (0 when
// the table is full, which only loses the nicer message).
uint32_t guard_mapped_range(const void* begin, size_t size, const std::string& path);
void unguard_mapped_range(uint32_t token) noexcept;

}  // namespace lowbit

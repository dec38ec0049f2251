// The one error type that lowbit throws for anything a user can cause or see.
//
// Every failure carries a kind so that the command-line program can map it to
// an exit status without parsing messages: a usage mistake (bad flag, unknown
// format name) exits with 2, as POSIX tools conventionally do; everything else
// (malformed input, I/O trouble, internal bugs) exits with 1. The message is
// meant to be printed as is, so it names the file or the value at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit {

enum class ErrorKind {
  kUsage,     // the caller asked for something that makes no sense
  kInput,     // a file or value supplied by the user is malformed
  kIo,        // the operating system refused a read or a write
  kInternal,  // a bug in lowbit: an invariant did not hold
};

// A short lowercase name for the kind ("usage", "input", "io", "internal"),
// for logs and test messages.
const char* error_kind_name(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message);

  ErrorKind kind() const noexcept { return kind_; }

  // The process exit status for this error: 2 for kUsage, 1 otherwise.
  int exit_code() const noexcept { return kind_ == ErrorKind::kUsage ? 2 : 1; }

 private:
  ErrorKind kind_;
};

// Throw an Error of the named kind. They exist so that call sites read as a
// statement of what went wrong rather than as exception plumbing.
[[noreturn]] void fail_usage(std::string message);
[[noreturn]] void fail_input(std::string message);
[[noreturn]] void fail_io(std::string message);
[[noreturn]] void fail_internal(std::string message);

}  // namespace lowbit

#include "lowbit/core/error.h"

#include <utility>

namespace lowbit {

const char* error_kind_name(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kUsage:
      return "usage";
    case ErrorKind::kInput:
      return "input";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "unknown";
}

Error::Error(ErrorKind kind, std::string message)
    : std::runtime_error(std::move(message)), kind_(kind) {}

void fail_usage(std::string message) { throw Error(ErrorKind::kUsage, std::move(message)); }
void fail_input(std::string message) { throw Error(ErrorKind::kInput, std::move(message)); }
void fail_io(std::string message) { throw Error(ErrorKind::kIo, std::move(message)); }
void fail_internal(std::string message) {
  throw Error(ErrorKind::kInternal, std::move(message));
}

}  // namespace lowbit

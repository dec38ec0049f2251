// The libFuzzer entry point for one target, chosen at compile time
// (LOWBIT_FUZZ_TARGET is the function's name in fuzz_targets.h).
#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lowbit::fuzz::LOWBIT_FUZZ_TARGET(data, size);
  return 0;
}

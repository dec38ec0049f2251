// The processor a measurement ran on. Benchmark records carry it because
// one SIMD target runs at different rates on different cores: Zen 4
// executes 512-bit vectors as two 256-bit halves and Zen 5 at full width,
// so `lowbit bench`'s quantize rows run 1.1x (Q4_0) to 1.9x (MXFP4) faster
// on the second, and a rate without its core cannot be compared with another.
#pragma once

#include <string>
#include <string_view>

namespace lowbit {

struct HostCpu {
  std::string vendor;  // cpuinfo's vendor_id ("AuthenticAMD"); empty if unknown
  std::string name;    // cpuinfo's model name; empty if unknown
  int family = -1;     // x86 family and model numbers (Zen 5 EPYC: 26, 2); -1 if unknown
  int model = -1;

  // "AMD EPYC (AuthenticAMD family 26 model 2)"; the fields that are known.
  std::string describe() const;
};

// The first processor's fields of a Linux /proc/cpuinfo text. Lines it does
// not know, and numbers that do not parse, leave their fields unknown.
HostCpu parse_cpuinfo(std::string_view text);

// This machine's processor, from /proc/cpuinfo; all unknown where that
// cannot be read (other systems).
HostCpu host_cpu();

}  // namespace lowbit

#include "lowbit/core/host_cpu.h"

#include <gtest/gtest.h>

namespace lowbit {
namespace {

// Abridged from this project's CI machine (a KVM guest on Zen 5), two
// processors.
constexpr const char* kZen5 =
    "processor\t: 0\n"
    "vendor_id\t: AuthenticAMD\n"
    "cpu family\t: 26\n"
    "model\t\t: 2\n"
    "model name\t: AMD EPYC\n"
    "stepping\t: 1\n"
    "flags\t\t: fpu vme avx512f\n"
    "\n"
    "processor\t: 1\n"
    "vendor_id\t: OtherVendor\n"
    "cpu family\t: 25\n"
    "model\t\t: 17\n"
    "model name\t: Other\n";

TEST(HostCpuTest, TakesTheFirstProcessorsFields) {
  const HostCpu cpu = parse_cpuinfo(kZen5);
  EXPECT_EQ(cpu.vendor, "AuthenticAMD");
  EXPECT_EQ(cpu.name, "AMD EPYC");
  EXPECT_EQ(cpu.family, 26);
  EXPECT_EQ(cpu.model, 2);  // not "model name", whose key also starts with "model"
  EXPECT_EQ(cpu.describe(), "AMD EPYC (AuthenticAMD family 26 model 2)");
}

TEST(HostCpuTest, UnknownAndMalformedFieldsStayUnknown) {
  const HostCpu none = parse_cpuinfo("");
  EXPECT_EQ(none.family, -1);
  EXPECT_EQ(none.describe(), "unknown");
  // An ARM cpuinfo has none of the x86 keys; a number with trailing text or
  // a sign does not parse.
  const HostCpu arm = parse_cpuinfo("processor : 0\nBogoMIPS : 50.00\nCPU implementer : 0x41\n");
  EXPECT_EQ(arm.describe(), "unknown");
  const HostCpu bad = parse_cpuinfo("vendor_id: X\ncpu family : 6a\nmodel : -3\nmodel name :\n");
  EXPECT_EQ(bad.family, -1);
  EXPECT_EQ(bad.model, -1);
  EXPECT_EQ(bad.describe(), "X");
  const HostCpu nameless = parse_cpuinfo("cpu family : 6\nmodel : 85");
  EXPECT_EQ(nameless.describe(), "family 6 model 85");
}

TEST(HostCpuTest, ReadsThisMachine) {
  const HostCpu cpu = host_cpu();
#if defined(__linux__) && defined(__x86_64__)
  EXPECT_FALSE(cpu.vendor.empty());
  EXPECT_GE(cpu.family, 0);
  EXPECT_GE(cpu.model, 0);
#endif
  EXPECT_FALSE(cpu.describe().empty());
}

}  // namespace
}  // namespace lowbit

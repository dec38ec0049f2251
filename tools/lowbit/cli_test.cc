// End-to-end tests of the `lowbit` program: it is run as a child process
// (fork + execv, no shell) in a fresh directory per test, and the tests check
// what a user sees: the exit status (0 ok, 2 usage, 1 anything else), that
// stderr names the problem, and that a failed command leaves no output file
// and no temporary file behind.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/test_support.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;   // exit status, or 128 + signal number
  std::string out;   // stdout
  std::string err;   // stderr
};

// Runs the CLI with `args` in directory `cwd`. `fsize_limit` > 0 sets
// RLIMIT_FSIZE in the child only. Both pipes are drained with poll() so a
// large stdout (bench --json) cannot deadlock the child.
Result run_cli(const std::vector<std::string>& args, const fs::path& cwd, rlim_t fsize_limit = 0) {
  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and execv.
  const std::string exe = LOWBIT_CLI_PATH;
  std::vector<std::string> storage;
  storage.push_back(exe);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string dir = cwd.string();

  int out_pipe[2], err_pipe[2];
  Result r;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return r;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    if (fsize_limit > 0) {
      struct rlimit lim = {fsize_limit, fsize_limit};
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(126);
    }
    // The program must survive SIGXFSZ by itself: reset to the default
    // disposition so the test does not mask a missing ignore_sigxfsz().
    ::signal(SIGXFSZ, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) {
    r.status = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    r.status = 128 + WTERMSIG(wstatus);
  }
  return r;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  ASSERT_TRUE(f.good()) << p;
}

void write_floats(const fs::path& p, const std::vector<float>& x) { write_bytes(p, x.data(), x.size() * 4); }

std::vector<uint32_t> float_bits(const std::vector<uint8_t>& bytes, size_t offset = 0) {
  std::vector<uint32_t> v((bytes.size() - offset) / 4);
  std::memcpy(v.data(), bytes.data() + offset, v.size() * 4);
  return v;
}

// A version 1.0 .npy file: magic, header length, a Python dict padded with
// spaces and ended by '\n' so that the data starts on a 64-byte boundary.
std::string npy_header(const std::string& descr, const std::string& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  h += static_cast<char>(dict.size() & 0xff);
  h += static_cast<char>(dict.size() >> 8);
  return h + dict;
}

void write_npy(const fs::path& p, const std::string& descr, const std::string& shape, const void* data, size_t n) {
  std::string s = npy_header(descr, shape);
  s.append(static_cast<const char*>(data), n);
  write_bytes(p, s.data(), s.size());
}

struct Npy {
  std::string header;  // the dict text
  std::vector<uint8_t> data;
};

Npy read_npy(const fs::path& p) {
  const std::vector<uint8_t> b = read_bytes(p);
  Npy n;
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) {
    ADD_FAILURE() << p << " is not a .npy file";
    return n;
  }
  size_t hlen = 0, start = 0;
  if (b[6] == 1) {
    hlen = b[8] | (b[9] << 8);
    start = 10;
  } else {
    hlen = b[8] | (b[9] << 8) | (b[10] << 16) | (static_cast<size_t>(b[11]) << 24);
    start = 12;
  }
  EXPECT_EQ((start + hlen) % 64, 0u) << "npy data should be 64-byte aligned";
  n.header.assign(b.begin() + start, b.begin() + start + hlen);
  n.data.assign(b.begin() + start + hlen, b.end());
  return n;
}

// Values spread over many binades of both signs, with zeros, values past the
// largest finite of most formats, ties and tiny subnormal-range values.
std::vector<float> sample_values(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> expo(-12.0f, 12.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x;
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1.5f, 2.5f, -2.5f, 3.0f, 6.0f, 7.0f, 1e30f, -1e30f, 1e-30f}) {
    x.push_back(v);
  }
  while (x.size() < n) {
    const float v = (x.size() % 2 ? std::exp2(expo(rng)) : normal(rng)) * scale;
    x.push_back(x.size() % 3 ? v : -v);
  }
  x.resize(n);
  return x;
}

class CliTest : public lowbit::testing_support::TempDirTest {
 protected:

  Result run(const std::vector<std::string>& args, rlim_t fsize_limit = 0) {
    return run_cli(args, dir_, fsize_limit);
  }
  // Runs and expects success, with the command in the failure message.
  Result ok(const std::vector<std::string>& args) {
    Result r = run(args);
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    EXPECT_EQ(r.status, 0) << "lowbit" << cmd << "\nstderr: " << r.err;
    return r;
  }

  fs::path path(const std::string& name) const { return dir_ / name; }
  bool exists(const std::string& name) const { return fs::exists(dir_ / name); }

  std::set<std::string> listing(const fs::path& sub = {}) const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(sub.empty() ? dir_ : sub)) names.insert(e.path().filename().string());
    return names;
  }

  // The common shape of every failure: status, message prefix and content,
  // nothing written, nothing but the inputs left in the directory.
  void expect_failure(const Result& r, int status, const std::string& needle, const std::string& out_name,
                      const std::set<std::string>& before) {
    EXPECT_EQ(r.status, status) << "stderr: " << r.err;
    EXPECT_NE(r.err.find("lowbit: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr should mention '" << needle << "':\n" << r.err;
    EXPECT_FALSE(exists(out_name)) << out_name << " must not exist after a failed command";
    EXPECT_EQ(listing(), before) << "a failed command must leave no file behind";
  }
};

const std::vector<float> kFour = {1.0f, -2.5f, 0.3f, 100.0f};

// ------------------------------------------------------------ usage errors

TEST_F(CliTest, BadFormatNameIsUsageErrorListingValidForms) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  for (const char* cmd : {"encode", "fakequant", "decode"}) {
    SCOPED_TRACE(cmd);
    const Result r = run({cmd, "--format", "float8_e9m9_nope", "x.bin", "out.bin"});
    expect_failure(r, 2, "float8_e9m9_nope", "out.bin", before);
    EXPECT_NE(r.err.find("fp:eXmY"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("int:B"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("posit:N:ES"), std::string::npos) << r.err;
  }
  // A malformed parametric spec is a usage error too.
  expect_failure(run({"encode", "--format", "fp:e0m0", "x.bin", "out.bin"}), 2, "fp:e0m0", "out.bin", before);
}

TEST_F(CliTest, BadRoundingIsUsageError) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  for (const char* cmd : {"encode", "fakequant"}) {
    SCOPED_TRACE(cmd);
    const Result r = run({cmd, "--format", "e4m3fn", "--round", "nearest", "x.bin", "out.bin"});
    expect_failure(r, 2, "nearest", "out.bin", before);
    EXPECT_NE(r.err.find("rounding"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("stochastic"), std::string::npos) << "should list the valid names: " << r.err;
  }
}

TEST_F(CliTest, BadOverflowIsUsageError) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  const Result r = run({"encode", "--format", "e4m3fn", "--overflow", "wrap", "x.bin", "out.bin"});
  expect_failure(r, 2, "wrap", "out.bin", before);
  EXPECT_NE(r.err.find("saturate"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadSrBitsIsUsageError) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  expect_failure(run({"fakequant", "--format", "e4m3fn", "--round", "stochastic", "--sr-bits", "33", "x.bin",
                      "out.bin"}),
                 2, "--sr-bits", "out.bin", before);
}

TEST_F(CliTest, UnknownFlagIsUsageError) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  expect_failure(run({"encode", "--format", "e4m3fn", "--frobnicate", "x.bin", "out.bin"}), 2, "--frobnicate",
                 "out.bin", before);
}

TEST_F(CliTest, MissingSubcommandIsUsageError) {
  const Result r = run({});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("lowbit: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("subcommand"), std::string::npos) << r.err;
  EXPECT_TRUE(listing().empty());

  const Result unknown = run({"transmogrify"});
  EXPECT_EQ(unknown.status, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("lowbit: error: "), std::string::npos) << unknown.err;
}

TEST_F(CliTest, UnknownSubcommandIsNamed) {
  const Result r = run({"transmogrify"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("transmogrify"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingRequiredFormatIsUsageError) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  expect_failure(run({"encode", "x.bin", "out.bin"}), 2, "--format", "out.bin", before);
}

TEST_F(CliTest, HelpExitsZero) {
  const Result r = run({"encode", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--format"), std::string::npos) << r.out;
}

// ------------------------------------------------------------ input errors

TEST_F(CliTest, RawInputNotMultipleOfFour) {
  write_bytes(path("x.bin"), "abcdefg", 7);
  const auto before = listing();
  for (const char* cmd : {"encode", "fakequant"}) {
    SCOPED_TRACE(cmd);
    const Result r = run({cmd, "--format", "e4m3fn", "x.bin", "out.bin"});
    expect_failure(r, 1, "multiple of 4", "out.bin", before);
    EXPECT_NE(r.err.find("x.bin"), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, RawCodesNotMultipleOfCodeWidth) {
  write_bytes(path("c.bin"), "abc", 3);
  const auto before = listing();
  expect_failure(run({"decode", "--format", "bf16", "c.bin", "out.bin"}), 1, "multiple of 2", "out.bin", before);
}

TEST_F(CliTest, MissingInputFile) {
  const auto before = listing();
  for (const char* cmd : {"encode", "fakequant", "decode"}) {
    SCOPED_TRACE(cmd);
    const Result r = run({cmd, "--format", "e4m3fn", "no_such_file.bin", "out.bin"});
    expect_failure(r, 1, "no_such_file.bin", "out.bin", before);
    EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
  }
  // Same through the .npy reader.
  expect_failure(run({"encode", "--format", "e4m3fn", "no_such_file.npy", "out.npy"}), 1, "no_such_file.npy",
                 "out.npy", before);
}

TEST_F(CliTest, DecodeCodeTooWideForFormat) {
  const uint8_t codes[] = {0x01, 0x0F, 0x1F, 0x02};
  write_bytes(path("c.bin"), codes, sizeof codes);
  const auto before = listing();
  const Result r = run({"decode", "--format", "int4", "c.bin", "out.bin"});
  expect_failure(r, 1, "is not a code of", "out.bin", before);
  EXPECT_NE(r.err.find("31"), std::string::npos) << "should name the code: " << r.err;
  EXPECT_NE(r.err.find("element 2"), std::string::npos) << "should name the position: " << r.err;

  // Two-byte codes: 256 fits int9's 9 bits, 512 does not.
  const uint8_t wide[] = {0x00, 0x01, 0x00, 0x02};
  write_bytes(path("w.bin"), wide, sizeof wide);
  const auto before2 = listing();
  expect_failure(run({"decode", "--format", "int9", "w.bin", "out.bin"}), 1, "512", "out.bin", before2);

  // .npy codes go through the same check.
  write_npy(path("c.npy"), "|u1", "(4,)", codes, sizeof codes);
  const auto before3 = listing();
  expect_failure(run({"decode", "--format", "int4", "c.npy", "out.npy"}), 1, "is not a code of", "out.npy", before3);
}

TEST_F(CliTest, DecodeUnusedCodeInsideTheWidth) {
  // Ternary's code 2 (-2 in two's complement int2) and int:4:narrow's 8 are
  // not codes of those formats.
  const uint8_t trit[] = {0x00, 0x02};
  write_bytes(path("t.bin"), trit, sizeof trit);
  const auto before = listing();
  expect_failure(run({"decode", "--format", "ternary", "t.bin", "out.bin"}), 1, "is not a code of", "out.bin", before);
  const uint8_t narrow[] = {0x08};
  write_bytes(path("n.bin"), narrow, sizeof narrow);
  const auto before2 = listing();
  expect_failure(run({"decode", "--format", "int:4:narrow", "n.bin", "out.bin"}), 1, "is not a code of", "out.bin",
                 before2);
}

TEST_F(CliTest, DecodeCountChecks) {
  // A --count too large for the file must not overflow the size arithmetic.
  const uint8_t bytes[] = {0x21};
  write_bytes(path("p.bin"), bytes, sizeof bytes);
  const auto before = listing();
  for (const char* count : {"4611686018427387906", "18446744073709551615", "4611686018427387904", "3"}) {
    expect_failure(run({"decode", "--format", "int4", "--packed", "--count", count, "p.bin", "out.bin"}), 1, "--count",
                   "out.bin", before);
  }
  // --count on unpacked input must agree with the file.
  expect_failure(run({"decode", "--format", "int4", "--count", "3", "p.bin", "out.bin"}), 2, "--count", "out.bin",
                 before);
}

TEST_F(CliTest, DecodeInvalidPackedTernaryByte) {
  const uint8_t bytes[] = {0x00, 250};  // 250 >= 3^5 is not a group of 5 trits
  write_bytes(path("t.bin"), bytes, sizeof bytes);
  const auto before = listing();
  const Result r = run({"decode", "--format", "ternary", "--packed", "t.bin", "out.bin"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("lowbit: error: "), std::string::npos) << r.err;
  EXPECT_FALSE(exists("out.bin"));
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, DecodePackedCountMismatch) {
  const uint8_t bytes[] = {0x21, 0x43};
  write_bytes(path("p.bin"), bytes, sizeof bytes);
  const auto before = listing();
  expect_failure(run({"decode", "--format", "int4", "--packed", "--count", "7", "p.bin", "out.bin"}), 1, "--count",
                 "out.bin", before);
}

TEST_F(CliTest, MalformedNpyInput) {
  const float data[4] = {1, 2, 3, 4};
  struct Case {
    const char* name;
    std::string bytes;
    const char* needle;
  };
  std::vector<Case> cases;
  cases.push_back({"not_npy.npy", "this is not a numpy file at all", ".npy"});
  cases.push_back({"empty.npy", "", ".npy"});
  {
    std::string s = npy_header("<f4", "(4,)");
    s.append(reinterpret_cast<const char*>(data), 12);  // one element short
    cases.push_back({"short.npy", s, "short.npy"});
  }
  {
    std::string s = npy_header("<f4", "(4,)");
    s.resize(s.size() - 20);  // header cut off in the middle
    cases.push_back({"cut.npy", s, "cut.npy"});
  }
  {
    std::string s = npy_header("<i4", "(4,)");
    s.append(reinterpret_cast<const char*>(data), 16);
    cases.push_back({"ints.npy", s, "<i4"});
  }
  {
    std::string s = npy_header("<f4", "(4611686018427387904, 4)");  // 2^62 * 4 elements
    s.append(reinterpret_cast<const char*>(data), 16);
    cases.push_back({"huge.npy", s, "huge.npy"});
  }
  {
    std::string s = npy_header("<f4", "(-4,)");
    s.append(reinterpret_cast<const char*>(data), 16);
    cases.push_back({"neg.npy", s, "neg.npy"});
  }
  for (const Case& c : cases) write_bytes(path(c.name), c.bytes.data(), c.bytes.size());
  const auto before = listing();
  for (const Case& c : cases) {
    for (const char* cmd : {"encode", "fakequant"}) {
      SCOPED_TRACE(std::string(cmd) + " " + c.name);
      expect_failure(run({cmd, "--format", "e4m3fn", c.name, "out.npy"}), 1, c.needle, "out.npy", before);
    }
  }
  // Malformed code files for decode.
  expect_failure(run({"decode", "--format", "e4m3fn", "not_npy.npy", "out.npy"}), 1, "not_npy.npy", "out.npy",
                 before);
  // Float data is not codes.
  {
    std::string s = npy_header("<f4", "(4,)");
    s.append(reinterpret_cast<const char*>(data), 16);
    write_bytes(path("floats.npy"), s.data(), s.size());
  }
  const auto before2 = listing();
  expect_failure(run({"decode", "--format", "e4m3fn", "floats.npy", "out.npy"}), 1, "|u1", "out.npy", before2);
}

// ------------------------------------------------------------ output errors

TEST_F(CliTest, OutputInNonexistentDirectory) {
  write_floats(path("x.bin"), kFour);
  const auto before = listing();
  for (const char* out : {"nodir/out.bin", "nodir/out.npy"}) {
    SCOPED_TRACE(out);
    const Result r = run({"encode", "--format", "e4m3fn", "x.bin", out});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("lowbit: error: cannot write"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(path("nodir")));
    EXPECT_EQ(listing(), before);
  }
  const Result r = run({"fakequant", "--format", "e4m3fn", "x.bin", "nodir/out.bin"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_FALSE(fs::exists(path("nodir")));
}

TEST_F(CliTest, OutputIsADirectory) {
  write_floats(path("x.bin"), kFour);
  fs::create_directory(path("sub"));
  const Result r = run({"encode", "--format", "e4m3fn", "x.bin", "sub"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_directory(path("sub")));
  EXPECT_TRUE(listing(path("sub")).empty());
}

TEST_F(CliTest, OutputInReadOnlyDirectory) {
  write_floats(path("x.bin"), kFour);
  fs::create_directory(path("ro"));
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec, fs::perm_options::replace);
  // Root (CAP_DAC_OVERRIDE) writes through permission bits: probe for that.
  const std::string probe = (path("ro") / "probe").string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    ::close(fd);
    ::unlink(probe.c_str());
    GTEST_SKIP() << "running with privileges that ignore directory permissions (root?)";
  }
  const auto before = listing();
  const Result r = run({"encode", "--format", "e4m3fn", "x.bin", "ro/out.bin"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("cannot write 'ro/out.bin'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  EXPECT_TRUE(listing(path("ro")).empty());
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, FileSizeLimitFailsCleanly) {
  // 256k floats -> 1 MiB of fakequant output, far past a 1000-byte limit.
  const std::vector<float> x = sample_values(262144, 1.0f, 7);
  write_floats(path("x.bin"), x);
  const auto before = listing();
  for (const char* out : {"out.bin", "out.npy"}) {
    for (const char* cmd : {"fakequant", "encode"}) {
      SCOPED_TRACE(std::string(cmd) + " -> " + out);
      const Result r = run({cmd, "--format", "bf16", "x.bin", out}, 1000);
      EXPECT_NE(r.status, 128 + SIGXFSZ) << "killed by SIGXFSZ instead of reporting an error";
      expect_failure(r, 1, "file-size limit", out, before);
      EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
    }
  }
}

TEST_F(CliTest, FailedWriteKeepsExistingOutput) {
  const std::vector<float> x = sample_values(262144, 1.0f, 8);
  write_floats(path("x.bin"), x);
  const std::string old = "previous contents";
  write_bytes(path("out.bin"), old.data(), old.size());
  const auto before = listing();
  const Result r = run({"fakequant", "--format", "e4m3fn", "x.bin", "out.bin"}, 1000);
  EXPECT_EQ(r.status, 1) << r.err;
  const std::vector<uint8_t> now = read_bytes(path("out.bin"));
  EXPECT_EQ(std::string(now.begin(), now.end()), old) << "a failed command must not clobber the old output";
  EXPECT_EQ(listing(), before);

  // A usage error must not touch it either.
  EXPECT_EQ(run({"fakequant", "--format", "nope", "x.bin", "out.bin"}).status, 2);
  const std::vector<uint8_t> still = read_bytes(path("out.bin"));
  EXPECT_EQ(std::string(still.begin(), still.end()), old);
}

// ------------------------------------------------------------ success paths

struct RoundTripCase {
  const char* format;
  bool packed;
  float scale;
  int code_bytes;           // unpacked bytes per code
  size_t (*packed_size)(size_t);
};

size_t nibbles(size_t n) { return (n + 1) / 2; }
size_t trits(size_t n) { return (n + 4) / 5; }
size_t none(size_t n) { return n; }

const RoundTripCase kRoundTrips[] = {
    {"float8_e4m3fn", false, 1.0f, 1, none}, {"float4_e2m1fn", false, 2.0f, 1, none},
    {"float4_e2m1fn", true, 2.0f, 1, nibbles}, {"int4", true, 3.0f, 1, nibbles},
    {"int4", false, 3.0f, 1, none},           {"ternary", true, 0.7f, 1, trits},
    {"bfloat16", false, 1.0f, 2, none},       {"hifloat8", false, 1.0f, 1, none},
    {"posit8_1", false, 1.0f, 1, none},       {"nf4", false, 0.4f, 1, none},
    {"nf4", true, 0.4f, 1, nibbles},          {"float6_e2m3fn", true, 2.0f, 1, [](size_t n) { return (n * 6 + 7) / 8; }},
    {"float16", false, 1.0f, 2, none},        {"e5m2", false, 100.0f, 1, none},
};

// decode(encode(x)) == fakequant(x) bit for bit, on raw files, for an odd
// count so that a packed layout ends in a partial unit.
TEST_F(CliTest, RawRoundTripEqualsFakequant) {
  const size_t n = 2001;
  for (const auto& c : kRoundTrips) {
    SCOPED_TRACE(std::string(c.format) + (c.packed ? " packed" : ""));
    const std::vector<float> x = sample_values(n, c.scale, 11);
    write_floats(path("x.bin"), x);
    std::vector<std::string> enc = {"encode", "--format", c.format, "x.bin", "codes.bin"};
    std::vector<std::string> dec = {"decode", "--format", c.format, "codes.bin", "y.bin"};
    if (c.packed) {
      enc.push_back("--packed");
      dec.push_back("--packed");
      dec.push_back("--count");
      dec.push_back(std::to_string(n));
    }
    ok(enc);
    ok(dec);
    ok({"fakequant", "--format", c.format, "x.bin", "z.bin"});
    const size_t want_bytes = c.packed ? c.packed_size(n) : n * c.code_bytes;
    EXPECT_EQ(fs::file_size(path("codes.bin")), want_bytes);
    const auto y = float_bits(read_bytes(path("y.bin")));
    const auto z = float_bits(read_bytes(path("z.bin")));
    ASSERT_EQ(y.size(), n);
    ASSERT_EQ(z.size(), n);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      if (y[i] != z[i] && bad++ < 5) {
        ADD_FAILURE() << "x[" << i << "]=" << x[i] << " decode(encode)=0x" << std::hex << y[i] << " fakequant=0x"
                      << z[i] << std::dec;
      }
    }
    EXPECT_EQ(bad, 0u);
    // fakequant is idempotent: values of the format map to themselves.
    ok({"fakequant", "--format", c.format, "z.bin", "zz.bin"});
    EXPECT_EQ(read_bytes(path("zz.bin")), read_bytes(path("z.bin")));
    // Without --count, a packed file decodes every whole code it holds:
    // the first n agree, the padding decodes as code 0.
    if (c.packed) {
      ok({"decode", "--format", c.format, "--packed", "codes.bin", "yall.bin"});
      const auto yall = float_bits(read_bytes(path("yall.bin")));
      ASSERT_GE(yall.size(), n);
      EXPECT_TRUE(std::equal(y.begin(), y.end(), yall.begin()));
    }
  }
}

TEST_F(CliTest, NonFiniteInputsRoundTrip) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {inf, -inf, nan, -nan, 1e38f, -1e38f, 0.0f, -0.0f};
  write_floats(path("x.bin"), x);
  for (const char* f : {"float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "bfloat16", "hifloat8", "posit8_1"}) {
    for (const char* ov : {"saturate", "ieee"}) {
      SCOPED_TRACE(std::string(f) + " " + ov);
      ok({"encode", "--format", f, "--overflow", ov, "x.bin", "c.bin"});
      ok({"decode", "--format", f, "c.bin", "y.bin"});
      ok({"fakequant", "--format", f, "--overflow", ov, "x.bin", "z.bin"});
      EXPECT_EQ(read_bytes(path("y.bin")), read_bytes(path("z.bin")));
    }
  }
}

TEST_F(CliTest, NpyRoundTripKeepsShapeAndMatchesRaw) {
  const size_t rows = 7, cols = 13, n = rows * cols;
  for (const auto& c : kRoundTrips) {
    SCOPED_TRACE(std::string(c.format) + (c.packed ? " packed" : ""));
    const std::vector<float> x = sample_values(n, c.scale, 12);
    write_npy(path("x.npy"), "<f4", "(7, 13)", x.data(), n * 4);
    write_floats(path("x.bin"), x);
    std::vector<std::string> enc = {"encode", "--format", c.format, "x.npy", "codes.npy"};
    std::vector<std::string> enc_raw = {"encode", "--format", c.format, "x.bin", "codes.bin"};
    std::vector<std::string> dec = {"decode", "--format", c.format, "codes.npy", "y.npy"};
    if (c.packed) {
      enc.push_back("--packed");
      enc_raw.push_back("--packed");
      dec.insert(dec.end(), {"--packed", "--count", std::to_string(n)});
    }
    ok(enc);
    ok(enc_raw);
    ok(dec);
    ok({"fakequant", "--format", c.format, "x.npy", "z.npy"});
    const Npy codes = read_npy(path("codes.npy"));
    EXPECT_EQ(codes.data, read_bytes(path("codes.bin"))) << ".npy and raw encodings differ";
    const std::string code_descr = c.code_bytes == 2 ? "'<u2'" : "'|u1'";
    EXPECT_NE(codes.header.find(code_descr), std::string::npos) << codes.header;
    if (!c.packed) {
      EXPECT_NE(codes.header.find("(7, 13)"), std::string::npos) << codes.header;
    } else {
      EXPECT_NE(codes.header.find("(" + std::to_string(c.packed_size(n)) + ",)"), std::string::npos)
          << codes.header;
    }
    const Npy y = read_npy(path("y.npy"));
    const Npy z = read_npy(path("z.npy"));
    EXPECT_NE(z.header.find("'<f4'"), std::string::npos) << z.header;
    EXPECT_NE(z.header.find("(7, 13)"), std::string::npos) << z.header;
    EXPECT_NE(y.header.find("'<f4'"), std::string::npos) << y.header;
    if (!c.packed) {
      EXPECT_NE(y.header.find("(7, 13)"), std::string::npos) << y.header;
    }
    EXPECT_EQ(y.data, z.data) << "decode(encode(x)) != fakequant(x)";
    EXPECT_EQ(z.data.size(), n * 4);
  }
}

TEST_F(CliTest, NpyFloat64AndFloat16Inputs) {
  // float16 and float64 inputs are rounded once, from their own value.
  const std::vector<double> xd = {1.0, 1.0 + 1.0 / 16 + 1e-12, -3.3, 1000.0, 0.0, -0.0, 1e-5, 0.1};
  write_npy(path("xd.npy"), "<f8", "(8,)", xd.data(), xd.size() * 8);
  std::vector<float> xf(xd.begin(), xd.end());
  write_npy(path("xf.npy"), "<f4", "(8,)", xf.data(), xf.size() * 4);
  ok({"encode", "--format", "e4m3fn", "xd.npy", "cd.npy"});
  ok({"encode", "--format", "e4m3fn", "xf.npy", "cf.npy"});
  const auto cd = read_npy(path("cd.npy")).data;
  const auto cf = read_npy(path("cf.npy")).data;
  ASSERT_EQ(cd.size(), 8u);
  // 1 + 1/16 + tiny: just above the tie between 1 and 1.125 in double, but
  // the tie itself in float32; a double input must round up (0x39), not to
  // even (0x38).
  EXPECT_EQ(cd[1], 0x39);
  EXPECT_EQ(cf[1], 0x38);
  for (size_t i : {0, 2, 3, 4, 5, 6, 7}) EXPECT_EQ(cd[i], cf[i]) << i;

  ok({"fakequant", "--format", "e4m3fn", "xd.npy", "zd.npy"});
  const Npy zd = read_npy(path("zd.npy"));
  EXPECT_NE(zd.header.find("'<f8'"), std::string::npos) << "float64 fakequant keeps float64: " << zd.header;
  ASSERT_EQ(zd.data.size(), 64u);
  double v1;
  std::memcpy(&v1, zd.data.data() + 8, 8);
  EXPECT_EQ(v1, 1.125);

  // float16: 1 + 2^-4 + 2^-10 is exact in float16 and rounds up in e4m3.
  const uint16_t h[] = {0x3C00, 0x3C41, 0xBC00, 0x0000};
  write_npy(path("xh.npy"), "<f2", "(4,)", h, sizeof h);
  ok({"encode", "--format", "e4m3fn", "xh.npy", "ch.bin"});
  EXPECT_EQ(read_bytes(path("ch.bin")), (std::vector<uint8_t>{0x38, 0x39, 0xB8, 0x00}));
  ok({"fakequant", "--format", "e4m3fn", "xh.npy", "zh.npy"});
  const Npy zh = read_npy(path("zh.npy"));
  EXPECT_NE(zh.header.find("'<f4'"), std::string::npos) << zh.header;
  const auto zb = float_bits(zh.data);
  ASSERT_EQ(zb.size(), 4u);
  float v;
  std::memcpy(&v, &zb[1], 4);
  EXPECT_EQ(v, 1.125f);
}

TEST_F(CliTest, KnownCodesAndPackedLayouts) {
  const auto encode = [&](const std::string& fmt, const std::vector<float>& x, bool packed,
                          const std::vector<std::string>& extra = {}) {
    write_floats(path("k.bin"), x);
    std::vector<std::string> args = {"encode", "--format", fmt, "k.bin", "k.codes"};
    if (packed) args.push_back("--packed");
    args.insert(args.end(), extra.begin(), extra.end());
    ok(args);
    return read_bytes(path("k.codes"));
  };
  using B = std::vector<uint8_t>;
  EXPECT_EQ(encode("float8_e4m3fn", {1.0f, -2.0f, 448.0f, 1000.0f, 0.001953125f}, false),
            (B{0x38, 0xC0, 0x7E, 0x7E, 0x01}));
  // --overflow ieee: e4m3fn has no inf, so overflow gives NaN (0x7F).
  EXPECT_EQ(encode("float8_e4m3fn", {1000.0f, -1000.0f}, false, {"--overflow", "ieee"}), (B{0x7F, 0xFF}));
  EXPECT_EQ(encode("float8_e5m2", {1e6f}, false, {"--overflow", "ieee"}), (B{0x7C}));
  EXPECT_EQ(encode("float8_e5m2", {1e6f}, false), (B{0x7B}));
  // Low nibble first.
  EXPECT_EQ(encode("float4_e2m1fn", {1.0f, -6.0f, 0.5f}, true), (B{0xF2, 0x01}));
  EXPECT_EQ(encode("int4", {1.0f, -1.0f, 7.0f, -8.0f}, true), (B{0xF1, 0x87}));
  // Ternary: 5 trits per byte, base 3, first trit least significant,
  // digit = value + 1: {-1,0,1,1,0} -> 0 + 1*3 + 2*9 + 2*27 + 1*81 = 156.
  // The partial last group is padded with code 0, the value 0 (digit 1):
  // {1,0,0,0,0} -> 2 + 3 + 9 + 27 + 81 = 122.
  EXPECT_EQ(encode("ternary", {-1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 1.0f}, true), (B{156, 122}));
  // bfloat16: 2 bytes little-endian.
  EXPECT_EQ(encode("bf16", {1.0f, -2.0f}, false), (B{0x80, 0x3F, 0x00, 0xC0}));
  // 6-bit: 4 codes in 3 bytes, one little-endian bit stream.
  // e2m3: 1.0 = 0b001000 (8), 7.5 = 0b011111 (31), -1 = 0b101000 (40), 0.125 = 1.
  {
    const uint32_t stream = 8u | (31u << 6) | (40u << 12) | (1u << 18);
    EXPECT_EQ(encode("float6_e2m3fn", {1.0f, 7.5f, -1.0f, 0.125f}, true),
              (B{uint8_t(stream), uint8_t(stream >> 8), uint8_t(stream >> 16)}));
  }
  // 2-bit (4 per byte) and 1-bit (8 per byte), LSB first.
  EXPECT_EQ(encode("int2", {1.0f, -1.0f, -2.0f, 0.0f}, true), (B{0x01 | (0x3 << 2) | (0x2 << 4)}));
  EXPECT_EQ(encode("binary", {1, -1, 1, 1, -1, -1, -1, 1, 1}, true).size(), 2u);
  // Rounding modes on e4m3fn around 1 (ulp 1/8): 1.0625 is a tie.
  EXPECT_EQ(encode("e4m3fn", {1.0625f, -1.0625f}, false, {"--round", "rne"}), (B{0x38, 0xB8}));
  EXPECT_EQ(encode("e4m3fn", {1.0625f, -1.0625f}, false, {"--round", "rna"}), (B{0x39, 0xB9}));
  EXPECT_EQ(encode("e4m3fn", {1.1f, -1.1f}, false, {"--round", "rtz"}), (B{0x38, 0xB8}));
  EXPECT_EQ(encode("e4m3fn", {1.01f, -1.01f}, false, {"--round", "up"}), (B{0x39, 0xB8}));
  EXPECT_EQ(encode("e4m3fn", {1.01f, -1.01f}, false, {"--round", "down"}), (B{0x38, 0xB9}));
  EXPECT_EQ(encode("e4m3fn", {1.01f, 1.0f}, false, {"--round", "odd"}), (B{0x39, 0x38}));
}

TEST_F(CliTest, StochasticRoundingIsReproducibleAcrossThreads) {
  const std::vector<float> x(300000, 1.3f);
  write_floats(path("x.bin"), x);
  ok({"fakequant", "--format", "e4m3fn", "--round", "stochastic", "--seed", "5", "--threads", "1", "x.bin", "a.bin"});
  ok({"fakequant", "--format", "e4m3fn", "--round", "stochastic", "--seed", "5", "--threads", "2", "x.bin", "b.bin"});
  ok({"fakequant", "--format", "e4m3fn", "--round", "stochastic", "--seed", "6", "--threads", "2", "x.bin", "c.bin"});
  ok({"encode", "--format", "e4m3fn", "--round", "stochastic", "--seed", "5", "--threads", "2", "x.bin", "e.bin"});
  ok({"decode", "--format", "e4m3fn", "e.bin", "d.bin"});
  const auto a = read_bytes(path("a.bin"));
  EXPECT_EQ(a, read_bytes(path("b.bin")));
  EXPECT_NE(a, read_bytes(path("c.bin"))) << "a different seed should give different rounding";
  EXPECT_EQ(a, read_bytes(path("d.bin"))) << "stochastic encode+decode should equal stochastic fakequant";
  // Only the two neighbours 1.25 and 1.375 appear, in proportion.
  const auto bits = float_bits(a);
  size_t up = 0;
  for (uint32_t b : bits) {
    float v;
    std::memcpy(&v, &b, 4);
    ASSERT_TRUE(v == 1.25f || v == 1.375f) << v;
    up += v == 1.375f;
  }
  const double p = 0.4, n = static_cast<double>(bits.size());
  EXPECT_NEAR(up / n, p, 4 * std::sqrt(p * (1 - p) / n));
}

TEST_F(CliTest, FakequantStats) {
  write_floats(path("x.bin"), sample_values(1000, 1.0f, 3));
  const Result r = ok({"fakequant", "--format", "e4m3fn", "--stats", "x.bin", "z.bin"});
  EXPECT_NE(r.err.find("QSNR"), std::string::npos) << r.err;
  EXPECT_TRUE(exists("z.bin"));
}

TEST_F(CliTest, EmptyInput) {
  write_bytes(path("x.bin"), "", 0);
  ok({"encode", "--format", "e4m3fn", "x.bin", "c.bin"});
  EXPECT_EQ(fs::file_size(path("c.bin")), 0u);
  ok({"decode", "--format", "e4m3fn", "c.bin", "y.bin"});
  EXPECT_EQ(fs::file_size(path("y.bin")), 0u);
}

// ------------------------------------------------------------ formats and bench

TEST_F(CliTest, FormatsJson) {
  const Result r = ok({"formats", "--json"});
  nlohmann::json doc;
  ASSERT_NO_THROW(doc = nlohmann::json::parse(r.out)) << r.out.substr(0, 500);
  ASSERT_TRUE(doc.is_array());
  ASSERT_GT(doc.size(), 20u);
  const char* keys[] = {"name",     "aliases",  "bits",       "kind",       "exponent_bits",     "mantissa_bits",
                        "bias",     "has_inf",  "has_nan",    "has_negative_zero", "max_finite", "min_normal",
                        "min_subnormal"};
  std::set<std::string> names;
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& e : doc) {
    for (const char* k : keys) EXPECT_TRUE(e.contains(k)) << "entry " << e.dump() << " lacks '" << k << "'";
    ASSERT_TRUE(e["name"].is_string());
    const std::string name = e["name"];
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_TRUE(e["aliases"].is_array()) << name;
    for (const auto& a : e["aliases"]) EXPECT_TRUE(names.insert(a.get<std::string>()).second) << "duplicate alias " << a;
    EXPECT_TRUE(e["bits"].is_number_integer()) << name;
    EXPECT_TRUE(e["kind"].is_string()) << name;
    EXPECT_TRUE(e["has_inf"].is_boolean() && e["has_nan"].is_boolean() && e["has_negative_zero"].is_boolean())
        << name;
    EXPECT_TRUE(e["max_finite"].is_number()) << name;
    EXPECT_GT(e["max_finite"].get<double>(), 0) << name;
    if (e["kind"] == "float") {
      EXPECT_TRUE(e["exponent_bits"].is_number_integer()) << name;
      EXPECT_TRUE(e["mantissa_bits"].is_number_integer()) << name;
      EXPECT_TRUE(e["bias"].is_number_integer()) << name;
    }
    by_name[name] = e;
  }
  ASSERT_TRUE(by_name.count("float8_e4m3fn"));
  ASSERT_TRUE(by_name.count("hifloat8"));
  ASSERT_TRUE(by_name.count("posit8_0"));
  const auto& e4 = by_name["float8_e4m3fn"];
  EXPECT_EQ(e4["max_finite"].get<double>(), 448.0);
  EXPECT_EQ(e4["bits"], 8);
  EXPECT_EQ(e4["exponent_bits"], 4);
  EXPECT_EQ(e4["mantissa_bits"], 3);
  EXPECT_EQ(e4["bias"], 7);
  EXPECT_EQ(e4["has_inf"], false);
  EXPECT_EQ(e4["has_nan"], true);
  EXPECT_EQ(e4["has_negative_zero"], true);
  EXPECT_EQ(e4["min_normal"].get<double>(), 0.015625);
  EXPECT_EQ(e4["min_subnormal"].get<double>(), 0.001953125);
  EXPECT_NE(std::find(e4["aliases"].begin(), e4["aliases"].end(), "e4m3fn"), e4["aliases"].end());
  EXPECT_EQ(by_name["hifloat8"]["max_finite"].get<double>(), 32768.0);
  EXPECT_EQ(by_name["posit8_0"]["max_finite"].get<double>(), 64.0);
  EXPECT_EQ(by_name["float8_e5m2"]["max_finite"].get<double>(), 57344.0);
  EXPECT_EQ(by_name["float8_e5m2"]["has_inf"], true);
  EXPECT_EQ(by_name["float8_e4m3fnuz"]["has_negative_zero"], false);
  EXPECT_EQ(by_name["float4_e2m1fn"]["max_finite"].get<double>(), 6.0);
  EXPECT_EQ(by_name["float4_e2m1fn"]["bits"], 4);
  EXPECT_EQ(by_name["bfloat16"]["bits"], 16);

  // The plain listing shows the parametric forms.
  const Result plain = ok({"formats"});
  EXPECT_NE(plain.out.find("float8_e4m3fn"), std::string::npos);
  EXPECT_NE(plain.out.find("fp:eXmY"), std::string::npos);
}

// Every listed name and alias is accepted by the array commands, and
// decode(encode(x)) == fakequant(x) for each.
TEST_F(CliTest, EveryListedFormatRoundTrips) {
  const Result r = ok({"formats", "--json"});
  const nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  write_floats(path("x.bin"), sample_values(257, 1.0f, 21));
  for (const auto& e : doc) {
    std::vector<std::string> spellings = {e["name"].get<std::string>()};
    for (const auto& a : e["aliases"]) spellings.push_back(a.get<std::string>());
    for (const std::string& f : spellings) {
      SCOPED_TRACE(f);
      ok({"encode", "--format", f, "x.bin", "c.bin"});
      ok({"decode", "--format", f, "c.bin", "y.bin"});
      ok({"fakequant", "--format", f, "x.bin", "z.bin"});
      EXPECT_EQ(read_bytes(path("y.bin")), read_bytes(path("z.bin")));
      const int bits = e["bits"];
      const uintmax_t bytes = bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
      EXPECT_EQ(fs::file_size(path("c.bin")), 257 * bytes);
    }
  }
}

TEST_F(CliTest, BenchJson) {
  const Result r = ok({"bench", "--json", "--elements", "40960", "--reps", "1"});
  nlohmann::json doc;
  ASSERT_NO_THROW(doc = nlohmann::json::parse(r.out)) << r.out.substr(0, 500);
  ASSERT_TRUE(doc.contains("records"));
  ASSERT_TRUE(doc["records"].is_array());
  ASSERT_FALSE(doc["records"].empty());
  std::set<std::string> qdq_schemes, quantize_rows;
  for (const auto& rec : doc["records"]) {
    for (const char* k : {"op", "threads", "elements_per_s", "bytes_per_s", "ratio_to_copy"}) {
      EXPECT_TRUE(rec.contains(k)) << rec.dump() << " lacks " << k;
    }
    EXPECT_TRUE(rec["op"].is_string());
    if (rec["op"] == "qdq") {
      // Scheme records: quantize + dequantize, float32 in and out.
      ASSERT_TRUE(rec.contains("scheme") && rec["scheme"].is_string()) << rec.dump();
      qdq_schemes.insert(rec["scheme"].get<std::string>());
    } else if (rec["op"] == "quantize") {
      // Model quantization rates: float32 input bytes per second.
      ASSERT_TRUE(rec.contains("scheme") && rec.contains("method") && rec.contains("container")) << rec.dump();
      quantize_rows.insert(rec["scheme"].get<std::string>() + " " + rec["method"].get<std::string>() + " " +
                           rec["container"].get<std::string>());
    } else {
      EXPECT_TRUE(rec.contains("format") && rec["format"].is_string()) << rec.dump();
      EXPECT_TRUE(rec.contains("round") && rec["round"].is_string()) << rec.dump();
    }
    EXPECT_TRUE(rec["threads"].is_number_integer());
    EXPECT_GE(rec["threads"].get<int>(), 1);
    for (const char* k : {"elements_per_s", "bytes_per_s", "ratio_to_copy"}) {
      ASSERT_TRUE(rec[k].is_number()) << rec.dump();
      EXPECT_GT(rec[k].get<double>(), 0) << rec.dump();
      EXPECT_TRUE(std::isfinite(rec[k].get<double>())) << rec.dump();
    }
  }
  for (const char* want : {"mxfp4", "nvfp4", "int4/g128/asym", "int4/g128/asym/scale=mse"}) {
    EXPECT_TRUE(qdq_schemes.count(want)) << "no qdq record for " << want;
  }
  for (const char* want : {"q4_0 rtn gguf", "q8_0 rtn gguf", "q4_k rtn gguf", "mxfp4 rtn gguf", "nvfp4 rtn safetensors",
                           "int4/g128/asym rtn safetensors", "int4/g128/asym mse safetensors",
                           "int4/g128/asym hqq safetensors"}) {
    EXPECT_TRUE(quantize_rows.count(want)) << "no quantize record for " << want;
  }
  // Too few elements is a usage error.
  const Result small = run({"bench", "--json", "--elements", "10", "--reps", "1"});
  EXPECT_EQ(small.status, 2) << small.err;
  EXPECT_NE(small.err.find("--elements"), std::string::npos) << small.err;
}

}  // namespace

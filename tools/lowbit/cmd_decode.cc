// `lowbit decode`: codes -> float32.
#include <memory>

#include "lowbit/format/registry.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"

namespace lowbit::cli {

namespace {
struct DecodeArgs {
  std::string format, in, out;
  bool packed = false;
  uint64_t count = 0;
  ThreadsFlag threads;
};

void run_decode(const DecodeArgs& a) {
  const Format f = parse_format(a.format);
  const int threads = a.threads.resolve();
  check_array_paths(a.out, {a.in});
  const CodeArray c = read_codes(a.in, f, a.packed, a.count);
  std::vector<float> out(c.count);
  ArrayOptions opt;
  opt.threads = threads;
  decode_array(f, reinterpret_cast<const uint8_t*>(c.bytes.data()), out.data(), c.count, a.packed, opt);
  write_array(a.out, "<f4", c.shape, out.data(), out.size() * sizeof(float));
}
}  // namespace

Action add_decode_command(CLI::App& app) {
  auto a = std::make_shared<DecodeArgs>();
  auto* cmd = app.add_subcommand("decode", "Turn codes of a format back into float32 values");
  cmd->add_option("--format", a->format, "format name or spec (see 'lowbit formats')")->required();
  cmd->add_flag("--packed", a->packed, "the input uses the packed layout");
  cmd->add_option("--count", a->count, "number of packed codes (default: every whole code in the file)");
  a->threads.add_to(cmd);
  cmd->add_option("IN", a->in, "codes: raw little-endian or .npy")->required();
  cmd->add_option("OUT", a->out, "float32 output: raw, or .npy")->required();
  cmd->footer("Example: lowbit decode --format e2m1 --packed weights.e2m1.bin weights.dq.npy");
  return [a] { run_decode(*a); };
}

}  // namespace lowbit::cli

// `lowbit encode`: float32 (or .npy float16/float64) -> codes.
#include <memory>

#include "lowbit/format/registry.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/round_flags.h"

namespace lowbit::cli {

namespace {
struct EncodeArgs {
  std::string format, in, out;
  bool packed = false;
  RoundFlags round;
};

void run_encode(const EncodeArgs& a) {
  const Format f = parse_format(a.format);
  const ArrayOptions opt = a.round.resolve();
  check_array_paths(a.out, {a.in});
  const FloatArray x = read_floats(a.in);
  const size_t n = x.size();
  std::vector<uint8_t> out(encoded_bytes(f, n, a.packed));
  encode_array(f, x.type, x.data(), out.data(), n, a.packed, opt);
  const bool packed = a.packed && out.size() != n * static_cast<size_t>(f.code_bytes());
  const std::vector<uint64_t> shape = packed ? std::vector<uint64_t>{out.size()} : x.shape;
  write_array(a.out, code_descr(packed ? 1 : f.code_bytes()), shape, out.data(), out.size());
}
}  // namespace

Action add_encode_command(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  auto* cmd = app.add_subcommand("encode", "Round float32 values to codes of a format");
  cmd->add_option("--format", a->format, "format name or spec (see 'lowbit formats')")->required();
  a->round.add_to(cmd);
  cmd->add_flag("--packed", a->packed, "pack sub-byte codes densely (4-bit: 2 per byte, low nibble first, ...)");
  cmd->add_option("IN", a->in, "float32 input: raw little-endian, or .npy (float32/float64/float16)")->required();
  cmd->add_option("OUT", a->out, "codes: 1 byte each (<= 8-bit formats), 2 (<= 16-bit), 4; .npy for NumPy")
      ->required();
  cmd->footer("Example: lowbit encode --format e2m1 --packed weights.npy weights.e2m1.bin");
  return [a] { run_encode(*a); };
}

}  // namespace lowbit::cli

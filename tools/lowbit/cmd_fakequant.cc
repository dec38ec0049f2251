// `lowbit fakequant`: float32 -> the nearest representable float32 under the
// format and rounding (decode(encode(x))), optionally with error statistics.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "lowbit/format/registry.h"
#include "lowbit/quant/error_stats.h"
#include "tools/lowbit/array_files.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/round_flags.h"

namespace lowbit::cli {

namespace {
struct FakequantArgs {
  std::string format, in, out;
  bool stats = false;
  RoundFlags round;
};

void print_stats(const Format& f, const ErrorStats& e, size_t n, double seconds, int threads) {
  std::fprintf(stderr,
               "%s: %zu elements, QSNR %.2f dB, MSE %.4g, relative RMSE %.4g, cosine %.6f, max |err| %.4g, "
               "%llu non-finite (%llu of them from finite input), %.3f s (%.2f G elem/s, %d thread%s)\n",
               f.name.c_str(), n, e.qsnr_db(), e.mse(), e.relative_rmse(), e.cosine(), e.max_abs_err,
               static_cast<unsigned long long>(e.nonfinite), static_cast<unsigned long long>(e.lost), seconds,
               seconds > 0 ? n / seconds / 1e9 : 0.0, threads, threads == 1 ? "" : "s");
}

void run_fakequant(const FakequantArgs& a) {
  const Format f = parse_format(a.format);
  const ArrayOptions opt = a.round.resolve();
  check_array_paths(a.out, {a.in});
  const FloatArray x = read_floats(a.in);
  const size_t n = x.size();
  if (x.type == InputType::kFloat64) {
    const double* src = static_cast<const double*>(x.data());
    std::vector<double> out(n);
    const auto t0 = std::chrono::steady_clock::now();
    fakequant_array(f, src, out.data(), n, opt);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_array(a.out, "<f8", x.shape, out.data(), n * 8);
    if (a.stats) {
      // In double, against the float64 input itself.
      ErrorStats e;
      for (size_t i = 0; i < n; ++i) e.add(src[i], out[i]);
      print_stats(f, e, n, seconds, opt.threads);
    }
    return;
  }
  // float16 widens to float32 exactly, so it is still rounded once.
  std::vector<float> in32;
  const float* src = static_cast<const float*>(x.data());
  if (x.type != InputType::kFloat32) {
    in32 = to_float32(x);
    src = in32.data();
  }
  std::vector<float> out(n);  // allocated and zeroed outside the timed kernel
  const auto t0 = std::chrono::steady_clock::now();
  fakequant_array(f, src, out.data(), n, opt);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_array(a.out, "<f4", x.shape, out.data(), n * 4);
  if (a.stats) print_stats(f, error_stats(src, out.data(), n, opt.threads), n, seconds, opt.threads);
}
}  // namespace

Action add_fakequant_command(CLI::App& app) {
  auto a = std::make_shared<FakequantArgs>();
  auto* cmd = app.add_subcommand("fakequant", "Round float32 values to the nearest values of a format, as float32");
  cmd->add_option("--format", a->format, "format name or spec (see 'lowbit formats')")->required();
  a->round.add_to(cmd);
  cmd->add_flag("--stats", a->stats, "print QSNR, MSE, relative RMSE, cosine and max error to stderr");
  cmd->add_option("IN", a->in, "float32 input: raw little-endian, or .npy (float32/float64/float16)")->required();
  cmd->add_option("OUT", a->out,
                  "output of the same shape and float type as the input (float64 stays float64; "
                  "float32 and float16 give float32): raw, or .npy")
      ->required();
  cmd->footer("Example: lowbit fakequant --format float8_e4m3fn --round stochastic --seed 7 x.npy xq.npy");
  return [a] { run_fakequant(*a); };
}

}  // namespace lowbit::cli

// lowbit: the command-line program. Exit status 0 on success, 2 for usage
// errors (unknown flags, format or rounding names), 1 for anything else; the
// reason goes to stderr, and a failed command leaves no output file.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/signal_guard.h"
#include "tools/lowbit/commands.h"

int main(int argc, char** argv) {
  // A file-size limit must surface as a write error, not kill the process.
  lowbit::ignore_sigxfsz();
  // SIGINT, SIGTERM, SIGHUP, SIGQUIT remove the temporary outputs before
  // the process dies of them; a SIGBUS from an input truncated under its
  // memory map becomes an error naming the file.
  lowbit::install_signal_guard();
  CLI::App app{"lowbit: exact low-precision number formats, quantization and fast kernels"};
  app.name("lowbit");
  app.require_subcommand(1);
  std::map<const CLI::App*, lowbit::cli::Action> actions;
  const auto reg = [&](lowbit::cli::Action (*add)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    lowbit::cli::Action a = add(app);
    actions[app.get_subcommands({})[before]] = std::move(a);
  };
  reg(lowbit::cli::add_formats_command);
  reg(lowbit::cli::add_encode_command);
  reg(lowbit::cli::add_decode_command);
  reg(lowbit::cli::add_fakequant_command);
  reg(lowbit::cli::add_bench_command);
  reg(lowbit::cli::add_study_command);
  reg(lowbit::cli::add_qtensor_command);
  reg(lowbit::cli::add_ggml_command);
  reg(lowbit::cli::add_inspect_command);
  reg(lowbit::cli::add_quantize_command);
  reg(lowbit::cli::add_tokenize_command);
  reg(lowbit::cli::add_embed_command);
  reg(lowbit::cli::add_eval_command);
  reg(lowbit::cli::add_generate_command);
  reg(lowbit::cli::add_calibrate_command);
  reg(lowbit::cli::add_train_command);
  reg(lowbit::cli::add_export_command);
  // CLI11 reports a mistyped subcommand as "a subcommand is required";
  // name the word instead.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "lowbit: error: unknown subcommand '%s'; valid: %s\n", argv[1], names.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lowbit: error: %s\nRun 'lowbit --help' or 'lowbit SUBCOMMAND --help'.\n", e.what());
    return 2;
  }
  try {
    for (const auto* sub : app.get_subcommands()) actions.at(sub)();
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lowbit: error: out of memory\n");
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // The operating system refused a file operation: say which path and
    // why, not the library's exception text.
    std::fprintf(stderr, "lowbit: error: '%s': %s\n", e.path1().c_str(), e.code().message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

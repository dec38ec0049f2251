// The `lowbit` subcommands. Each add_*_command registers its options on the
// app and returns the action to run once parsing succeeded; actions throw
// lowbit::Error, which main() turns into a message and an exit status.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace lowbit::cli {

using Action = std::function<void()>;

Action add_formats_command(CLI::App& app);
Action add_encode_command(CLI::App& app);
Action add_decode_command(CLI::App& app);
Action add_fakequant_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_study_command(CLI::App& app);
Action add_qtensor_command(CLI::App& app);
Action add_ggml_command(CLI::App& app);
Action add_inspect_command(CLI::App& app);
Action add_quantize_command(CLI::App& app);
Action add_tokenize_command(CLI::App& app);
Action add_embed_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_generate_command(CLI::App& app);
Action add_calibrate_command(CLI::App& app);
Action add_train_command(CLI::App& app);
Action add_export_command(CLI::App& app);

// The subcommands of `lowbit eval`, one file each (cmd_eval_*.cc): each
// registers itself on `eval` and returns its action; add_eval_command runs
// the one that was given.
Action add_eval_ppl_subcommand(CLI::App& eval);
Action add_eval_kld_subcommand(CLI::App& eval);
Action add_eval_embed_subcommand(CLI::App& eval);

// `lowbit study model` (cmd_study_model.cc) and `lowbit study train`
// (cmd_study_train.cc), registered on `study`.
Action add_study_model_subcommand(CLI::App& study);
Action add_study_train_subcommand(CLI::App& study);

}  // namespace lowbit::cli

// `lowbit export MODEL OUT_DIR`: a Llama GGUF as a Hugging Face model
// directory (lowbit/pipeline/hf_export.h): config.json, model.safetensors
// (float32) and tokenizer.json. OUT_DIR appears complete or not at all
// (core/output_directory.h).
#include <cstdio>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/output_directory.h"
#include "lowbit/pipeline/hf_export.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/common_flags.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

struct ExportArgs {
  std::string model, out;
  bool overwrite = false;
  ThreadsFlag threads;
};

void run_export(const ExportArgs& a) {
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  check_paths({{"MODEL", path}}, {{"OUT_DIR", a.out}});
  OutputDirectory dir(a.out, a.overwrite);
  export_llama_hf(path, dir.temp_path(), a.threads.resolve());
  const uint64_t bytes = dir.commit();
  std::printf("wrote %s: config.json, model.safetensors, tokenizer.json (%.1f MB)\n", a.out.c_str(),
              static_cast<double>(bytes) / 1e6);
}

}  // namespace

Action add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand(
      "export", "Write a Llama GGUF as a Hugging Face directory: config.json, model.safetensors, tokenizer.json");
  cmd->add_option("MODEL", a->model, "a Llama .gguf file with a byte-level BPE tokenizer, or lowbit-lm")->required();
  cmd->add_option("OUT_DIR", a->out, "the directory to write (appears complete or not at all)")->required();
  cmd->add_flag("--overwrite", a->overwrite, "write into an existing directory that holds other files");
  a->threads.add_to(cmd);
  cmd->footer("Example: lowbit export lowbit-lm lowbit-lm-hf/   (then: lowbit eval ppl lowbit-lm-hf/ --corpus kjv)");
  return [a] { run_export(*a); };
}

}  // namespace lowbit::cli

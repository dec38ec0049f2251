// `lowbit tokenize MODEL (TEXT | --file F) [--json] [--pieces]
//  [--no-special] [--parse-special] [--decode [--skip-special]]`: the token
// ids of a text under a model's tokenizer (lowbit/model/tokenizer.h), or
// with --decode the text of token ids.
//
// MODEL is an installed model name (minilm, smollm2), a GGUF file, a
// tokenizer.json, a model directory holding one, or a checkpoint file with
// one beside it. The text is TEXT as given (no escapes are processed) or
// the bytes of file F ("-" for standard input), invalid UTF-8 included.
//
// Output, on standard output, written only once everything is tokenized:
//   (plain)    the ids of the whole text on one line, separated by spaces;
//   --pieces   one token per line: its id, a tab, its piece (the stored
//              token text, such as "Ġthe" or "##ing", with \ and control
//              characters escaped as \\, \t, \n, \r, \xNN);
//   --json     one JSON object per input line, {"ids": [...], "pieces":
//              [...]}, each line tokenized on its own without its '\n'; a
//              final '\n' ends the last line, and an empty text is one
//              empty line.
//   --decode   the input is token ids (decimal, separated by white space
//              or commas; brackets are ignored, so llama-tokenize's --ids
//              output reads too) and the output is their text, as bytes,
//              with nothing added: for byte-level BPE exactly the text they
//              were encoded from. --skip-special leaves out control tokens.
// add_special (BOS/EOS, [CLS] ... [SEP]) applies to the whole text, or to
// each line with --json; --no-special turns it off. --parse-special reads
// control tokens written in the text ("<|im_end|>", "[SEP]") as those
// tokens.
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/text.h"
#include "lowbit/model/tokenizer.h"
#include "tools/lowbit/commands.h"
#include "tools/lowbit/installed_models.h"

namespace lowbit::cli {

namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  CLI::Option* text_option = nullptr;
  CLI::Option* file_option = nullptr;
  bool json = false;
  bool pieces = false;
  bool no_special = false;
  bool parse_special = false;
  bool decode = false;
  bool skip_special = false;
};

std::string read_input(const TokenizeArgs& a) {
  if (a.file == "-") {
    std::string out;
    char buf[65536];
    while (size_t n = std::fread(buf, 1, sizeof buf, stdin)) out.append(buf, n);
    if (std::ferror(stdin)) fail_io("cannot read standard input");
    return out;
  }
  const std::vector<std::byte> bytes = read_file(a.file);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string escape_piece(const std::string& piece) {
  std::string out;
  for (char ch : piece) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

// The lines of --json: split at '\n', a final '\n' ending the last line.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (true) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size() || lines.empty()) lines.push_back(text.substr(start));
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
}

// Token ids written as text: decimal integers; white space, commas and
// square brackets separate them.
std::vector<int32_t> parse_ids(const std::string& text) {
  const auto separator = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '[' || c == ']';
  };
  std::vector<int32_t> ids;
  for (size_t pos = 0; pos < text.size();) {
    if (separator(text[pos])) {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < text.size() && !separator(text[end])) ++end;
    const std::string word = text.substr(pos, end - pos);
    errno = 0;
    char* stop = nullptr;
    const long long v = std::strtoll(word.c_str(), &stop, 10);
    const bool digits = word.find_first_not_of("-0123456789") == std::string::npos;
    if (!digits || stop != word.c_str() + word.size() || errno == ERANGE || v < INT32_MIN || v > INT32_MAX) {
      fail_input(fmt::format("--decode: {} is not a token id", quote_untrusted(word)));
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = end;
  }
  return ids;
}

void run_tokenize(const TokenizeArgs& a) {
  const bool has_text = a.text_option->count() > 0, has_file = a.file_option->count() > 0;
  if (has_text && has_file) fail_usage("give the text as TEXT or with --file, not both");
  if (!has_text && !has_file) fail_usage("no text: give TEXT or --file F");
  if (a.json && a.pieces) fail_usage("--pieces and --json are alternatives (--json always lists the pieces)");
  if (a.decode && (a.json || a.pieces || a.no_special || a.parse_special)) {
    fail_usage("--decode reads ids and prints text: --json, --pieces, --no-special and --parse-special do not apply");
  }
  if (a.skip_special && !a.decode) fail_usage("--skip-special applies to --decode only");
  const std::string path = resolve_installed_model(a.model).value_or(a.model);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(path);
  const std::string text = has_file ? read_input(a) : a.text;
  const bool add_special = !a.no_special;

  std::string out;
  if (a.decode) {
    out = tok->decode(parse_ids(text), a.skip_special);
  } else if (a.json) {
    for (std::string_view line : lines_of(text)) {
      const std::vector<int32_t> ids = tok->encode(line, add_special, a.parse_special);
      nlohmann::ordered_json obj = {{"ids", ids}, {"pieces", nlohmann::json::array()}};
      for (int32_t id : ids) obj["pieces"].push_back(tok->piece(id));
      out += obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += '\n';
    }
  } else {
    const std::vector<int32_t> ids = tok->encode(text, add_special, a.parse_special);
    if (a.pieces) {
      for (int32_t id : ids) out += fmt::format("{}\t{}\n", id, escape_piece(tok->piece(id)));
    } else {
      for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
      out += '\n';
    }
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    fail_io("cannot write to standard output");
  }
}

}  // namespace

Action add_tokenize_command(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  cmd->add_option("MODEL", a->model,
                  "an installed model (minilm, smollm2), a .gguf file, a tokenizer.json, or a model directory "
                  "holding one")
      ->required();
  a->text_option = cmd->add_option("TEXT", a->text, "the text, taken as is (or use --file)");
  a->file_option = cmd->add_option("--file", a->file, "read the text from this file ('-': standard input)");
  cmd->add_flag("--json", a->json, "one JSON object per input line: {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_flag("--pieces", a->pieces, "one token per line: id, tab, piece");
  cmd->add_flag("--no-special", a->no_special, "do not add the model's BOS/EOS or [CLS]/[SEP] tokens");
  cmd->add_flag("--parse-special", a->parse_special,
                "read control tokens written in the text (\"<|im_end|>\", \"[SEP]\") as those tokens");
  cmd->add_flag("--decode", a->decode,
                "the input is token ids (separated by spaces or commas); print their text, bytes as they are");
  cmd->add_flag("--skip-special", a->skip_special, "with --decode: leave out control tokens");
  cmd->footer(
      "Plain output: the ids of the whole text on one line. add_special follows the model: SmolLM2 adds "
      "nothing, MiniLM adds [CLS] and [SEP].\nExamples: lowbit tokenize smollm2 \"Hello world\"\n"
      "          lowbit tokenize minilm --file notes.txt --json\n"
      "          lowbit tokenize smollm2 --decode \"19556 905\"");
  return [a] { run_tokenize(*a); };
}

}  // namespace lowbit::cli

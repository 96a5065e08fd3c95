// The headsplit subcommands and the helpers they share. Each command lives in its own file in
// src/cli/ and registers itself with a register_* function that cli.cpp calls; its work runs
// as an Action whose Status cli.cpp turns into the exit code (the only place that happens).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

#include "headsplit/artifact/reader.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runner/lookahead.h"
#include "headsplit/support/result.h"

namespace CLI {
class App;
}  // namespace CLI

namespace hs::cli {

// The work of a subcommand, run after parsing succeeded.
using Action = std::function<Status()>;

// Makes `action` run when `command` (a subcommand of the main App) is selected.
void set_action(CLI::App& command, Action action);

// Subcommands (add yours here and call it from cli.cpp).
void register_generate(CLI::App& app);  // generate.cpp: text from a checkpoint, on the interpreter
void register_eval(CLI::App& app);      // eval.cpp: quantize and measure accuracy vs float
void register_report(CLI::App& app);    // report.cpp: graph summary before/after preprocess; passes
void register_export(CLI::App& app);    // export.cpp: checkpoint -> .hsa artifact
void register_demo(CLI::App& app);      // demo.cpp: export the default model and generate
void register_run(CLI::App& app);       // run.cpp: artifact -> text, on the runtime
void register_inspect(CLI::App& app);   // inspect.cpp: artifact summary
void register_chat(CLI::App& app);      // chat.cpp: multi-turn chat on an artifact
void register_tokenize(CLI::App& app);  // tokenize.cpp: text <-> token ids, any tokenizer source
void register_perplexity(CLI::App& app);  // perplexity.cpp: PPL (and KLD) of a text file
void register_bench(CLI::App& app);       // bench.cpp: llama-bench style speed table
void register_info(CLI::App& app);        // info.cpp: checkpoint summary (what inspect is for .hsa)

// --lookahead N,W,G (lookahead.cpp), shared by run, generate and chat: adds the option to
// `command` storing its text, and parses that text (empty: lookahead off).
void add_lookahead_option(CLI::App& command, std::string& text);
Result<runner::LookaheadOptions> parse_lookahead_option(const std::string& text);

// --mmap (artifact_memory.cpp), shared by run, chat and bench: memory-map the artifact instead
// of reading it into huge pages (artifact::Residence).
void add_mmap_flag(CLI::App& command, bool& mmap);
artifact::Residence residence_of(bool mmap);

// Prints the llama.cpp-style timing block of a generation to `out`:
//   load:                   12.34 ms
//   prompt eval:      6 tokens,     1.23 ms,  4878.05 tok/s
//   eval:            63 tokens,    40.00 ms,  1575.00 tok/s
//   time to first token:     1.30 ms
//   generated:       64 tokens (stop: max tokens)
void print_generation_stats(const runner::GenerationResult& result, std::FILE* out);

// Lines `first`..`last` (inclusive, 0-based) of a text; empty when last < first.
struct LineRange {
  int64_t first = 0, last = -1;
  std::string text() const;
};

// Parses `option`'s value "a-b" or "a" as a LineRange within [0, n) (eval's --calib-lines and
// --eval-lines, perplexity's --lines).
Result<LineRange> parse_lines(const std::string& text, int64_t n, std::string_view option);

}  // namespace hs::cli

// `headsplit run`: generate text from a .hsa artifact with the engine (no compiler code on this
// path): load and verify, plan, tokenize (optionally through a chat template), prefill with the
// AR-N graph, decode with AR-1 (or lookahead), stream the text to stdout and the stats to
// stderr.
#include "headsplit/runtime/run.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "headsplit/cli/commands.h"
#include "headsplit/engine/engine.h"

namespace hs::cli {

namespace {

// What the options ask for.
struct RunOptions {
  std::string model_path;
  std::string prompt;
  int64_t max_new_tokens = 256;
  runner::SamplerOptions sampler;
  int threads = 0;
  std::string system_prompt;
};

struct RunArgs {
  RunOptions options;
  bool stats_json = false;
  bool chat = false;
  std::string chat_template;  // "" | chatml | llama3
  std::string lookahead;      // "" | N,W,G
  bool no_verify = false;
  bool mmap = false;
};

Status run_run(RunArgs& a) {
  const RunOptions& o = a.options;
  engine::GenerateOptions options{
      .max_new_tokens = o.max_new_tokens, .sampler = o.sampler, .system_prompt = o.system_prompt};
  if (!a.chat_template.empty()) {
    options.format =
        a.chat_template == "llama3" ? engine::PromptFormat::kLlama3 : engine::PromptFormat::kChatMl;
  } else if (a.chat) {
    options.format = engine::PromptFormat::kAuto;
  }
  HS_ASSIGN_OR_RETURN(options.lookahead, parse_lookahead_option(a.lookahead));
  HS_ASSIGN_OR_RETURN(auto engine, engine::Engine::load({.model_path = o.model_path,
                                                         .threads = o.threads,
                                                         .verify_checksum = !a.no_verify,
                                                         .residence = residence_of(a.mmap)}));
  if (options.format == engine::PromptFormat::kPlain) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  HS_ASSIGN_OR_RETURN(runtime::RunReport report,
                      engine->generate(o.prompt, options, [](std::string_view text) {
                        std::fwrite(text.data(), 1, text.size(), stdout);
                        std::fflush(stdout);
                      }));
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (a.stats_json) {
    std::fprintf(stderr, "%s\n", runtime::format_run_stats_json(report).c_str());
  } else {
    std::fprintf(stderr, "\n%s", runtime::format_run_stats(report).c_str());
  }
  return ok_status();
}

}  // namespace

void register_run(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  RunOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Generate text from a .hsa artifact with the runtime: prefill the prompt with the AR-N "
      "graph, decode with AR-1 (or lookahead decoding), SmartMask KV cache in the caches' stored "
      "form.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", o.model_path, "the artifact (.hsa) written by 'headsplit export'")
      ->required();
  cmd->add_option("-p,--prompt", o.prompt, "prompt text (empty: generate from BOS)");
  cmd->add_option("-n", o.max_new_tokens,
                  "new tokens to generate (clamped so that prompt + new tokens fit the context)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", o.sampler.temperature, "sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", o.sampler.top_k, "keep the k most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o.sampler.top_p, "keep the smallest set of tokens reaching p (1: all)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--seed", o.sampler.seed, "sampler seed (same seed, same text)");
  cmd->add_option("--threads", o.threads, "threads for the kernels (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--stats-json", args->stats_json,
                "print the stats as one line of JSON (on stderr) instead of the block");
  cmd->add_flag("--chat", args->chat,
                "wrap the prompt in the chat template stored with the artifact's tokenizer");
  cmd->add_option("--chat-template", args->chat_template,
                  "wrap the prompt in this chat template instead: chatml or llama3")
      ->check(CLI::IsMember({"chatml", "llama3"}));
  cmd->add_option("--system", o.system_prompt, "system prompt for the chat template");
  add_lookahead_option(*cmd, args->lookahead);
  cmd->add_flag("--no-verify-checksum", args->no_verify,
                "skip hashing the whole file at load (structure is still checked)");
  add_mmap_flag(*cmd, args->mmap);
  cmd->footer(
      "Text goes to stdout, the stats to stderr. Examples:\n"
      "  headsplit export -m ../shared/models/stories260K/stories260K.bin -o stories.hsa\n"
      "  headsplit run -m stories.hsa -p \"Once upon a time\" -n 64\n"
      "  headsplit run -m stories.hsa -p \"Lily\" -n 64 --temp 0.8 --top-p 0.9 --seed 7\n"
      "  headsplit run -m smollm2.hsa --chat -p \"What is a cat?\" --threads 2 --stats-json\n"
      "  headsplit run -m stories.hsa -p \"Once upon a time\" -n 200 --lookahead 3,8,8");
  set_action(*cmd, [args] { return run_run(*args); });
}

}  // namespace hs::cli

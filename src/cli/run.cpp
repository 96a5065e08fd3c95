// `headsplit run`: generate text from a .hsa artifact with the runtime (no compiler code on
// this path): load and verify, plan, tokenize (optionally through a chat template), prefill
// with the AR-N graph, decode with AR-1, stream the text to stdout and the stats to stderr.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "headsplit/cli/commands.h"
#include "headsplit/runtime/run.h"

namespace hs::cli {

namespace {

struct RunArgs {
  runtime::RunOptions options;
  bool stats_json = false;
  bool chat = false;
  std::string chat_template;  // "" | chatml | llama3
  bool no_verify = false;
};

Status run_run(RunArgs& a) {
  runtime::RunOptions& o = a.options;
  o.verify_checksum = !a.no_verify;
  if (!a.chat_template.empty()) {
    o.chat = a.chat_template == "llama3" ? runtime::ChatMode::kLlama3 : runtime::ChatMode::kChatMl;
  } else if (a.chat) {
    o.chat = runtime::ChatMode::kAuto;
  }
  if (o.chat == runtime::ChatMode::kNone) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  HS_ASSIGN_OR_RETURN(runtime::RunReport report,
                      runtime::run_artifact(o, [](std::string_view text) {
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
  runtime::RunOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Generate text from a .hsa artifact with the runtime: prefill the prompt with the AR-N "
      "graph, decode with AR-1, SmartMask KV cache in the caches' stored form.");
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
  cmd->add_flag("--no-verify-checksum", args->no_verify,
                "skip hashing the whole file at load (structure is still checked)");
  cmd->footer(
      "Text goes to stdout, the stats to stderr. Examples:\n"
      "  headsplit export -m ../shared/models/stories260K/stories260K.bin -o stories.hsa\n"
      "  headsplit run -m stories.hsa -p \"Once upon a time\" -n 64\n"
      "  headsplit run -m stories.hsa -p \"Lily\" -n 64 --temp 0.8 --top-p 0.9 --seed 7\n"
      "  headsplit run -m smollm2.hsa --chat -p \"What is a cat?\" --threads 2 --stats-json");
  set_action(*cmd, [args] { return run_run(*args); });
}

}  // namespace hs::cli

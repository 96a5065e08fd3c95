// `headsplit chat`: a multi-turn conversation with a .hsa artifact. The KV cache is kept between
// turns (only the new turn is prefilled), each turn goes through the model's chat template (plain
// text when it has none), answers stream to stdout. Interactive with line editing (BSD editline)
// when stdin is a terminal, else one turn per line of stdin or of --turns FILE. Commands:
// /reset, /stats, /quit; Ctrl-D (end of input) quits.
#include <editline/readline.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "headsplit/cli/commands.h"
#include "headsplit/engine/engine.h"

namespace hs::cli {

namespace {

struct ChatArgs {
  std::string model;
  std::string turns;  // "" interactive / stdin, "-" stdin, else a file
  int64_t n = 256;
  runner::SamplerOptions sampler;
  int threads = 0;
  std::string chat_template;  // "" (the artifact's, else plain), chatml, llama3, plain
  std::string system;
  std::string lookahead;
  bool drop_oldest = false;
  bool verbose = false;
  bool no_verify = false;
  bool mmap = false;
};

// Where turns come from: editline on a terminal, else lines of a stream.
class LineSource {
 public:
  explicit LineSource(std::istream* stream) : stream_(stream) {}
  bool interactive() const { return stream_ == nullptr; }
  // The next line without its newline; nullopt at the end of input (Ctrl-D).
  std::optional<std::string> next() {
    if (stream_ != nullptr) {
      std::string line;
      if (!std::getline(*stream_, line)) return std::nullopt;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    char* raw = readline("> ");
    if (raw == nullptr) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return line;
  }

 private:
  std::istream* stream_;
};

std::string session_stats(const engine::Chat& chat) {
  const runner::ChatSession& s = chat.session();
  const runner::ChatStats& t = s.stats();
  auto rate = [](int64_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
  std::string out = fmt::format(
      "turns:        {} ({} in this conversation), conversation {} / {} tokens\n"
      "prompt eval: {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s\n"
      "eval:        {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s  ({} steps)\n",
      t.turns, s.turns(), s.position(), s.context_len(), t.prompt_tokens, t.prefill_seconds * 1e3,
      rate(t.prompt_tokens, t.prefill_seconds), t.decode_tokens, t.decode_seconds * 1e3,
      rate(t.decode_tokens, t.decode_seconds), t.decode_steps);
  if (t.lookahead_steps > 0) {
    out += fmt::format(
        "lookahead:   {} steps, {} tokens, {:.2f} tokens/step\n", t.lookahead_steps,
        t.lookahead_tokens,
        static_cast<double>(t.lookahead_tokens) / static_cast<double>(t.lookahead_steps));
  }
  out += fmt::format("generated:   {:6d} tokens; resets {}, dropped turns {}\n", t.generated_tokens,
                     t.resets, t.dropped_turns);
  return out;
}

// One turn; false when the context is full (said on stderr), errors otherwise.
Result<bool> turn(engine::Chat& chat, const std::string& line, const ChatArgs& a) {
  auto result = chat.send(line, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!result.ok() && result.kind() == ErrorKind::kOutOfRange) {
    std::fprintf(stderr,
                 "%s\n(type /reset to start a new conversation, or run with --drop-oldest)\n",
                 result.error().message().c_str());
    return false;
  }
  HS_TRY(result);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  const runner::TurnResult& r = *result;
  const runner::GenerationResult& g = r.generation;
  if (r.dropped_turns > 0) {
    std::fprintf(stderr, "(context full: dropped the %lld oldest turns and re-read %lld tokens)\n",
                 static_cast<long long>(r.dropped_turns),
                 static_cast<long long>(g.stats.prompt_tokens));
  }
  if (g.stop == runner::StopReason::kContextFull) {
    std::fprintf(stderr,
                 "(context full: the answer was cut; /reset to start a new conversation)\n");
  }
  if (a.verbose) {
    const runner::ChatSession& s = chat.session();
    std::fprintf(
        stderr,
        "[turn %lld: prompt %lld tokens from position %lld, %lld tokens (stop: %s), "
        "%.1f tok/s, conversation %lld / %lld]\n",
        static_cast<long long>(s.stats().turns), static_cast<long long>(g.stats.prompt_tokens),
        static_cast<long long>(g.start_position), static_cast<long long>(g.stats.generated_tokens),
        std::string(runner::stop_reason_name(g.stop)).c_str(), g.stats.decode_tokens_per_second(),
        static_cast<long long>(s.position()), static_cast<long long>(s.context_len()));
  }
  return true;
}

Status run_chat(const ChatArgs& a) {
  engine::ChatOptions options{
      .max_new_tokens = a.n,
      .sampler = a.sampler,
      .system_prompt = a.system,
      .on_full = a.drop_oldest ? runner::ContextPolicy::kDropOldest : runner::ContextPolicy::kStop};
  if (a.chat_template == "chatml") options.format = engine::PromptFormat::kChatMl;
  if (a.chat_template == "llama3") options.format = engine::PromptFormat::kLlama3;
  if (a.chat_template == "plain") options.format = engine::PromptFormat::kPlain;
  HS_ASSIGN_OR_RETURN(options.lookahead, parse_lookahead_option(a.lookahead));

  std::ifstream file;
  std::istream* stream = nullptr;  // nullptr: editline
  if (a.turns == "-" || (a.turns.empty() && ::isatty(STDIN_FILENO) == 0)) {
    stream = &std::cin;
  } else if (!a.turns.empty()) {
    file.open(a.turns);
    if (!file) return errorf(ErrorKind::kIo, "--turns: cannot read '{}'", a.turns);
    stream = &file;
  }
  HS_ASSIGN_OR_RETURN(auto engine, engine::Engine::load({.model_path = a.model,
                                                         .threads = a.threads,
                                                         .verify_checksum = !a.no_verify,
                                                         .residence = residence_of(a.mmap)}));
  HS_ASSIGN_OR_RETURN(std::unique_ptr<engine::Chat> chat, engine->chat(options));
  LineSource source(stream);
  std::fprintf(stderr, "chat: %s (%.*s), context %lld tokens%s\n", engine->model_name().c_str(),
               static_cast<int>(chat->format_name().size()), chat->format_name().data(),
               static_cast<long long>(engine->info().context_len),
               source.interactive() ? "; /reset, /stats, /quit, Ctrl-D to quit" : "");
  while (std::optional<std::string> line = source.next()) {
    if (line->empty()) continue;
    if (!source.interactive()) std::printf("> %s\n", line->c_str());
    if (*line == "/quit" || *line == "/exit") break;
    if (*line == "/reset") {
      chat->reset();
      std::fputs("(conversation reset)\n", stdout);
    } else if (*line == "/stats") {
      std::fputs(session_stats(*chat).c_str(), stdout);
    } else {
      HS_TRY(turn(*chat, *line, a));
    }
    std::fflush(stdout);
  }
  std::fprintf(stderr, "\n%s", session_stats(*chat).c_str());
  return ok_status();
}

}  // namespace

void register_chat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chat",
      "Chat with a .hsa artifact: the KV cache is kept between turns (only the new turn is "
      "prefilled), each turn goes through the model's chat template, answers stream as they are "
      "generated.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", args->model, "the artifact (.hsa) written by 'headsplit export'")
      ->required();
  cmd->add_option("--turns", args->turns,
                  "read the turns from this file, one per line ('-': stdin) instead of the "
                  "terminal; lines /reset and /stats are commands");
  cmd->add_option("-n", args->n, "most new tokens per answer")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", args->sampler.temperature, "sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", args->sampler.top_k, "keep the k most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->sampler.top_p,
                  "keep the smallest set of tokens reaching p (1: all)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--seed", args->sampler.seed, "sampler seed (same seed, same conversation)");
  cmd->add_option("--threads", args->threads, "threads for the kernels (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--chat-template", args->chat_template,
                  "chatml, llama3 or plain (default: the template stored with the artifact's "
                  "tokenizer, plain text when it has none)")
      ->check(CLI::IsMember({"chatml", "llama3", "plain"}));
  cmd->add_option("--system", args->system, "system prompt for the chat template");
  add_lookahead_option(*cmd, args->lookahead);
  cmd->add_flag("--drop-oldest", args->drop_oldest,
                "when the context is full, drop the oldest turns and re-read the rest (default: "
                "say so and wait for /reset)");
  cmd->add_flag("--verbose", args->verbose,
                "after each answer, a line on stderr: tokens prefilled and from which position, "
                "tokens generated, rate, conversation size");
  cmd->add_flag("--no-verify-checksum", args->no_verify,
                "skip hashing the whole file at load (structure is still checked)");
  add_mmap_flag(*cmd, args->mmap);
  cmd->footer(
      "Answers go to stdout, notes and stats to stderr. Examples:\n"
      "  headsplit chat -m smollm2.hsa\n"
      "  headsplit chat -m stories.hsa --turns turns.txt -n 64 --verbose\n"
      "  printf 'Once upon a time\\n/stats\\n' | headsplit chat -m stories.hsa --turns -");
  set_action(*cmd, [args] { return run_chat(*args); });
}

}  // namespace hs::cli

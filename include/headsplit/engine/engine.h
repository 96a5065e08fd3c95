// The headsplit engine: the library an application embeds to run a .hsa artifact — load it,
// generate text with a callback, hold a multi-turn chat — with no compiler code (it links the
// runtime, the runner and the tokenizer). The `run`, `chat` and `demo` commands use it; so does
// examples/generate.cpp, a complete program in 40 lines:
//
//   auto engine = hs::engine::Engine::load({.model_path = "stories260K.hsa"});
//   if (!engine.ok()) { /* engine.error().message() */ }
//   hs::engine::GenerateOptions options;
//   options.max_new_tokens = 64;
//   options.lookahead = {.ngram = 3, .window = 8, .guesses = 8};  // optional: same greedy text
//   auto report = (*engine)->generate("Once upon a time", options,
//                                     [](std::string_view piece) { /* stream it */ });
//   // report->text, report->generation.stats, hs::runtime::format_run_stats(*report)
//
//   auto chat = (*engine)->chat({.max_new_tokens = 128});
//   auto turn = (*chat)->send("What is a cat?", on_text);  // then "And a dog?" ... /reset
//
// Every call returns Result<T> (never throws); errors are lowercase and name the file or the
// argument. An Engine is not thread-safe; one generation or chat turn runs at a time, and the
// Engine must outlive its Chat objects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "headsplit/artifact/reader.h"
#include "headsplit/runner/chat_session.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runner/lookahead.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/runtime/run.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::engine {

// How prompt text becomes tokens.
enum class PromptFormat : uint8_t {
  kPlain,   // BOS + the text
  kAuto,    // the chat template stored with the artifact's tokenizer (an error when it has none
            // for generate(); plain text for chat())
  kChatMl,  // ChatML
  kLlama3,  // Llama-3
};

struct EngineOptions {
  std::string model_path;       // the .hsa file
  int threads = 0;              // kernel threads; 0: every hardware thread
  bool verify_checksum = true;  // hash the whole file at load (structure is always checked)
  // Read the file into huge pages (the default, fastest decode) or memory-map it
  // (artifact::LoadOptions::residence).
  artifact::Residence residence = artifact::Residence::kHugePages;
};

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  runner::SamplerOptions sampler;      // greedy by default
  runner::LookaheadOptions lookahead;  // off by default (ngram 0)
  PromptFormat format = PromptFormat::kPlain;
  std::string system_prompt;  // template formats; empty: the template's default
};

struct ChatOptions {
  int64_t max_new_tokens = 256;  // per answer
  runner::SamplerOptions sampler;
  runner::LookaheadOptions lookahead;
  PromptFormat format = PromptFormat::kAuto;
  std::string system_prompt;
  runner::ContextPolicy on_full = runner::ContextPolicy::kStop;
};

// Called with each piece of generated text as soon as it is decoded.
using TextCallback = std::function<void(std::string_view text)>;

class Chat;

class Engine {
 public:
  // Maps and verifies the artifact, plans its graphs, builds the tokenizer. Errors: the
  // artifact's (kIo, kCorrupt, kChecksum, ... naming the file) and the planner's.
  static Result<std::unique_ptr<Engine>> load(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Prompt text -> text, streamed through on_text; the report has the text, the stats and the
  // load figures (runtime::format_run_stats prints it). Errors: invalid sampler or lookahead
  // options, a chat template the artifact does not have, a prompt that does not fit, step errors.
  Result<runtime::RunReport> generate(std::string_view prompt, const GenerateOptions& options,
                                      const TextCallback& on_text = nullptr);
  // The same from token ids (BOS included when wanted); options.format is not used.
  Result<runtime::RunReport> generate_tokens(std::span<const int32_t> prompt,
                                             const GenerateOptions& options,
                                             const TextCallback& on_text = nullptr);
  // A conversation that keeps its KV cache between turns (runner/chat_session.h).
  Result<std::unique_ptr<Chat>> chat(const ChatOptions& options);

  const std::string& model_name() const;
  const runner::StepModelInfo& info() const;  // L, Hkv, Dh, C, V, AR lengths, cache type
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  runtime::ArtifactStepModel& step_model() { return *model_; }
  // The AR length of the artifact's prefill graph (metadata ar_lengths[0]; an extra lookahead
  // graph, even a larger one, is not used for prompts).
  int64_t prefill_ar_len() const;
  // The chat template of `format` for this artifact; nullopt for plain text. kUnsupported when
  // kAuto finds no usable template and `plain_fallback` is false.
  Result<std::optional<tokenizer::ChatTemplate>> chat_template(PromptFormat format,
                                                               bool plain_fallback) const;

 private:
  Engine() = default;
  runtime::RunReport blank_report() const;  // model, load and system fields filled in

  std::string path_;
  std::shared_ptr<const artifact::LoadedArtifact> artifact_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<runtime::ArtifactStepModel> model_;
  double load_seconds_ = 0.0, verify_seconds_ = 0.0, plan_seconds_ = 0.0;
};

// A conversation on an Engine (which must outlive it).
class Chat {
 public:
  // One turn: the answer streamed through on_text. kOutOfRange when the context is full under
  // ContextPolicy::kStop (the conversation is unchanged: reset() to go on).
  Result<runner::TurnResult> send(std::string_view message, const TextCallback& on_text = nullptr);
  void reset() { session_.reset(); }
  const runner::ChatSession& session() const { return session_; }
  // "plain text", "chatml" or "llama3".
  std::string_view format_name() const;

 private:
  friend class Engine;
  Chat(runner::ChatSession session, runner::Sampler sampler)
      : session_(std::move(session)), sampler_(std::move(sampler)) {}
  runner::ChatSession session_;
  runner::Sampler sampler_;
};

}  // namespace hs::engine

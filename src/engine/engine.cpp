// Engine: load an artifact (verify, plan, tokenizer), generate from text or ids with the runner
// (hybrid prefill/decode or lookahead), and chat sessions over the same step model.
#include "headsplit/engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "headsplit/artifact/reader.h"
#include "headsplit/kernels/qgemm.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/tokenizer/chat.h"

namespace hs::engine {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::load(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->path_ = options.model_path;
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(
      artifact::LoadedArtifact loaded,
      artifact::load_artifact(options.model_path, {.verify_checksum = options.verify_checksum,
                                                   .residence = options.residence}));
  engine->artifact_ = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
  engine->verify_seconds_ = seconds_since(start);
  const auto plan_start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(engine->tokenizer_,
                      tokenizer::Tokenizer::create(engine->artifact_->program().tokenizer));
  HS_ASSIGN_OR_RETURN(engine->model_, runtime::ArtifactStepModel::create(
                                          engine->artifact_, {.threads = options.threads}));
  engine->plan_seconds_ = seconds_since(plan_start);
  engine->load_seconds_ = seconds_since(start);
  return engine;
}

const std::string& Engine::model_name() const { return artifact_->program().metadata.model_name; }

const runner::StepModelInfo& Engine::info() const { return model_->info(); }

int64_t Engine::prefill_ar_len() const {
  const std::vector<int64_t>& ar_lens = artifact_->program().metadata.ar_lengths;
  return ar_lens.empty() ? 0 : ar_lens.front();
}

runtime::RunReport Engine::blank_report() const {
  runtime::RunReport report;
  report.model_name = model_name();
  report.simd_target = kernels::simd_target_name();
  report.integer_kernels = kernels::exact_path_name();
  report.weights_memory = artifact::residence_name(artifact_->residence());
  report.threads = model_->threads();
  report.verify_seconds = verify_seconds_;
  report.plan_seconds = plan_seconds_;
  const std::vector<int64_t>& ar_lens = info().ar_lens;
  const runtime::BindingCounts counts = model_->binding_counts(
      ar_lens.empty() ? 1 : *std::min_element(ar_lens.begin(), ar_lens.end()));
  report.io_bindings_in = counts.inputs;
  report.io_bindings_out = counts.outputs;
  return report;
}

Result<std::optional<tokenizer::ChatTemplate>> Engine::chat_template(PromptFormat format,
                                                                     bool plain_fallback) const {
  switch (format) {
    case PromptFormat::kPlain: return std::optional<tokenizer::ChatTemplate>();
    case PromptFormat::kChatMl: return std::optional(tokenizer::ChatTemplate::kChatMl);
    case PromptFormat::kLlama3: return std::optional(tokenizer::ChatTemplate::kLlama3);
    case PromptFormat::kAuto: break;
  }
  auto detected = tokenizer::detect_chat_template(tokenizer_->data().chat_template);
  if (detected.ok()) return std::optional(*detected);
  if (plain_fallback) return std::optional<tokenizer::ChatTemplate>();
  return std::move(detected).error().with_context(
      fmt::format("{}: the artifact's tokenizer has no usable chat template (pass --chat-template "
                  "chatml|llama3)",
                  path_));
}

Result<runtime::RunReport> Engine::generate(std::string_view prompt, const GenerateOptions& options,
                                            const TextCallback& on_text) {
  HS_ASSIGN_OR_RETURN(const std::optional<tokenizer::ChatTemplate> chat,
                      chat_template(options.format, /*plain_fallback=*/false));
  std::string text(prompt);
  bool add_bos = true;
  if (chat) {
    std::optional<std::string_view> system;
    if (!options.system_prompt.empty()) system = options.system_prompt;
    text = tokenizer::apply_chat_template(*chat, prompt, system);
    add_bos = !tokenizer::chat_template_adds_bos(*chat);
  }
  const std::vector<int32_t> ids = tokenizer_->encode(text, add_bos, chat.has_value());
  if (ids.empty()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: the prompt is empty and the vocabulary has no BOS token to start from",
                  path_);
  }
  HS_ASSIGN_OR_RETURN(runtime::RunReport report, generate_tokens(ids, options, on_text));
  report.prompt_text = std::move(text);
  return report;
}

Result<runtime::RunReport> Engine::generate_tokens(std::span<const int32_t> prompt,
                                                   const GenerateOptions& options,
                                                   const TextCallback& on_text) {
  HS_ASSIGN_OR_RETURN(runner::Sampler sampler, runner::Sampler::create(options.sampler));
  runtime::RunReport report = blank_report();
  report.prompt_tokens = static_cast<int64_t>(prompt.size());
  runner::Generator generator(*model_, *tokenizer_);
  const runner::GeneratorOptions generation{.max_new_tokens = options.max_new_tokens,
                                            .prefill_ar_len = prefill_ar_len(),
                                            .lookahead = options.lookahead};
  HS_ASSIGN_OR_RETURN(report.generation, generator.generate(prompt, sampler, generation,
                                                            [&](int32_t, std::string_view piece) {
                                                              report.text.append(piece);
                                                              if (on_text) on_text(piece);
                                                            }));
  report.generation.stats.load_seconds = load_seconds_;
  return report;
}

Result<std::unique_ptr<Chat>> Engine::chat(const ChatOptions& options) {
  runner::ChatOptions chat;
  HS_ASSIGN_OR_RETURN(chat.chat_template, chat_template(options.format, /*plain_fallback=*/true));
  if (!options.system_prompt.empty()) chat.system = options.system_prompt;
  chat.generation = {.max_new_tokens = options.max_new_tokens,
                     .prefill_ar_len = prefill_ar_len(),
                     .lookahead = options.lookahead};
  chat.on_full = options.on_full;
  HS_ASSIGN_OR_RETURN(runner::Sampler sampler, runner::Sampler::create(options.sampler));
  HS_ASSIGN_OR_RETURN(runner::ChatSession session,
                      runner::ChatSession::create(*model_, *tokenizer_, chat));
  return std::unique_ptr<Chat>(new Chat(std::move(session), std::move(sampler)));
}

Result<runner::TurnResult> Chat::send(std::string_view message, const TextCallback& on_text) {
  return session_.send(message, sampler_, [&](int32_t, std::string_view piece) {
    if (on_text) on_text(piece);
  });
}

std::string_view Chat::format_name() const {
  const auto& t = session_.options().chat_template;
  return t ? tokenizer::chat_template_name(*t) : std::string_view("plain text");
}

}  // namespace hs::engine

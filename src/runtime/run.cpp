// run_artifact: load + verify, plan, tokenize (with an optional chat template), generate with
// the runner, and the llama.cpp-style stats in text and one-line JSON.
#include "headsplit/runtime/run.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "headsplit/artifact/reader.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/tokenizer/chat.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::runtime {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The prompt text and whether BOS is still to be added, after the chat template.
Result<std::pair<std::string, bool>> prompt_text(const RunOptions& options,
                                                 const tokenizer::Tokenizer& tok,
                                                 const std::string& path) {
  if (options.chat == ChatMode::kNone) return std::pair{options.prompt, true};
  tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::kChatMl;
  if (options.chat == ChatMode::kLlama3) chat = tokenizer::ChatTemplate::kLlama3;
  if (options.chat == ChatMode::kAuto) {
    auto detected = tokenizer::detect_chat_template(tok.data().chat_template);
    if (!detected.ok()) {
      return std::move(detected).error().with_context(fmt::format(
          "{}: the artifact's tokenizer has no usable chat template (pass --chat-template "
          "chatml|llama3)",
          path));
    }
    chat = *detected;
  }
  std::optional<std::string_view> system;
  if (!options.system_prompt.empty()) system = options.system_prompt;
  return std::pair{tokenizer::apply_chat_template(chat, options.prompt, system),
                   !tokenizer::chat_template_adds_bos(chat)};
}

// A JSON string literal's contents.
std::string json_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<RunReport> run_artifact(const RunOptions& options, const TextCallback& on_text) {
  RunReport report;
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(
      artifact::LoadedArtifact loaded,
      artifact::load_artifact(options.model_path, {.verify_checksum = options.verify_checksum}));
  auto artifact = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
  report.verify_seconds = seconds_since(start);
  const auto plan_start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(auto tokenizer, tokenizer::Tokenizer::create(artifact->program().tokenizer));
  HS_ASSIGN_OR_RETURN(auto model, ArtifactStepModel::create(artifact, {.threads = options.threads}));
  report.plan_seconds = seconds_since(plan_start);
  HS_ASSIGN_OR_RETURN(runner::Sampler sampler, runner::Sampler::create(options.sampler));
  const double load_seconds = seconds_since(start);

  report.model_name = artifact->program().metadata.model_name;
  report.simd_target = kernels::simd_target_name();
  report.threads = model->threads();
  const BindingCounts counts = model->binding_counts(model->info().ar_lens.empty()
                                                         ? 1
                                                         : *std::min_element(
                                                               model->info().ar_lens.begin(),
                                                               model->info().ar_lens.end()));
  report.io_bindings_in = counts.inputs;
  report.io_bindings_out = counts.outputs;

  HS_ASSIGN_OR_RETURN(auto text, prompt_text(options, *tokenizer, options.model_path));
  report.prompt_text = text.first;
  const bool parse_special = options.chat != ChatMode::kNone;
  const std::vector<int32_t> prompt = tokenizer->encode(text.first, text.second, parse_special);
  if (prompt.empty()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: the prompt is empty and the vocabulary has no BOS token to start from",
                  options.model_path);
  }
  report.prompt_tokens = static_cast<int64_t>(prompt.size());
  runner::Generator generator(*model, *tokenizer);
  HS_ASSIGN_OR_RETURN(report.generation,
                      generator.generate(prompt, sampler, {.max_new_tokens = options.max_new_tokens},
                                         [&](int32_t, std::string_view piece) {
                                           report.text.append(piece);
                                           if (on_text) on_text(piece);
                                         }));
  report.generation.stats.load_seconds = load_seconds;
  return report;
}

std::string format_run_stats(const RunReport& r) {
  const runner::GenerationStats& s = r.generation.stats;
  std::string out;
  out += fmt::format("load:                 {:10.2f} ms  (verify {:.2f} ms, plan {:.2f} ms)\n",
                     s.load_seconds * 1e3, r.verify_seconds * 1e3, r.plan_seconds * 1e3);
  out += fmt::format("prompt eval: {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s  (ar length {})\n",
                     s.prompt_tokens, s.prefill_seconds * 1e3, s.prefill_tokens_per_second(),
                     r.generation.prefill_ar_len);
  out += fmt::format("eval:        {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s  (ar length {})\n",
                     s.decode_steps, s.decode_seconds * 1e3, s.decode_tokens_per_second(),
                     r.generation.decode_ar_len);
  out += fmt::format("time to first token:  {:10.2f} ms\n", s.first_token_seconds * 1e3);
  out += fmt::format("generated:   {:6d} tokens (stop: {})\n", s.generated_tokens,
                     runner::stop_reason_name(r.generation.stop));
  out += fmt::format("system:      SIMD {}, {} thread{}, {} graph inputs / {} outputs bound per step\n",
                     r.simd_target, r.threads, r.threads == 1 ? "" : "s", r.io_bindings_in,
                     r.io_bindings_out);
  if (r.generation.max_new_tokens < r.generation.requested_new_tokens) {
    out += fmt::format(
        "note: {} new tokens requested, clamped to {}: prompt + new tokens must fit the context\n",
        r.generation.requested_new_tokens, r.generation.max_new_tokens);
  }
  return out;
}

std::string format_run_stats_json(const RunReport& r) {
  const runner::GenerationStats& s = r.generation.stats;
  return fmt::format(
      "{{\"model\": \"{}\", \"load_ms\": {:.3f}, \"verify_ms\": {:.3f}, \"plan_ms\": {:.3f}, "
      "\"prompt_tokens\": {}, \"prompt_ms\": {:.3f}, \"prompt_tokens_per_s\": {:.2f}, "
      "\"decode_tokens\": {}, \"decode_ms\": {:.3f}, \"decode_tokens_per_s\": {:.2f}, "
      "\"first_token_ms\": {:.3f}, \"generated_tokens\": {}, \"stop\": \"{}\", "
      "\"prefill_ar_len\": {}, \"decode_ar_len\": {}, \"simd\": \"{}\", \"threads\": {}, "
      "\"io_inputs\": {}, \"io_outputs\": {}}}",
      json_escape(r.model_name), s.load_seconds * 1e3, r.verify_seconds * 1e3, r.plan_seconds * 1e3,
      s.prompt_tokens, s.prefill_seconds * 1e3, s.prefill_tokens_per_second(), s.decode_steps,
      s.decode_seconds * 1e3, s.decode_tokens_per_second(), s.first_token_seconds * 1e3,
      s.generated_tokens, runner::stop_reason_name(r.generation.stop),
      r.generation.prefill_ar_len, r.generation.decode_ar_len, r.simd_target, r.threads,
      r.io_bindings_in, r.io_bindings_out);
}

}  // namespace hs::runtime

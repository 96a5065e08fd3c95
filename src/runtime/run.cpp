// The llama.cpp-style stats of a RunReport, in text and one-line JSON.
#include "headsplit/runtime/run.h"

#include <fmt/format.h>

namespace hs::runtime {

namespace {

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

std::string format_run_stats(const RunReport& r) {
  const runner::GenerationStats& s = r.generation.stats;
  std::string out;
  out += fmt::format(
      "load:                 {:10.2f} ms  (read and verify {:.2f} ms, plan {:.2f} ms; weights {})\n",
      s.load_seconds * 1e3, r.verify_seconds * 1e3, r.plan_seconds * 1e3, r.weights_memory);
  out += fmt::format("prompt eval: {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s  (ar length {})\n",
                     s.prompt_tokens, s.prefill_seconds * 1e3, s.prefill_tokens_per_second(),
                     r.generation.prefill_ar_len);
  out += fmt::format("eval:        {:6d} tokens, {:10.2f} ms, {:10.2f} tok/s  (ar length {})\n",
                     s.decode_tokens, s.decode_seconds * 1e3, s.decode_tokens_per_second(),
                     r.generation.decode_ar_len);
  const std::string lookahead = runner::lookahead_summary(r.generation);
  if (!lookahead.empty()) out += fmt::format("lookahead:   {}\n", lookahead);
  out += fmt::format("time to first token:  {:10.2f} ms\n", s.first_token_seconds * 1e3);
  out += fmt::format("generated:   {:6d} tokens (stop: {})\n", s.generated_tokens,
                     runner::stop_reason_name(r.generation.stop));
  out += fmt::format("system:      SIMD {} (integer matmuls {}), {} thread{}, {} graph inputs / {} "
                     "outputs bound per step\n",
                     r.simd_target, r.integer_kernels, r.threads, r.threads == 1 ? "" : "s",
                     r.io_bindings_in, r.io_bindings_out);
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
      "\"decode_steps\": {}, \"lookahead_ar_len\": {}, \"lookahead_steps\": {}, "
      "\"lookahead_tokens\": {}, \"lookahead_tokens_per_step\": {:.3f}, "
      "\"first_token_ms\": {:.3f}, \"generated_tokens\": {}, \"stop\": \"{}\", "
      "\"prefill_ar_len\": {}, \"decode_ar_len\": {}, \"simd\": \"{}\", "
      "\"integer_kernels\": \"{}\", \"weights_memory\": \"{}\", \"threads\": {}, "
      "\"io_inputs\": {}, \"io_outputs\": {}}}",
      json_escape(r.model_name), s.load_seconds * 1e3, r.verify_seconds * 1e3, r.plan_seconds * 1e3,
      s.prompt_tokens, s.prefill_seconds * 1e3, s.prefill_tokens_per_second(), s.decode_tokens,
      s.decode_seconds * 1e3, s.decode_tokens_per_second(), s.decode_steps,
      r.generation.lookahead_ar_len, s.lookahead_steps, s.lookahead_tokens,
      s.lookahead_tokens_per_step(), s.first_token_seconds * 1e3, s.generated_tokens,
      runner::stop_reason_name(r.generation.stop), r.generation.prefill_ar_len,
      r.generation.decode_ar_len, r.simd_target, r.integer_kernels, r.weights_memory, r.threads,
      r.io_bindings_in, r.io_bindings_out);
}

}  // namespace hs::runtime

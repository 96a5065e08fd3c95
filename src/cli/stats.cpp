// print_generation_stats: the llama.cpp-style timing block shared by `generate` and `run`.
#include <cstdio>
#include <string>

#include "headsplit/cli/commands.h"

namespace hs::cli {

void print_generation_stats(const runner::GenerationResult& result, std::FILE* out) {
  const runner::GenerationStats& s = result.stats;
  std::fprintf(out, "load:                 %10.2f ms\n", s.load_seconds * 1e3);
  std::fprintf(out, "prompt eval: %6lld tokens, %10.2f ms, %10.2f tok/s  (ar length %lld)\n",
               static_cast<long long>(s.prompt_tokens), s.prefill_seconds * 1e3,
               s.prefill_tokens_per_second(), static_cast<long long>(result.prefill_ar_len));
  std::fprintf(out, "eval:        %6lld tokens, %10.2f ms, %10.2f tok/s  (ar length %lld)\n",
               static_cast<long long>(s.decode_tokens), s.decode_seconds * 1e3,
               s.decode_tokens_per_second(), static_cast<long long>(result.decode_ar_len));
  const std::string lookahead = runner::lookahead_summary(result);
  if (!lookahead.empty()) std::fprintf(out, "lookahead:   %s\n", lookahead.c_str());
  std::fprintf(out, "time to first token:  %10.2f ms\n", s.first_token_seconds * 1e3);
  std::fprintf(out, "generated:   %6lld tokens (stop: %s)\n",
               static_cast<long long>(s.generated_tokens),
               std::string(runner::stop_reason_name(result.stop)).c_str());
  if (result.max_new_tokens < result.requested_new_tokens) {
    std::fprintf(out,
                 "note: %lld new tokens requested, clamped to %lld: prompt + new tokens must fit "
                 "the context\n",
                 static_cast<long long>(result.requested_new_tokens),
                 static_cast<long long>(result.max_new_tokens));
  }
}

}  // namespace hs::cli

// Generator: the hybrid prefill (AR-N) + decode (AR-T_d, or lookahead) loop over a Decoder
// (reference §9.5).
#include "headsplit/runner/generator.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

namespace hs::runner {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Status check_request(const Decoder& decoder, std::span<const int32_t> tokens,
                     const GeneratorOptions& options) {
  const StepModelInfo& info = decoder.info();
  if (tokens.empty()) return errorf(ErrorKind::kInvalidArgument, "generate: the prompt is empty");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= info.vocab_size) {
      return errorf(ErrorKind::kInvalidArgument,
                    "generate: prompt token {} has id {}, outside the vocabulary [0, {})", i,
                    tokens[i], info.vocab_size);
    }
  }
  if (options.max_new_tokens < 0) {
    return errorf(ErrorKind::kInvalidArgument, "generate: max_new_tokens must be >= 0, got {}",
                  options.max_new_tokens);
  }
  if (options.lookahead.enabled() && decoder.lookahead_ar_len() == 0) {
    return Error(ErrorKind::kInvalidArgument,
                 "generate: lookahead needs a decoder created with a lookahead ar length");
  }
  const auto n = static_cast<int64_t>(tokens.size());
  if (n > decoder.prefill_room()) {
    const int64_t c = decoder.context_len(), big_n = decoder.prefill_ar_len();
    if (decoder.n_past() == 0) {
      return errorf(ErrorKind::kInvalidArgument,
                    "generate: a prompt of {} tokens (+{} requested new tokens) does not fit the "
                    "context of {}: prefill with ar length {} has {} cache slots",
                    n, options.max_new_tokens, c, big_n, c - big_n);
    }
    return errorf(ErrorKind::kInvalidArgument,
                  "generate: {} new tokens after the {} stored ones do not fit the context of "
                  "{}: prefill with ar length {} has {} cache slots",
                  n, decoder.n_past(), c, big_n, c - big_n);
  }
  return ok_status();
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens: return "max tokens";
    case StopReason::kEos: return "eos";
    case StopReason::kContextFull: return "context full";
  }
  return "unknown";
}

double GenerationStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0.0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerationStats::decode_tokens_per_second() const {
  return decode_seconds > 0.0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0;
}

double GenerationStats::lookahead_tokens_per_step() const {
  return lookahead_steps > 0
             ? static_cast<double>(lookahead_tokens) / static_cast<double>(lookahead_steps)
             : 0.0;
}

std::string lookahead_summary(const GenerationResult& r) {
  const GenerationStats& s = r.stats;
  if (s.lookahead_steps == 0) return "";
  return fmt::format("{} steps at ar length {} (N={} W={} G={}): {} tokens, {:.2f} tokens/step",
                     s.lookahead_steps, r.lookahead_ar_len, r.lookahead.ngram, r.lookahead.window,
                     r.lookahead.guesses, s.lookahead_tokens, s.lookahead_tokens_per_step());
}

Result<DecoderOptions> decoder_options(const StepModelInfo& info, const GeneratorOptions& options) {
  DecoderOptions d{.prefill_ar_len = options.prefill_ar_len,
                   .decode_ar_len = options.decode_ar_len,
                   .pad_token = options.pad_token};
  if (options.lookahead.enabled()) {
    HS_ASSIGN_OR_RETURN(d.lookahead_ar_len, lookahead_ar_len(info, options.lookahead));
  }
  return d;
}

Result<GenerationResult> Generator::generate(std::span<const int32_t> prompt, Sampler& sampler,
                                             const GeneratorOptions& options,
                                             const TokenCallback& on_token) {
  HS_ASSIGN_OR_RETURN(const DecoderOptions decoder_opts, decoder_options(model_.info(), options));
  HS_ASSIGN_OR_RETURN(Decoder decoder, Decoder::create(model_, decoder_opts));
  return generate(decoder, prompt, sampler, options, on_token);
}

Result<GenerationResult> Generator::generate(Decoder& decoder, std::span<const int32_t> tokens,
                                             Sampler& sampler, const GeneratorOptions& options,
                                             const TokenCallback& on_token) {
  const Clock::time_point start = Clock::now();
  HS_TRY(check_request(decoder, tokens, options));
  const auto n_new = static_cast<int64_t>(tokens.size());
  const int64_t n = decoder.n_past() + n_new;
  const int64_t m =
      std::min(options.max_new_tokens, decoder.context_len() - decoder.decode_ar_len() + 1 - n);

  GenerationResult result;
  result.requested_new_tokens = options.max_new_tokens;
  result.max_new_tokens = m;
  result.prefill_ar_len = decoder.prefill_ar_len();
  result.decode_ar_len = decoder.decode_ar_len();
  result.lookahead_ar_len = options.lookahead.enabled() ? decoder.lookahead_ar_len() : 0;
  if (options.lookahead.enabled()) result.lookahead = options.lookahead;
  result.start_position = decoder.n_past();
  GenerationStats& stats = result.stats;
  stats.prompt_tokens = n_new;

  // Prefill: ceil(n_new / N) chunks from position n_past.
  HS_TRY(decoder.prefill(tokens));
  stats.prefill_steps = (n_new + decoder.prefill_ar_len() - 1) / decoder.prefill_ar_len();
  if (m == 0) {
    stats.prefill_seconds = seconds_since(start);
    return result;
  }
  int32_t prev = tokens.back();
  int32_t next = sampler.sample(decoder.last_logits());
  stats.prefill_seconds = seconds_since(start);
  stats.first_token_seconds = stats.prefill_seconds;

  // Emits `token` unless it ends generation; returns false to stop.
  auto emit = [&](int32_t token) {
    if (tokenizer_.is_eos(token)) {
      result.stop = StopReason::kEos;
      return false;
    }
    result.tokens.push_back(token);
    if (on_token) on_token(token, tokenizer_.decode_token(prev, token));
    prev = token;
    if (static_cast<int64_t>(result.tokens.size()) < m) return true;
    result.stop = m < options.max_new_tokens ? StopReason::kContextFull : StopReason::kMaxTokens;
    return false;
  };

  const Clock::time_point decode_start = Clock::now();
  bool more = emit(next);
  if (more && options.lookahead.enabled()) {
    LookaheadDecoder lookahead(options.lookahead, tokens);
    HS_ASSIGN_OR_RETURN(more, lookahead.run(decoder, sampler, next, emit));
    stats.lookahead_steps = lookahead.stats().steps;
    stats.lookahead_tokens = lookahead.stats().tokens;
  }
  // Decode: feed the last token at position n_past, one per step at AR length T_d.
  int64_t plain_steps = 0;
  while (more) {
    HS_TRY(decoder.decode(next));
    ++plain_steps;
    next = sampler.sample(decoder.last_logits());
    more = emit(next);
  }
  stats.decode_steps = plain_steps + stats.lookahead_steps;
  stats.decode_tokens = plain_steps + stats.lookahead_tokens;
  stats.decode_seconds = seconds_since(decode_start);
  stats.generated_tokens = static_cast<int64_t>(result.tokens.size());
  return result;
}

}  // namespace hs::runner

// The generation loop (reference §9.5, hybrid mode): prefill the prompt with the AR-N graph in
// chunks, then decode one token per step with the smallest AR length (or several per step with
// lookahead decoding, runner/lookahead.h), sharing one KvManager (runner/decoder.h).
//
//   prefill: rearrange to N; mask causal with n_past = 0; for each of ceil(n/N) chunks: tokens
//            (past the prompt: padding), positions pos+i; step; update the cache with
//            n_update = N (last chunk: 1 + (n-1) % N); unmask; pos += n_update. Sample the
//            first token from logits row (n-1) % N of the last chunk.
//   decode:  rearrange to T_d; mask causal with n_past = n; per step: feed the last token at
//            position pos, update 1 slot, unmask, sample from row 0.
//   lookahead (when enabled): instead of decode while whole lookahead steps fit, then decode.
//   stop:    max_new_tokens reached, EOS (Tokenizer::is_eos; not emitted), or context full.
//
// A generation can continue an existing Decoder (multi-turn chat): the new tokens are prefilled
// from position n_past and the same bounds apply with n = n_past + new tokens.
//
// Context bound (checked before anything runs). Every token fed to the model has its K/V
// stored in cache slot = its position, and a step of AR length T has P = C - T slots:
//   prompt:  n <= C - N                     (the prompt's slots at prefill)
//   decode:  the fed positions n .. n+m-2 must be < C - T_d, i.e. n + m <= C - T_d + 1
// A prompt that breaks the first rule is a kInvalidArgument error. A request for more new
// tokens than the second rule allows is clamped (GenerationResult::max_new_tokens), and the
// run then ends with StopReason::kContextFull. Lookahead steps run while a whole step's N slots
// fit in C - T_la; the rest is decoded one token at a time, so the bound is the same.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "headsplit/runner/decoder.h"
#include "headsplit/runner/lookahead.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::runner {

struct GeneratorOptions {
  int64_t max_new_tokens = 256;  // m; 0 runs the prefill only (calibration)
  int64_t prefill_ar_len = 0;    // N; 0: the largest AR length of the model
  int64_t decode_ar_len = 0;     // T_d; 0: the smallest AR length of the model (<= N)
  int32_t pad_token = 0;         // fills the rows of a chunk past the prompt
  LookaheadOptions lookahead;    // off unless lookahead.ngram > 0
};

// The decoder AR lengths for `options` (lookahead: lookahead_ar_len), or its errors.
Result<DecoderOptions> decoder_options(const StepModelInfo& info, const GeneratorOptions& options);

enum class StopReason : uint8_t {
  kMaxTokens,    // generated max_new_tokens (as requested)
  kEos,          // the model produced an end-of-generation token
  kContextFull,  // the clamped limit was reached: no cache slot for another token
};

std::string_view stop_reason_name(StopReason reason);  // "max tokens", "eos", "context full"

// Timings and counts, like llama.cpp's: prompt eval and decode rates, time to first token.
struct GenerationStats {
  int64_t prompt_tokens = 0;         // n
  int64_t prefill_steps = 0;         // ceil(n / N) model runs
  int64_t generated_tokens = 0;      // tokens returned (EOS excluded)
  int64_t decode_steps = 0;          // model runs after the prefill (lookahead steps included)
  int64_t decode_tokens = 0;         // tokens those runs sampled and stored (1 per plain step)
  int64_t lookahead_steps = 0;       // runs of the lookahead graph (part of decode_steps)
  int64_t lookahead_tokens = 0;      // tokens they produced: 1 + accepted guesses per step
  double load_seconds = 0.0;         // filled by the caller (model load + graph build)
  double prefill_seconds = 0.0;      // prefill runs, cache updates, first-token sampling
  double decode_seconds = 0.0;       // decode runs, cache updates, sampling, callbacks
  double first_token_seconds = 0.0;  // from generate() start to the first token

  double prefill_tokens_per_second() const;  // prompt_tokens / prefill_seconds (0 if none)
  double decode_tokens_per_second() const;   // decode_tokens / decode_seconds (0 if none)
  double lookahead_tokens_per_step() const;  // lookahead_tokens / lookahead_steps (0 if none)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, without the prompt and without EOS
  StopReason stop = StopReason::kMaxTokens;
  int64_t requested_new_tokens = 0;
  int64_t max_new_tokens = 0;  // after clamping to the context
  int64_t prefill_ar_len = 0;  // N used
  int64_t decode_ar_len = 0;   // T_d used
  int64_t lookahead_ar_len = 0;  // T_la used (0: no lookahead)
  LookaheadOptions lookahead;    // N, W, G used (ngram 0: no lookahead)
  int64_t start_position = 0;    // n_past before the prompt (0 unless continuing a decoder)
  GenerationStats stats;
};

// The lookahead line of a stats block, e.g. "70 steps at ar length 32 (N=3 W=8 G=8): 199 tokens,
// 2.84 tokens/step"; empty when the generation ran no lookahead step.
std::string lookahead_summary(const GenerationResult& result);

// Called for every generated token with its text (Tokenizer::decode_token(prev, token)).
using TokenCallback = std::function<void(int32_t token, std::string_view text)>;

class Generator {
 public:
  // Both must outlive the generator.
  Generator(StepModel& model, const tokenizer::Tokenizer& tokenizer)
      : model_(model), tokenizer_(tokenizer) {}

  // Runs prompt + generation. `prompt` holds token ids (BOS included when wanted), n >= 1.
  // Errors: empty prompt or ids outside [0, V), AR lengths the model lacks or N < T_d,
  // a prompt that does not fit (message names the prompt length, the requested tokens and
  // the context), and any error of the step model.
  Result<GenerationResult> generate(std::span<const int32_t> prompt, Sampler& sampler,
                                    const GeneratorOptions& options,
                                    const TokenCallback& on_token = nullptr);
  // Continues `decoder` (created on this generator's model, holding n_past tokens): prefills
  // `tokens` from position n_past, then generates. The decoder's AR lengths are used (options'
  // prefill/decode lengths are ignored); lookahead needs a decoder with a lookahead graph. On
  // return the decoder holds everything fed: the new tokens and every generated token but the
  // last one (which was sampled, not fed).
  Result<GenerationResult> generate(Decoder& decoder, std::span<const int32_t> tokens,
                                    Sampler& sampler, const GeneratorOptions& options,
                                    const TokenCallback& on_token = nullptr);

 private:
  StepModel& model_;
  const tokenizer::Tokenizer& tokenizer_;
};

}  // namespace hs::runner

// The generation loop (reference §9.5, hybrid mode): prefill the prompt with the AR-N graph in
// chunks, then decode one token per step with the smallest AR length, sharing one KvManager.
//
//   prefill: rearrange to N; mask causal with n_past = 0; for each of ceil(n/N) chunks: tokens
//            (past the prompt: padding), positions pos+i; step; update the cache with
//            n_update = N (last chunk: 1 + (n-1) % N); unmask; pos += n_update. Sample the
//            first token from logits row (n-1) % N of the last chunk.
//   decode:  rearrange to T_d; mask causal with n_past = n; per step: feed the last token at
//            position pos, update 1 slot, unmask, sample from row 0.
//   stop:    max_new_tokens reached, EOS (Tokenizer::is_eos; not emitted), or context full.
//
// Context bound (checked before anything runs). Every token fed to the model has its K/V
// stored in cache slot = its position, and a step of AR length T has P = C - T slots:
//   prompt:  n <= C - N                     (the prompt's slots at prefill)
//   decode:  the fed positions n .. n+m-2 must be < C - T_d, i.e. n + m <= C - T_d + 1
// A prompt that breaks the first rule is a kInvalidArgument error. A request for more new
// tokens than the second rule allows is clamped (GenerationResult::max_new_tokens), and the
// run then ends with StopReason::kContextFull.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

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
};

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
  int64_t decode_steps = 0;          // model runs at the decode AR length
  double load_seconds = 0.0;         // filled by the caller (model load + graph build)
  double prefill_seconds = 0.0;      // prefill runs, cache updates, first-token sampling
  double decode_seconds = 0.0;       // decode runs, cache updates, sampling, callbacks
  double first_token_seconds = 0.0;  // from generate() start to the first token

  double prefill_tokens_per_second() const;  // prompt_tokens / prefill_seconds (0 if none)
  double decode_tokens_per_second() const;   // decode_steps / decode_seconds (0 if none)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, without the prompt and without EOS
  StopReason stop = StopReason::kMaxTokens;
  int64_t requested_new_tokens = 0;
  int64_t max_new_tokens = 0;  // after clamping to the context
  int64_t prefill_ar_len = 0;  // N used
  int64_t decode_ar_len = 0;   // T_d used
  GenerationStats stats;
};

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

 private:
  StepModel& model_;
  const tokenizer::Tokenizer& tokenizer_;
};

}  // namespace hs::runner

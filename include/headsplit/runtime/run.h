// run_artifact: the whole `headsplit run` job as one library call: load and verify an artifact,
// plan its graphs, tokenize the prompt (optionally through a chat template), generate with the
// runner (hybrid prefill/decode, SmartMask KV cache in the caches' quantized form, sampler,
// EOS) and report the text and llama.cpp-style stats. Used by the `run` and `demo` commands.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "headsplit/runner/generator.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/support/result.h"

namespace hs::runtime {

enum class ChatMode : uint8_t {
  kNone,    // the prompt is plain text
  kAuto,    // wrap the prompt in the chat template the artifact's tokenizer stores
  kChatMl,  // wrap it in ChatML
  kLlama3,  // wrap it in the Llama-3 template
};

struct RunOptions {
  std::string model_path;  // the .hsa file
  std::string prompt;      // text (empty: generate from BOS)
  int64_t max_new_tokens = 256;
  runner::SamplerOptions sampler;  // greedy by default
  int threads = 0;                 // 0: every hardware thread
  bool verify_checksum = true;     // hash the whole file at load
  ChatMode chat = ChatMode::kNone;
  std::string system_prompt;  // chat modes only; empty: the template's default
};

// What a run did. Timings are in `generation.stats` (load_seconds filled in).
struct RunReport {
  std::string model_name;   // from the artifact metadata
  std::string prompt_text;  // the text that was tokenized (after the chat template)
  int64_t prompt_tokens = 0;
  std::string text;  // generated text (EOS not included)
  runner::GenerationResult generation;
  std::string simd_target;  // "AVX2", ...
  int threads = 0;
  double verify_seconds = 0.0;  // part of load: mapping, checksum and program checks
  double plan_seconds = 0.0;    // part of load: kernel selection and arena allocation
  int64_t io_bindings_in = 0;   // graph inputs bound per step of the decode graph
  int64_t io_bindings_out = 0;  // graph outputs bound per step of the decode graph
};

// Called with each piece of generated text as soon as it is decoded.
using TextCallback = std::function<void(std::string_view text)>;

// Runs the job. Errors: the artifact does not load or plan (its error, naming the file), an
// invalid sampler option, a prompt that does not fit the context, a chat template the
// artifact does not have, any step error.
Result<RunReport> run_artifact(const RunOptions& options, const TextCallback& on_text = nullptr);

// The stats block, like llama.cpp's (load, prompt eval, eval, time to first token, SIMD target,
// threads), one line per item, ending in a newline.
std::string format_run_stats(const RunReport& report);
// The same as one line of JSON (no trailing newline): {"model": ..., "load_ms": ..., ...}.
std::string format_run_stats_json(const RunReport& report);

}  // namespace hs::runtime

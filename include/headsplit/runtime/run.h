// RunReport: what a generation on the runtime did — the text, the runner's result and stats, and
// the load figures — and its llama.cpp-style stats block (text and one-line JSON). The engine
// (engine/engine.h: load an artifact, generate, chat) fills it; `run` and `demo` print it.
#pragma once

#include <cstdint>
#include <string>

#include "headsplit/runner/generator.h"

namespace hs::runtime {

// What a run did. Timings are in `generation.stats` (load_seconds filled in).
struct RunReport {
  std::string model_name;   // from the artifact metadata
  std::string prompt_text;  // the text that was tokenized (after the chat template)
  int64_t prompt_tokens = 0;
  std::string text;  // generated text (EOS not included)
  runner::GenerationResult generation;
  std::string simd_target;  // "AVX2", ...
  std::string integer_kernels;  // the exact integer path's kernels: "AVX2 int16", ... (qgemm.h)
  int threads = 0;
  std::string weights_memory;   // where the artifact lives: "huge pages" or "mapped"
  double verify_seconds = 0.0;  // part of load: reading or mapping, checksum and program checks
  double plan_seconds = 0.0;    // part of load: kernel selection and arena allocation
  int64_t io_bindings_in = 0;   // graph inputs bound per step of the decode graph
  int64_t io_bindings_out = 0;  // graph outputs bound per step of the decode graph
};

// The stats block, like llama.cpp's (load, prompt eval, eval, time to first token, SIMD target,
// threads), one line per item, ending in a newline.
std::string format_run_stats(const RunReport& report);
// The same as one line of JSON (no trailing newline): {"model": ..., "load_ms": ..., ...}.
std::string format_run_stats_json(const RunReport& report);

}  // namespace hs::runtime

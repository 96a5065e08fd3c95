// Calibration: run the float graph(s) over text with the runner's SmartMask KV loop and record
// min/max ranges per value name.
//
// Text -> samples: every non-empty line of the calibration files is one sample, and the
// user's prompt is one more; each is encoded with BOS. A sample longer than the window
// W = C - N (N: the largest AR length, i.e. the prefill graph; the prompt bound of
// runner::Generator) is split into ceil(n / W) non-overlapping windows.
// Per window (KV caches cleared, SmartMask mask causal from slot 0):
//   prefill  the first w - d tokens in AR-N chunks (kv update + unmask after each)
//   decode   the last d tokens one per step on the AR-T_d graph (teacher forcing: the text's
//            next token, not a sampled one), d = min(decode_tokens, w - 1)
// so both graphs of a hybrid export see data. Values are keyed by name: the AR-N and AR-1
// graphs name every value the same, so one table serves both and they get identical params.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "headsplit/ir/interpreter.h"
#include "headsplit/quant/params.h"
#include "headsplit/quant/weight_search.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::irexec {
class GraphStepModel;
}  // namespace hs::irexec

namespace hs::ptq {

// Reads calibration text: every line of every file with non-whitespace content, then `prompt`
// when it is non-empty. kIo naming a file that cannot be read; kInvalidArgument when nothing
// is left ("empty calibration input: ..."), naming the files.
Result<std::vector<std::string>> calibration_texts(std::span<const std::string> files,
                                                   const std::string& prompt);

// Every non-empty line of a text file (the evaluation text); kIo naming the file.
Result<std::vector<std::string>> read_lines(const std::string& path);

// Encodes texts with BOS (as the runner encodes prompts). Texts that encode to nothing (no BOS
// in the vocabulary and no tokens) are dropped.
std::vector<std::vector<int32_t>> encode_texts(const tokenizer::Tokenizer& tokenizer,
                                               std::span<const std::string> texts);

// Non-overlapping windows of at most `window` tokens (window >= 1): ceil(n / window) of them.
std::vector<std::span<const int32_t>> split_windows(std::span<const int32_t> tokens,
                                                    int64_t window);

// Runs one window through `model` as described above, calling on_logits(position, row[V]) for
// every position fed (prefill rows past the window's end are padding and not reported).
// `decode_tokens` of the window's last tokens go through the smallest AR length.
// Errors: a window longer than C - N, tokens outside [0, V), and step errors.
struct WindowStats {
  int64_t prefill_tokens = 0, decode_tokens = 0, prefill_steps = 0, decode_steps = 0;
};
using LogitsCallback = std::function<void(int64_t position, std::span<const float> row)>;
Status run_window(runner::StepModel& model, std::span<const int32_t> window, int64_t decode_tokens,
                  const LogitsCallback& on_logits, WindowStats* stats = nullptr);

// The window length W = C - N of a step model.
int64_t window_length(const runner::StepModelInfo& info);

// The arithmetic of the projections (conv2d / linear with a constant weight) while
// calibrate_graphs runs KernelSet::kFast:
//   kBf16  bfloat16 operands, float32 sums (kernels/gemm_bf16.h: twice the multiply-adds per
//          instruction, half the weight bytes) on CPUs with AVX512_BF16; float32 elsewhere. Each
//          product is off by at most about 2^-8 relative, so the observed ranges move by that
//          order (the table is not bit-identical to kF32's). Capturing (SeqMSE / GPTQ inputs)
//          always runs float32.
//   kF32   float32 (gemm.h) everywhere.
enum class CalibrationPrecision : uint8_t { kBf16, kF32 };

struct CalibrationOptions {
  int64_t decode_tokens = 4;  // per window, through the decode graph (when there is one)
  CalibrationPrecision precision = CalibrationPrecision::kF32;
  bool progress = true;       // a progress line with rate and ETA on stderr
  // calibrate_graphs: the model's sliding window (graphs with a window_attention_mask, Gemma3).
  int64_t sliding_window = 0;
  // Projection inputs (value names, quant::find_projections) whose token rows are captured for
  // SeqMSE / GPTQ: the last token of each window always, every token with capture_all_tokens.
  // Padding rows of a prefill chunk are never captured.
  std::vector<std::string> capture;
  bool capture_all_tokens = false;
  // calibrate_graphs: windows run in parallel on this many threads (0: one per core on
  // machines of up to 4 cores, else 1; never more than the windows), each with its own step
  // model over the same graphs and its kernels on that thread only (with 1: the kernels on the
  // shared pool).
  // The table is the same as with 1 (min/max ranges do not depend on the window order).
  // Capturing (`capture`) always runs one model, its kernels on the shared pool.
  int threads = 0;
};

struct CalibrationStats {
  int64_t samples = 0;
  int64_t windows = 0;
  int64_t tokens = 0;  // prefill_tokens + decode_tokens
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t prefill_steps = 0;
  int64_t decode_steps = 0;
  bool bf16 = false;  // the projections ran in bfloat16 (CalibrationPrecision::kBf16 took effect)
  double seconds = 0.0;
  double tokens_per_second() const {
    return seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
  }
};

// Calibrates the float graphs of `model` (observers installed on every graph, removed after)
// over `samples` (token ids, BOS included). kInvalidArgument when `samples` is empty or has
// no token. `stats` (optional) receives counts and the wall time; `captured` (optional) the
// rows of options.capture (kInvalidArgument naming a value that no graph has, or that is not
// a conv2d input [1, I, 1, T] or a linear input [..., I]).
Result<quant::CalibrationTable> calibrate(irexec::GraphStepModel& model,
                                          std::span<const std::vector<int32_t>> samples,
                                          const CalibrationOptions& options,
                                          CalibrationStats* stats = nullptr,
                                          quant::ActivationSamples* captured = nullptr);

// Calibrates float step graphs (one per AR length, naming their values alike) together: one
// GraphStepModel over copies of them with `kernels`, then calibrate(). kFast changes the float
// summation order (kernels/gemm.h), which moves observed ranges by a few ulps: harmless for
// min/max observers. Errors: the step model's (graph I/O) and calibrate()'s.
Result<quant::CalibrationTable> calibrate_graphs(std::span<const ir::Graph> graphs,
                                                 std::span<const std::vector<int32_t>> samples,
                                                 const CalibrationOptions& options,
                                                 ir::KernelSet kernels,
                                                 CalibrationStats* stats = nullptr,
                                                 quant::ActivationSamples* captured = nullptr);

}  // namespace hs::ptq

// Accuracy of quantized models against the float model on text.
//
// Protocol. Each text (one line, BOS prepended) is cut into non-overlapping windows of
// W = C - N tokens (the prefill bound; N the prefill AR length) and every window runs from an
// empty KV cache with the SmartMask loop of calibrate.h (prefill in AR-N chunks, the last
// `decode_tokens` tokens on the decode graph). Within a window, the logits row at position p
// predicts the token at p + 1: positions 1..w-1 are scored, the first token of a window is not
// (no context). Over all scored predictions:
//   perplexity       exp(mean(-log softmax(row)[next token]))      (token level, natural log)
//   top-1 agreement  fraction of rows whose argmax equals the float model's argmax
//   logits SQNR      10 log10(sum float^2 / sum (float - quant)^2) dB over the same rows
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/frontend/builder.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/quant/scheme.h"
#include "headsplit/quant/weight_search.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::ptq {

struct EvalOptions {
  int64_t decode_tokens = 0;  // per window, through the decode graph (0: prefill logits only)
  bool progress = true;
};

struct ModelMetrics {
  std::string name;
  int64_t windows = 0;
  int64_t scored_tokens = 0;
  double nll_sum = 0.0;              // sum of -log p(next token)
  int64_t top1_matches = 0;          // rows whose argmax equals the reference's
  double signal_energy = 0.0;        // sum float logits^2
  double noise_energy = 0.0;         // sum (float - this)^2
  double calibration_seconds = 0.0;  // filled by the caller (0: none)
  double search_seconds = 0.0;       // SeqMSE / GPTQ (0: MinMax)
  double apply_seconds = 0.0;        // apply_quantization
  // What quantizing this model costs: calibration + weight search + apply.
  double export_seconds() const { return calibration_seconds + search_seconds + apply_seconds; }

  double perplexity() const;
  double top1_agreement() const;
  double sqnr_db() const;  // +inf when identical to the reference
};

// Evaluates every model on `texts` (token ids with BOS); models[0] is the reference (float).
// All models need the same context, AR lengths and vocabulary. Errors: no models or texts,
// mismatched models (kInvalidArgument naming the model), and step errors.
Result<std::vector<ModelMetrics>> evaluate(std::span<runner::StepModel* const> models,
                                           std::span<const std::string> names,
                                           std::span<const std::vector<int32_t>> texts,
                                           const EvalOptions& options);

// The whole comparison of `headsplit eval`: float, quantized MHA, quantized MHA + split
// (passes::run_preprocess) and quantized SHA from source (per-head caches, own calibration).
struct EvalRequest {
  frontend::BuildOptions build;  // context, r3, mask, projection (form and ar_len are set here)
  int64_t ar_len = 32;           // prefill N; a decode AR-1 graph is added when N > 1
  quant::QuantConfig config;
  std::vector<std::string> calibration_texts;
  std::vector<std::string> eval_texts;
  CalibrationOptions calibration;
  EvalOptions eval;
  ir::KernelSet kernels = ir::KernelSet::kFast;  // calibration and evaluation runs
  bool split = true;                             // include quantized MHA + split
  bool sha_from_source = true;                   // include quantized SHA from source
  // The weight search of the quantized models (quant/weight_search.h).
  quant::WeightSearchOptions search;
  // Side by side: when not empty, one quantized MHA model per method (named by it) after the
  // float one, all from one calibration, instead of MHA / MHA + split / SHA from source.
  struct Method {
    std::string name;
    quant::WeightSearchOptions search;
  };
  std::vector<Method> methods;
};

struct EvalReport {
  std::vector<ModelMetrics> models;  // float, quant MHA, [quant MHA+split], [quant SHA]
  int64_t window = 0;                // W = C - N
  int64_t eval_tokens = 0;           // tokens in the evaluation texts (BOS included)
  CalibrationStats mha_calibration;
  CalibrationStats sha_calibration;
  double split_seconds = 0.0;  // run_preprocess on the quantized graphs
};

Result<EvalReport> evaluate_quantization(const frontend::LlamaModel& model,
                                         const tokenizer::Tokenizer& tokenizer,
                                         const EvalRequest& request);

}  // namespace hs::ptq

// ONNX export of a prepared export (backend::prepare_export): one ONNX model per step graph
// (prefill AR-N, decode AR-1, lookahead), opset 21, QDQ form (docs/onnx.md).
//
//   DIR/prefill.onnx, DIR/decode.onnx   one model per graph, same I/O names and shapes as the
//                                       artifact (tokens, attention_mask, input_pos, k_cache.l,
//                                       v_cache.l -> logits, k_new.l, v_new.l)
//   DIR/weights.bin                     the weights, written once and shared by the models
//                                       (ONNX external data), when they exceed the threshold
//   DIR/tokenizer.json                  the tokenizer (pieces, scores, merges, special ids)
//   DIR/README.md                       the I/O and the SmartMask update the caller must do
//
// Every value with a quantized type becomes a QuantizeLinear/DequantizeLinear pair with its
// scale and zero point (u16 or u8 activations); quantized weights are integer initializers
// read by DequantizeLinear (int8 per-channel with `axis`, int4 blocked with `block_size`).
// Files are written under temporary names and renamed at the end: an error leaves no model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "headsplit/backend/export.h"
#include "headsplit/support/result.h"

namespace hs::onnx {

inline constexpr int64_t kOpsetVersion = 21;
inline constexpr int64_t kIrVersion = 10;  // the IR version of opset 21 (ONNX 1.16)

struct OnnxOptions {
  // Weights go to DIR/weights.bin (shared by the models) when their stored bytes exceed this;
  // below it every model holds its weights inline. 0: always external.
  int64_t external_threshold_bytes = int64_t{64} << 20;
  // Tensors smaller than this stay inline even when the weights are external.
  int64_t external_min_tensor_bytes = 1024;
  // Testing and debugging: every quantized intermediate is cut in two, so that each op runs on
  // given inputs: its QuantizeLinear result is a graph output "<name>/q" and its
  // DequantizeLinear reads a graph input "<name>/q_in" (op-by-op comparisons).
  bool isolate_ops = false;
};

struct OnnxGraphSummary {
  std::string name;  // "prefill", "decode"
  std::string file;  // "prefill.onnx"
  int64_t ar_len = 0;
  int64_t nodes = 0;
  int64_t quantize_nodes = 0, dequantize_nodes = 0;
  // Conv / MatMul projection nodes of layer 0's attention: 4 in MHA form, H + 2*Hkv + 1 split.
  int64_t attention_projections = 0;
  int64_t cache_inputs = 0, cache_outputs = 0;  // 2L each with per-layer caches
  int64_t file_bytes = 0;
};

struct OnnxSummary {
  std::string dir;
  std::vector<OnnxGraphSummary> graphs;
  bool external = false;     // weights in weights.bin
  int64_t weight_bytes = 0;  // bytes of weights.bin (0 when inline)
};

// Writes the prepared graphs as ONNX models into `dir` (created if missing; existing files of
// the same names are replaced). Errors: kIo naming the file, kUnsupported for a graph that has
// no ONNX form (an op or quantization ONNX cannot express, named).
Result<OnnxSummary> write_onnx(const backend::PreparedExport& prepared, const std::string& dir,
                               const OnnxOptions& options = {});

// The summary as text for people (one line per model, the weights file). Ends with a newline.
std::string format_onnx_summary(const OnnxSummary& summary);

}  // namespace hs::onnx

// GraphStepModel: static llama graphs (one per AR length, same weights) run by the reference
// interpreter, as a runner::StepModel. The runner's generation loop, and the quantizer's
// calibration (through observers), drive graphs with the same KV manager and SmartMask.
//
// Graph I/O: the step-I/O contract (opset/step_io.h), checked by opset::describe_step_io:
//   tokens i32[1,T], input_pos i32[1,T], attention_mask [1,T,C], logits [1,T,V]
//   (window_attention_mask [1,T,C] too with sliding-window layers: options.sliding_window)
//   per-layer caches: k_cache.{l} [1,Hkv,Dh,P], v_cache.{l} [1,Hkv,P,Dh],
//                     k_new.{l} [1,Hkv,Dh,T], v_new.{l} [1,Hkv,T,Dh]
//   per-head caches:  k_cache.{l}.{g} [1,1,Dh,P], v_cache.{l}.{g} [1,1,P,Dh], k_new.{l}.{g}, ...
//                     (head g of the KvManager's per-layer buffer is one contiguous block)
// Conversions per step:
//   mask    uint16 -> float graphs: 65535 -> 0, 0 -> -255; quantized mask input: the uint16
//           value is the quantized value, dequantized with the input's params
//   caches  f32 graphs: copied as is; u8/u16 caches: dequantized with the cache input's
//           params on the way in, k_new/v_new quantized with their (equal) params on the way out
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/runner/step_model.h"

namespace hs::irexec {

using CacheLayout = opset::CacheLayout;

struct GraphStepModelOptions {
  ir::InterpreterOptions interpreter;
  // The model's sliding window (LlamaConfig::sliding_window): required (> 0) exactly when the
  // graphs take a window_attention_mask (Gemma3); the runner builds that mask with it.
  int64_t sliding_window = 0;
};

class GraphStepModel final : public runner::StepModel {
 public:
  // One graph per AR length (distinct T). All graphs must agree on L, Hkv, Dh, C, V, the cache
  // layout, the cache element type and the cache encodings (they share one KvManager).
  // Errors name the graph and the offending I/O tensor with expected and actual types.
  static Result<std::unique_ptr<GraphStepModel>> create(
      std::vector<std::shared_ptr<const ir::Graph>> graphs,
      const GraphStepModelOptions& options = {});
  static Result<std::unique_ptr<GraphStepModel>> create(std::vector<ir::Graph> graphs,
                                                        const GraphStepModelOptions& options = {});

  ~GraphStepModel() override;
  GraphStepModel(const GraphStepModel&) = delete;
  GraphStepModel& operator=(const GraphStepModel&) = delete;

  const runner::StepModelInfo& info() const override { return info_; }
  CacheLayout cache_layout() const { return layout_; }

  Status step(int64_t ar_len, std::span<const int32_t> tokens, std::span<const int32_t> positions,
              std::span<const uint16_t> mask, runner::KvManager& kv,
              std::span<float> logits) override;

  // The graph run for `ar_len`, or nullptr (observers receive this graph's ValueIds).
  const ir::Graph* graph(int64_t ar_len) const;
  // Installs (or clears, with nullptr) the observer called during steps of `ar_len`.
  Status set_observer(int64_t ar_len, ir::Interpreter::Observer observer);

 private:
  struct Run;  // one graph: interpreter, I/O positions, encodings (graph_step_model.cpp)
  GraphStepModel() = default;
  Run* find(int64_t ar_len);

  runner::StepModelInfo info_;
  CacheLayout layout_ = CacheLayout::kPerLayer;
  std::vector<std::unique_ptr<Run>> runs_;
};

}  // namespace hs::irexec

// Internal to the runtime: where a static llama graph of an artifact keeps its step I/O
// (tokens, mask, positions, logits, per-layer or per-head caches), checked against the
// layouts of the builder (frontend/builder.h) and the element storage of contract §5.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "headsplit/runner/step_model.h"
#include "headsplit/runtime/executor.h"
#include "headsplit/runtime/artifact_step_model.h"

namespace hs::runtime::detail {

// The four cache tensors of a layer (per-layer layout) or of a (layer, kv head) pair.
struct CacheSlot {
  int64_t layer = 0;
  int64_t head = 0;       // kv head within the layer's buffer (0 for the per-layer layout)
  int k_in = 0, v_in = 0;  // input indices
  int k_out = 0, v_out = 0;  // output indices
  artifact::Quant k_quant, v_quant;
};

struct StepIo {
  int64_t ar_len = 0, context_len = 0, vocab_size = 0;    // T, C, V
  int64_t n_layers = 0, n_kv_heads = 0, head_dim = 0;     // L, Hkv, Dh
  CacheLayout layout = CacheLayout::kPerLayer;
  runner::KvElement element = runner::KvElement::kF32;
  int tokens = 0, input_pos = 0, mask = 0;  // input indices
  int logits = 0;                           // output index
  artifact::ElementType mask_type = artifact::ElementType::kF32;
  artifact::ElementType logits_type = artifact::ElementType::kF32;
  artifact::Quant logits_quant;
  std::vector<CacheSlot> slots;  // [L] or [L*Hkv], index l*Hkv + g
};

// Finds and checks the step I/O of `exec`'s graph. Errors start with `what` and name the
// tensor with its expected and actual shape or type.
Result<StepIo> describe_step_io(const GraphExecutor& exec, std::string_view what);

}  // namespace hs::runtime::detail

// Internal to irexec: where a static llama graph keeps its step I/O, checked against the
// layouts of frontend/builder.h (per-layer or per-head caches, optional quant params).
#pragma once

#include <cstdint>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/irexec/graph_step_model.h"

namespace hs::irexec::detail {

// The four cache tensors of one slot: a layer (per-layer layout) or a (layer, kv head) pair.
struct CacheSlot {
  int64_t layer = 0;
  int64_t head = 0;             // kv head within the layer's buffer (0 for the per-layer layout)
  size_t k_in = 0, v_in = 0;    // positions in graph.inputs()
  size_t k_out = 0, v_out = 0;  // positions in graph.outputs()
  ir::QuantParams k_quant, v_quant;  // cache encodings (kNone for float caches)
};

struct GraphIo {
  int64_t ar_len = 0;       // T
  int64_t context_len = 0;  // C
  int64_t vocab_size = 0;   // V
  int64_t n_layers = 0;     // L
  int64_t n_kv_heads = 0;   // Hkv
  int64_t head_dim = 0;     // Dh
  CacheLayout layout = CacheLayout::kPerLayer;
  runner::KvElement element = runner::KvElement::kF32;
  ir::DType first_cache_dtype = ir::DType::kF32;  // storage type of the first K cache
  size_t tokens = 0, input_pos = 0, mask = 0;     // positions in graph.inputs()
  size_t logits = 0;                              // position in graph.outputs()
  ir::QuantParams mask_quant;                     // kNone: float mask (0 attend, -255 masked)
  std::vector<CacheSlot> slots;                   // [L] or [L*Hkv], index l*Hkv + g
};

// Finds and checks every step I/O tensor of `graph`. Errors name the graph and the tensor,
// with the expected and actual types.
Result<GraphIo> describe_graph_io(const ir::Graph& graph);

}  // namespace hs::irexec::detail

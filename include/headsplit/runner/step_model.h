// What the generation loop runs: a model that executes one step at a given AR length.
// Implemented on the reference interpreter (irexec/graph_step_model.h, compiler side) and on a
// loaded artifact (runtime), so both share the KV manager, sampler and generator.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/opset/step_io.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/support/result.h"

namespace hs::runner {

enum class KvElement : uint8_t { kF32, kU8, kU16 };

// Bytes per stored cache element: 4, 1, 2.
int64_t kv_element_size(KvElement element);
// The cache element of a step graph's cache storage type (f32, u8 or u16: the step-I/O
// contract, opset/step_io.h, allows no other).
KvElement kv_element_of(opset::DType cache_dtype);

struct StepModelInfo {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t context_len = 0;
  int64_t vocab_size = 0;
  std::vector<int64_t> ar_lens;  // AR lengths with a graph, e.g. {32, 1}
  // > 0: the graphs take a window_attention_mask for their sliding-window layers (Gemma3):
  // positions p attend to (p - sliding_window, p]. Step masks then hold both masks.
  int64_t sliding_window = 0;
  KvElement kv_element = KvElement::kF32;
  // Real value of stored cache element q (quantized caches): scale * (q - zero_point).
  // One per-tensor encoding shared by every layer's K (resp. V) is not required: per layer
  // ([L]; with a per-head cache layout, kv head 0's encoding of the layer).
  std::vector<float> k_scales, v_scales;
  std::vector<int32_t> k_zero_points, v_zero_points;
  // The same per layer and kv head ([L*Hkv], index l*Hkv + g): a per-head cache layout may give
  // each head its own encoding (the SHA-from-source path calibrates per head). Empty for kF32.
  std::vector<float> k_head_scales, v_head_scales;
  std::vector<int32_t> k_head_zero_points, v_head_zero_points;

  // The KV manager shape for AR lengths [min_ar_len, max_ar_len] of this model.
  KvShape kv_shape(int64_t min_ar_len, int64_t max_ar_len) const;
};

// The info of a model whose graphs (AR lengths `ar_lens`) have the step I/O `io` (all graphs
// agree on everything but T: opset::check_same_kv_caches).
StepModelInfo step_model_info(const opset::StepIo& io, std::vector<int64_t> ar_lens);

// The error of a step at an AR length the model has no graph for: kInvalidArgument
// "step: no graph for ar length 3 (have 32, 1)".
Error no_graph_for(int64_t ar_len, std::span<const int64_t> ar_lens);

// The window of step graphs with I/O `io`: `window` (> 0) when they take a
// window_attention_mask, 0 when they do not. kInvalidArgument naming `what` when the graphs and
// the window disagree (a window mask input without a window, or a window without the input).
Result<int64_t> check_sliding_window(const opset::StepIo& io, int64_t window, std::string_view what);

// A step's arguments against the graph it runs (`graph` names it in errors): the KV manager's
// shape and element size, and the sizes of tokens [T], positions [T], mask [T*C] (2*T*C with a
// window mask) and logits [T*V]. kInvalidArgument with both sides' values.
Status check_step_arguments(const opset::StepIo& io, const KvManager& kv, size_t tokens,
                            size_t positions, size_t mask, size_t logits, std::string_view graph);

class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual const StepModelInfo& info() const = 0;
  // Runs one step of AR length `ar_len` (one of info().ar_lens; kv.ar_len() == ar_len):
  // reads tokens [T], positions [T], mask [T, C] (65535 attend, 0 masked; with
  // info().sliding_window > 0, [2, T, C]: the causal mask, then the sliding-window mask) and
  // the caches in `kv`; writes logits [T, V] and the new entries into kv's out buffers.
  virtual Status step(int64_t ar_len, std::span<const int32_t> tokens,
                      std::span<const int32_t> positions, std::span<const uint16_t> mask,
                      KvManager& kv, std::span<float> logits) = 0;
  // A hint for the next step() only: the caller reads logits rows [first, first + count) and
  // no others (a prefill chunk needs its last stored token's; count 0: none). Rows outside are
  // unspecified after that step. Models that cannot use it compute every row (the default).
  virtual void want_logits_rows(int64_t first, int64_t count) {
    static_cast<void>(first);
    static_cast<void>(count);
  }
};

}  // namespace hs::runner

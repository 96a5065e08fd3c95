// The step-graph I/O contract: the inputs and outputs of a static llama graph that runs one
// step of T tokens (prefill AR-N or decode AR-1), defined once for the graph builder
// (frontend), the interpreter's step model (irexec) and the artifact's step model (runtime).
//
//   inputs   tokens          i32 [1,T]
//            attention_mask  f32, or u16 with per-tensor params, [1,T,C]; columns [0,P) are
//                            cache slots (slot j holds position j), columns [P,C) this step
//            window_attention_mask  (optional; models with sliding-window layers, Gemma3) the
//                            same type as attention_mask: what it sees, restricted to the last
//                            W positions (the runner's window W, from the model's metadata)
//            input_pos       i32 [1,T]
//            per cache slot  k_cache [1,Hs,Dh,P], v_cache [1,Hs,P,Dh]
//   outputs  logits          f32, or u8/u16 with per-tensor params, [1,T,V]
//            per cache slot  k_new [1,Hs,Dh,T], v_new [1,Hs,T,Dh]
// with P = C - T >= 1 cache slots. Cache slots by layout:
//   per layer  k_cache.{l}, v_cache.{l}, k_new.{l}, v_new.{l}            Hs = Hkv, L slots
//   per head   k_cache.{l}.{g}, v_cache.{l}.{g}, k_new.{l}.{g}, ...      Hs = 1, L*Hkv slots
// Caches are f32, or u8/u16 with per-tensor params; every cache has the same element type, and
// each new-entries output has exactly its cache's type and params (the runtime copies the new
// entries into the cache as stored). A step graph has no other inputs or outputs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/opset/types.h"

namespace hs::opset {

enum class CacheLayout : uint8_t {
  kPerLayer,  // one K and one V cache tensor per layer: 2L inputs and 2L outputs
  kPerHead,   // one per layer and kv head: 2*L*Hkv of each (SHA from source)
};
std::string_view cache_layout_name(CacheLayout layout);  // "per-layer", "per-head"

inline constexpr std::string_view kTokensName = "tokens";
inline constexpr std::string_view kAttentionMaskName = "attention_mask";
inline constexpr std::string_view kWindowMaskName = "window_attention_mask";
inline constexpr std::string_view kInputPosName = "input_pos";
inline constexpr std::string_view kLogitsName = "logits";

// The four tensors of a cache slot.
enum class CacheTensor : uint8_t { kKCache, kVCache, kKNew, kVNew };
// "k_cache.3" (per layer) or "k_cache.3.1" (per head: kv head 1 of layer 3).
std::string cache_tensor_name(CacheTensor which, int64_t layer,
                              CacheLayout layout = CacheLayout::kPerLayer, int64_t head = 0);
std::string k_cache_name(int64_t layer);  // per-layer names
std::string v_cache_name(int64_t layer);
std::string k_new_name(int64_t layer);
std::string v_new_name(int64_t layer);

// The dimensions of a step graph (the glossary's names).
struct StepDims {
  int64_t ar_len = 1;       // T
  int64_t context_len = 0;  // C
  int64_t vocab_size = 0;   // V
  int64_t n_layers = 0;     // L
  int64_t n_kv_heads = 0;   // Hkv
  int64_t head_dim = 0;     // Dh
  CacheLayout layout = CacheLayout::kPerLayer;

  int64_t cache_slots() const { return context_len - ar_len; }  // P
  int64_t slot_heads() const { return layout == CacheLayout::kPerLayer ? n_kv_heads : 1; }
  int64_t slot_count() const {  // L or L*Hkv
    return layout == CacheLayout::kPerLayer ? n_layers : n_layers * n_kv_heads;
  }
};

// The shape of a cache tensor: k_cache [1,Hs,Dh,P], v_cache [1,Hs,P,Dh], k_new [1,Hs,Dh,T],
// v_new [1,Hs,T,Dh].
Shape cache_tensor_shape(CacheTensor which, const StepDims& dims);

// The contract's checks on the lengths alone: 1 <= T < C (at least one cache slot).
// kInvalidArgument: "ar length 40 must be at least 1 and smaller than the context length 32".
Status check_step_lengths(int64_t ar_len, int64_t context_len);

// A graph I/O tensor as the contract sees it: its name and type (ir::Value and
// artifact::TensorDesc both provide one).
struct NamedType {
  std::string_view name;
  const TensorType* type = nullptr;
};

// The four tensors of one cache slot: positions in the input and output lists, and the
// cache's encoding (kNone for f32 caches; the new entries have the same).
struct CacheSlot {
  int64_t layer = 0;
  int64_t head = 0;  // kv head within the layer's buffer (0 for the per-layer layout)
  size_t k_in = 0, v_in = 0;
  size_t k_out = 0, v_out = 0;
  QuantParams k_quant, v_quant;
};

// Where a step graph keeps its I/O, and the encodings the caller converts to and from.
struct StepIo {
  StepDims dims;
  DType cache_dtype = DType::kF32;             // f32, u8 or u16
  size_t tokens = 0, mask = 0, input_pos = 0;  // input positions
  size_t logits = 0;                           // output position
  DType mask_dtype = DType::kF32;              // f32 or u16
  QuantParams mask_quant;
  bool has_window_mask = false;                // window_attention_mask present (same type)
  size_t window_mask = 0;                      // its input position when present
  DType logits_dtype = DType::kF32;  // f32, u8 or u16
  QuantParams logits_quant;
  std::vector<CacheSlot> slots;  // [L] or [L*Hkv], index l*Hkv + g
};

// Finds and checks every step I/O tensor of a graph with these inputs and outputs (in binding
// order) against the contract. Errors start with `what` (the graph) and name the tensor with
// its type and the expected one: kNotFound (a missing tensor), kShape (a shape), kUnsupported
// (an element type or encoding, or a tensor the contract does not have).
Result<StepIo> describe_step_io(std::span<const NamedType> inputs,
                                std::span<const NamedType> outputs, std::string_view what);

// Graphs that share one KV manager (the AR lengths of one model) must agree on everything but
// T: C, V, L, Hkv, Dh, the cache layout, element type and every cache's encoding. kShape
// errors start with `what` (naming both graphs) and name the field and both values.
Status check_same_kv_caches(const StepIo& a, const StepIo& b, std::string_view what);

}  // namespace hs::opset

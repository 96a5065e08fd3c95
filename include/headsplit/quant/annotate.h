// Annotation: which values of a float graph get which kind of quantization, and which
// activations share one encoding.
//
// Sharing groups (union-find over values): a layout op (op_info(op).is_layout: reshape,
// transpose, slice, concat, unsqueeze, squeeze, expand) joins its real-valued output with all
// its real-valued inputs, so layout ops never requantize. A concat's inputs and output all
// share one range: concat(k_cache, k_new) gives the cache input and the new-k output one
// encoding, which the runtime needs because it copies k_new bytes into the cache.
//
// Roles:
//   activation  every real non-constant value (graph inputs and node results); one encoding
//               per group: bits = the default scheme's activation bits, raised by the
//               activation bits of a rule matching a projection that reads or writes the
//               group; a group holding a KV cache input gets kv_bits (fixed), the group of
//               `attention_mask` the fixed mask encoding (mask_params()), the group of
//               `logits` 16 bits.
//   weight      a constant operand 1 of conv2d/linear: per the projection's scheme.
//   embedding   the constant table of a gather indexed by the `tokens` input: per-row int8.
//   float       every other constant (norm weights, RoPE tables, scalars, the R3 matrix,
//               biases): tiny, and the runtime computes in float, so nothing to gain.
//   integer     i32 and bool values (tokens, input_pos, masks from eq): never quantized.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/quant/params.h"
#include "headsplit/quant/scheme.h"

namespace hs::quant {

enum class ValueRole : uint8_t { kInteger, kActivation, kWeight, kEmbedding, kFloat };

enum class GroupKind : uint8_t {
  kPlain,    // params from the observed range
  kKvCache,  // holds a k_cache / v_cache input: kv_bits
  kMask,     // holds attention_mask: mask_params()
  kLogits,   // holds logits: 16 bits
};

struct ActivationGroup {
  std::vector<ir::ValueId> members;  // in ValueId order; members[0] names the group
  GroupKind kind = GroupKind::kPlain;
  int bits = 16;
};

struct Annotation {
  std::vector<ValueRole> role;  // per ValueId
  std::vector<int32_t> group;   // per ValueId: index into groups, -1 if not activation
  std::vector<ActivationGroup> groups;
  std::vector<std::string> projection;  // per ValueId of a weight: its projection name
  std::vector<Scheme> weight_scheme;    // per ValueId of a weight: the scheme applied
};

// The projection name of a weight constant: its name without a trailing ".weight".
std::string projection_name(std::string_view weight_name);

// Annotates `graph`. Errors: kInvalidArgument naming the rule when a rule matches no
// projection of the graph; kUnsupported when one group would need two fixed encodings (e.g. a
// cache and the mask), naming both values.
Result<Annotation> annotate(const ir::Graph& graph, const QuantConfig& config);

}  // namespace hs::quant

// The MHA -> SHA split (backend preprocess, after quantization).
//
//   MHA(X) = concat_h( softmax(Q_h K_g(h)^T / sqrt(Dh) + M) V_g(h) ) W_O,   g(h) = h / G
//
// For each attention (found at its softmax) the pass walks upstream from the attention.V
// matmul, carrying (head axis, head count), and re-creates every op per head, until it reaches
// the q/k/v projections (whose weights, biases and per-channel / per-block quantization params
// are sliced on the output-channel axis), the cache inputs (sliced per kv head) and values that
// broadcast over heads (shared). The GQA repeat is bypassed (query head h reads kv head h / G).
// Per-head new k/v that are graph outputs are concatenated back so graph I/O keeps its
// per-layer shapes; head outputs are concatenated on the last axis, the post-attention
// transpose is dropped and the o-projection stays one op.
#pragma once

#include <string>
#include <vector>

#include "headsplit/passes/passes.h"

namespace hs::passes {

struct SplitAttention {
  std::string name;    // the softmax output, e.g. "layers.3.attn.probs"
  int64_t heads = 0;   // H
  int64_t kv_heads = 0;  // Hkv seen through the GQA repeat (H when there is none)
  bool split = false;
  std::string reason;  // why it was left as MHA (when !split)
};

struct SplitReport {
  std::vector<SplitAttention> attentions;  // multi-head attentions: split or left as MHA
  std::vector<std::string> single_head;    // softmaxes already single-head ([1,1,T,C]), skipped
  int64_t split_count() const;
  int64_t skipped_count() const;
};

// Splits every matching attention: for each softmax, match, plan (both read the graph only),
// then apply. Errors: shapes that do not divide into the head count (kShape, naming the node),
// an unmatched attention with options.require_all (kUnsupported), a plan that cannot be
// applied (kInternal: a bug).
Result<SplitReport> split_heads(ir::Graph& graph, const SplitHeadsOptions& options,
                                const PassContext& context);

}  // namespace hs::passes

// The IR verifier: the structural and type invariants every graph must satisfy.
//
// Passes run it after each rewrite (--verify-each), the parser runs it on what it read, and
// the backend runs it before emitting an artifact. Messages name the value or node:
//   node 'layers.0.attn.q' (conv2d): result type f32[1,32,1,1] has shape [1,32,1,1],
//   inference gives [1,64,1,1]
// Error kinds: kInvalidArgument for broken structure (names, producers, order, ids),
// kShape for arity, attributes, shapes, dtypes and quantization parameters.
#pragma once

#include <string>

#include "headsplit/ir/graph.h"
#include "headsplit/support/result.h"

namespace hs::ir {

// Checks the whole graph:
// - value names are non-empty and unique;
// - graph inputs have no producer and no data; constants have exactly numel * dtype_size
//   bytes of data and no producer; every other value is the result of exactly one live node
//   and `producer` points at it (results of erased nodes are dead and must not be used);
// - live nodes are in topological order: each operand is a graph input, a constant or a
//   result of an earlier live node;
// - graph outputs exist, are listed once and are not results of erased nodes;
// - every live node passes verify_node; every type has non-negative dimensions and valid
//   quantization parameters (check_quant).
Status verify(const Graph& graph);

// Checks one live node on its own (not its position in the order): operand and result ids,
// arity and attribute kinds per op_info (attributes the op does not declare are allowed and
// carried along), exactly one result, and the result type against infer_type: the same shape;
// where inference gives f32 the result must be real (f32, or integer storage with quant
// params), otherwise exactly the inferred dtype without quant; `quantize` results must be
// quantized and `dequantize` results plain f32. Result types must pass check_quant.
Status verify_node(const Graph& graph, NodeId node);

// How messages name a node: "node 'layers.0.attn.q' (conv2d)", after its first result, or
// "node #12 (conv2d)" when it has none.
std::string describe_node(const Graph& graph, NodeId node);

}  // namespace hs::ir

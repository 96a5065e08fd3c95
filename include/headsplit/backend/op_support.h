// The op-support check of backend preprocess: every op and every operand/result storage of a
// preprocessed graph must be something the runtime executes. The rules are the table in
// docs/artifact.md ("Execution semantics", "What the runtime executes"), kept next to the
// runtime's kernel list; this file is their one implementation on the compiler side.
//
//   ops             all IR ops (runtime_supports_op), computed in float32 (int32 for i32/bool)
//   conv2d/linear   weight (operand 1) and bias (operand 2) are constants; the weight is f32,
//                   or i8 / i4 symmetric (zero points 0) per-tensor, per-axis on axis 0 or
//                   per-block (axis 0, blocks along axis 1): the fast qgemm kernels
//   gather          any table; quantized constant tables per-tensor / per-axis / per-block on
//                   axis 0 are read row by row, others dequantized once at load
//   constants       any other quantized constant (i4 included) is dequantized once at load
//   integer storage u8, i8, u16, i16, i4 values carry quant params (else they mean nothing)
//   graph I/O       f32 or i32 without params, or u8 / i8 / u16 / i16 per-tensor; named as
//                   the runner binds them: tokens, attention_mask, input_pos, k_cache.{l}[.{g}],
//                   v_cache.*; logits, k_new.*, v_new.*
#pragma once

#include <string>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/support/result.h"

namespace hs::backend {

// True for the ops the runtime has a kernel for.
bool runtime_supports_op(ir::OpKind op);

// Every unsupported combination in `graph`, one line each, naming the node (or graph I/O
// value), the op, the operand and its type:
//   "node 'layers.0.attn.scores' (matmul): operand 1 'w' i4[8,8] ...: i4 is read only as ..."
std::vector<std::string> find_unsupported(const ir::Graph& graph);

// kUnsupported when find_unsupported is not empty; the message names the graph and lists
// every line:
//   "graph 'decode': 2 op/dtype combinations the runtime cannot execute:\n  node ...\n  ..."
Status check_op_support(const ir::Graph& graph);

}  // namespace hs::backend

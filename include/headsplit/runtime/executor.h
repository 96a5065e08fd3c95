// GraphExecutor: one graph of a loaded artifact, planned once and executed many times.
//
//   auto exec = GraphExecutor::create(artifact, "decode", {.pool = &pool});
//   exec->bind_input("tokens", as_bytes(tokens));        // buffers owned by the caller
//   exec->bind_output("logits", as_writable_bytes(out));
//   exec->execute();                                     // no allocation, no string work
//
// Plan (at create): every node's arity, attributes and shapes are checked; each node gets a
// kernel with its pointers resolved: intermediates at their arena offsets (one 64-byte
// aligned allocation of arena_bytes), weights in the file mapping (no copies), graph I/O in
// the bound buffers. Layout nodes the backend aliased (contract §4), and layout nodes that
// view graph I/O, run no code. concat(cache, new) read only by attention matmuls is not
// materialized: the matmul reads the cache input in place (u8/u16 dequantized in registers).
// An op/dtype combination without a kernel is a kUnsupported error naming the node.
//
// Bind: graph I/O is never in the arena (contract §5); each input and output is bound to a
// caller buffer of exactly its byte size (element storage: f32, i32, or the integer storage of
// a quantized tensor, e.g. u16 caches and logits). Binding is by name (or by index for hot
// loops); a binding stays until replaced. execute() fails with kInvalidArgument naming the
// first unbound tensor.
//
// Execute: runs the steps in order on the calling thread, the projections and attention
// matmuls splitting their work over the pool. Numerics follow contract §2 (float32, every
// quantized value fake-quantized); see docs/runtime.md for what is bit-exact and what is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "headsplit/support/result.h"

namespace hs::kernels {
class ThreadPool;
}  // namespace hs::kernels

namespace hs::runtime {

enum class KernelChoice : uint8_t {
  // SIMD/threaded projections (kernels/qgemm.h, gemm.h: int8/int4 weights read in place),
  // fused cache reads in attention. Projections sum in a different order than the reference.
  kFast,
  // Reference kernels for the projections (quantized weights dequantized once at load) and no
  // fusion: bit-identical to the reference interpreter. For tests and debugging.
  kReference,
};

struct ExecOptions {
  KernelChoice kernels = KernelChoice::kFast;
  kernels::ThreadPool* pool = nullptr;  // null: the calling thread only; must outlive the executor
  // kFast: run the structurally identical per-head chains of a split attention as one parallel
  // region over chains (bit-identical to running them one by one; see docs/runtime.md).
  bool batch_heads = true;
  // kFast: skip the attention score columns the SmartMask mask kills in every row (only n_past
  // + T of C are live), where the graph's quantization ranges prove the softmax gives them
  // exactly 0 (bit-identical to computing them; see docs/runtime.md).
  bool skip_dead_columns = true;
  // kFast: run each rotate-half RoPE (two slices, four products, a difference, a sum and a
  // concat) as one step, bit-identical to its nodes one by one (see docs/runtime.md).
  bool fuse_rope = true;
};

// A graph input or output: its name, storage and byte size.
struct IoDesc {
  std::string name;
  artifact::ElementType type = artifact::ElementType::kF32;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
};

// What the plan does per execute(), for reports and tests.
struct PlanSummary {
  int64_t nodes = 0;           // nodes in the graph
  int64_t steps = 0;           // kernel calls per execute (nodes, input/output conversions)
  int64_t views = 0;           // layout nodes with no step (aliases, views of I/O, GQA repeat)
  int64_t fused_concats = 0;   // cache concats read in place by attention matmuls
  int64_t staged_inputs = 0;   // integer inputs dequantized to float at the start of a step
  int64_t arena_bytes = 0;     // the backend's arena
  int64_t staging_bytes = 0;   // runtime-owned float buffers
  int64_t prepared_bytes = 0;  // constants converted at load (reference mode: all weights)
  int64_t lpbq_projections = 0;  // int4 per-block projections read through LPBQ multipliers
  int64_t head_groups = 0;     // split attentions whose per-head chains run as one step
  int64_t head_chains = 0;     // chains in those groups (GQA: a kv head and its query heads)
  int64_t head_tasks = 0;      // tasks in those groups: shared kv parts, then per head (a run
                               // of stacked steps, run with the whole pool, is one task)
  int64_t merged_calls = 0;    // projection calls that each run several heads' weight slices
  int64_t merged_parts = 0;    // the per-head projections those calls replace
  int64_t stacked_calls = 0;   // steps that each run one op of several heads' chains
  int64_t stacked_parts = 0;   // the per-head steps those replace
  int64_t fused_ropes = 0;     // RoPE node patterns run as one step each
  int64_t column_skips = 0;    // attentions that skip the score columns the mask kills
  int64_t row_outputs = 0;     // outputs whose rows set_output_rows can limit (logits)
};

class GraphExecutor {
 public:
  // Plans graph `name` of `artifact` (kept alive by the executor). Errors: kNotFound for an
  // unknown graph name; the plan's errors (kShape, kUnsupported, kCorrupt), each naming the
  // artifact, graph and node.
  static Result<std::unique_ptr<GraphExecutor>> create(
      std::shared_ptr<const artifact::LoadedArtifact> artifact, std::string_view name,
      const ExecOptions& options = {});
  ~GraphExecutor();
  GraphExecutor(const GraphExecutor&) = delete;
  GraphExecutor& operator=(const GraphExecutor&) = delete;

  const artifact::GraphDesc& graph() const;
  const std::vector<IoDesc>& inputs() const { return inputs_; }
  const std::vector<IoDesc>& outputs() const { return outputs_; }
  const PlanSummary& summary() const { return summary_; }
  // Only rows [first, first + count) of output `index`'s T token rows are needed from now on
  // (count < 0: all, the default): where a projection computes that output row by row (the LM
  // head of a step graph's logits), the other rows are not written (the bound buffer keeps its
  // bytes there) and cost nothing, nor do the layout steps between the head and the output. Outputs
  // without such a projection are computed whole. kInvalidArgument for an index out of range
  // or rows outside [0, T].
  Status set_output_rows(int index, int64_t first, int64_t count);
  // Score columns the last execute() skipped, summed over the attentions (PlanSummary::
  // column_skips) that skipped: each skips the mask's dead run when its bound holds.
  int64_t skipped_columns() const;
  // Position of an input / output by name, or -1.
  int input_index(std::string_view name) const;
  int output_index(std::string_view name) const;

  // Errors: kNotFound (unknown name, listing the graph's inputs/outputs), kInvalidArgument
  // (a buffer of the wrong size: names the tensor, its type and shape, the bytes expected and
  // given; or misaligned for its element type).
  Status bind_input(std::string_view name, std::span<const std::byte> bytes);
  Status bind_output(std::string_view name, std::span<std::byte> bytes);
  Status bind_input(int index, std::span<const std::byte> bytes);
  Status bind_output(int index, std::span<std::byte> bytes);

  // Runs the graph. Errors: kInvalidArgument for an unbound input or output; kOutOfRange for a
  // token id or position outside its table (naming the node).
  Status execute();

 private:
  GraphExecutor() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<IoDesc> inputs_, outputs_;
  PlanSummary summary_;
};

}  // namespace hs::runtime

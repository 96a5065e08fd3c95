// Internal to the runtime: the executable form of one graph.
//
// A StepPlan is a list of Steps, one kernel call each, with every shape-dependent value computed
// at load. Steps name memory through Refs, (base, byte offset) pairs that are resolved to raw
// pointers once per change of the bindings:
//   base kBaseAbsolute  the offset is an address (weights in the mapping, prepared constants)
//   base kBaseArena     the graph's arena (contract §3: 4 bytes per element)
//   base kBaseStaging   runtime-owned float buffers (dequantized inputs, quantized outputs
//                       before they are stored)
//   base kBaseFirstBinding + i   the buffer bound to graph input i, then to output i
// A Source is how a step reads a tensor: contiguous row-major elements at a Ref, either
// float32 / int32 or integer storage read through per-tensor params (u8/u16 caches read in
// place: real = scale * (q - zero_point)).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "headsplit/artifact/program.h"
#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/matmul_parts.h"
#include "headsplit/kernels/reference.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/support/result.h"

namespace hs::runtime::detail {

// Element storage of a tensor during a step, one of:
//   kF32  real values (f32, or the fake-quantized value of a quantized type)
//   kI32  i32 and bool tensors
//   kU8, kI8, kU16, kI16  integer storage of a graph input or output, per-tensor params
// Sizes and names are the op set's (opset::dtype_size, opset::dtype_name).
using Elem = opset::DType;

enum BaseId : uint32_t {
  kBaseAbsolute = 0,
  kBaseArena = 1,
  kBaseStaging = 2,
  kBaseFirstBinding = 3,
};

struct Ref {
  uint32_t base = kBaseAbsolute;
  uint64_t offset = 0;
};

struct Source {
  int32_t ref = -1;  // index into the plan's refs
  Elem elem = Elem::kF32;
  float scale = 1.f;  // integer storage only
  int32_t zero_point = 0;
  int32_t root_input = -1;  // integer storage: the graph input tensor it reads

  bool dense() const { return !opset::dtype_is_integer_storage(elem); }
};

// Columns [begin, end) of an attention's score rows that this execution may skip (empty:
// none): the SmartMask mask marks them masked in every row (step_planner_columns.cpp).
struct ColumnSpan {
  int64_t begin = 0, end = 0;
  bool empty() const { return end <= begin; }
};

// A mask input whose dead columns the executor finds before each execution: a column is dead
// when every row holds `dead_code` (the lowest code, the most negative value; an f32 mask: the
// mask's smallest value in this execution, MaskView::dead_value); the span is the longest run
// of dead columns.
struct ColumnMask {
  int32_t input = -1;  // binding index of the mask input
  Elem elem = Elem::kU16;
  int64_t rows = 0, cols = 0;  // [T, C] (numel = rows * cols)
  int32_t dead_code = 0, live_code = 0;
};

// This execution's view of a ColumnMask: its dead span and its codes [rows, cols].
struct MaskView {
  ColumnSpan dead;
  const std::byte* codes = nullptr;
  Elem elem = Elem::kU16;
  int64_t rows = 0, cols = 0;
  float dead_value = 0.f;  // f32 masks: the dead columns' value

  int32_t code(int64_t row, int64_t col) const {
    const int64_t i = row * cols + col;
    return elem == Elem::kU16 ? reinterpret_cast<const uint16_t*>(codes)[i]
                              : static_cast<int32_t>(reinterpret_cast<const uint8_t*>(codes)[i]);
  }
  // The row attends the column: its mask value is at least the "attend" value (code >=
  // live_code; f32: >= 0).
  bool attends(int64_t row, int64_t col, int32_t live_code) const {
    if (elem == Elem::kF32) return reinterpret_cast<const float*>(codes)[row * cols + col] >= 0.f;
    return code(row, col) >= live_code;
  }
};

// Rows [first, first + count) of a graph output's tokens (count < 0: all of them).
struct RowRange {
  int64_t first = 0, count = -1;
  bool all() const { return count < 0; }
};

// What a step sees while it runs.
struct ExecContext {
  std::byte* const* ptrs = nullptr;  // resolved refs
  kernels::ThreadPool* pool = nullptr;
  const MaskView* masks = nullptr;  // [plan.column_masks.size()]: this execution's
  const RowRange* output_rows = nullptr;  // [graph outputs]: the rows callers need

  template <typename T>
  T* ptr(int32_t ref) const {
    return reinterpret_cast<T*>(ptrs[ref]);
  }
};

struct StackState;  // steps.h

class Step {
 public:
  explicit Step(std::string label) : label_(std::move(label)) {}
  virtual ~Step() = default;
  Step(const Step&) = delete;
  Step& operator=(const Step&) = delete;

  // Only a gather with an index out of range fails (the message has no context).
  virtual Status run(const ExecContext& ctx) const = 0;
  // "node 'layers.0.attn.q' (conv2d)" for errors and profiles.
  const std::string& label() const { return label_; }
  // This step and `others` (a step at the same place of each further per-head task, in task
  // order) as one step over their operands stacked on a new leading axis (steps_stack.cpp), or
  // nullptr when they do not stack. The default: they never do.
  virtual std::unique_ptr<Step> stack(const std::vector<const Step*>& /*others*/,
                                      StackState& /*state*/) const {
    return nullptr;
  }

 private:
  std::string label_;
};

// Elementwise work of at least kParallelMin elements is split over the pool in chunks of
// kParallelChunk (elementwise kernels compute each element the same way in any chunk).
inline constexpr int64_t kParallelChunk = 4096;
inline constexpr int64_t kParallelMin = 4 * kParallelChunk;

// Calls fn(first, last) over [0, n) in chunks of kParallelChunk, on the pool when n >=
// kParallelMin, else fn(0, n) inline.
template <typename Fn>
void for_chunks(kernels::ThreadPool* pool, int64_t n, Fn&& fn) {
  if (pool == nullptr || n < kParallelMin) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  kernels::parallel_for(pool, (n + kParallelChunk - 1) / kParallelChunk, [&](int64_t b, int64_t e) {
    fn(b * kParallelChunk, std::min(n, e * kParallelChunk));
  });
}

// Prefetches the first cache lines of a step object (its vtable pointer and spec): the weights
// a decode token streams evict the plan from the caches, so without it every step starts with
// misses on its own fields.
inline void prefetch_step(const Step* step) {
  const auto* p = reinterpret_cast<const char*>(step);
  for (int line = 0; line < 4; ++line) __builtin_prefetch(p + 64 * line);
}

// Fake quantization of a step's float output with the output type's params (contract §2):
// per-tensor vectorized, other granularities through the reference kernel. Per-tensor params
// are kept inline (pt_): a decode step streams the weights through the caches, so the params'
// own heap vectors would be a cache miss (or two) at every use.
class FakeQuant {
 public:
  FakeQuant() = default;
  // `quant` must be consistent with `shape` (check_program guarantees it).
  FakeQuant(const artifact::Quant& quant, std::vector<int64_t> shape);

  bool active() const { return kind_ != artifact::QuantKind::kNone; }
  // y holds numel(shape) floats. Per tensor with a pool: chunks of kParallelChunk elements
  // split over it when there are at least kParallelMin (elementwise: the same bits).
  void apply(float* y, kernels::ThreadPool* pool = nullptr) const;
  // Per tensor: apply() on y[0, count) only, any `count` (the params are the same for every
  // element). Other kinds: apply(y) (y holds numel(shape) floats).
  void apply_first(float* y, int64_t count) const;
  bool per_tensor() const { return kind_ == artifact::QuantKind::kPerTensor; }
  // Per tensor: its params (for kernels that fake-quantize while they write); else false.
  bool params(kernels::FakeQuantParams* p) const;
  // apply() on rows of `row_len` without the columns of `dead` (per tensor; other kinds and an
  // empty span: the whole tensor).
  void apply_live(float* y, int64_t row_len, ColumnSpan dead) const;
  // The fake-quantized value of one x (per tensor or none; other kinds return x).
  float one(float x) const;
  // The same per-tensor (or no) fake quantization over `count` elements (several outputs with
  // equal params side by side); false for other kinds, whose params depend on the position.
  bool same_per_tensor(const FakeQuant& other) const;
  FakeQuant over(int64_t count) const;

 private:
  artifact::QuantKind kind_ = artifact::QuantKind::kNone;
  kernels::FakeQuantParams pt_;  // per tensor: scales[0], zero_points[0] (or 0), qmin, qmax
  artifact::Quant quant_;
  std::vector<int64_t> shape_;
  int64_t count_ = 0;
};

// One attention whose dead score columns may be skipped (step_planner_columns.cpp), shared by
// the steps of its chain s0 = q·k_all -> s1..sj (scalar ops) -> x = sj + mask -> softmax(x).
// The scores matmul decides each execution (`decided`); the later steps follow its decision.
struct ScoreOp {
  kernels::BinaryKind op = kernels::BinaryKind::kAdd;
  float c = 0.f;         // the scalar constant
  bool c_left = false;   // c op s instead of s op c (only for add and mul: monotone)
  FakeQuant fq;          // the op output's
};
struct ColumnSkip {
  int32_t mask = -1;            // index into ExecContext::masks
  std::vector<ScoreOp> chain;   // s0 -> sj, applied after the matmul's own fake quantization
  FakeQuant fq_x;               // the mask add's output
  float mask_dead = 0.f;        // the real value of the dead code
  float mask_live = 0.f;        // the real value of live_code (0: "attend")
  int32_t live_code = 0;
  mutable ColumnSpan decided;   // this execution: the columns the chain skips (empty: none)
};

// Row-major element strides of a shape.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);

// The executable plan of one graph.
struct StepPlan {
  std::vector<Ref> refs;
  std::vector<std::unique_ptr<Step>> steps;  // in execution order
  int64_t arena_bytes = 0;
  int64_t staging_bytes = 0;
  // Constants converted at load (bool/i32 to int32, quantized non-matmul constants to float,
  // per-tensor weight scales widened per channel); refs point into these (kBaseAbsolute).
  std::vector<std::unique_ptr<float[]>> prepared_f32;
  std::vector<std::unique_ptr<int32_t[]>> prepared_i32;
  int64_t prepared_bytes = 0;
  // Counters for reports.
  int64_t lpbq_projections = 0;  // int4 per-block projections with LPBQ factors
  int64_t views = 0;          // layout nodes with no step: backend aliases and views of I/O
  int64_t fused_concats = 0;  // cache concats read in place by attention matmuls
  int64_t staged_inputs = 0;  // integer inputs dequantized at the start of a step
  int64_t head_groups = 0;    // per-head chain groups run as one step
  int64_t head_chains = 0;    // chains in those groups
  int64_t head_tasks = 0;     // tasks in those groups (all phases; a run of stacked steps is one)
  int64_t chain_steps = 0;    // steps inside those groups (not in `steps`)
  int64_t merged_calls = 0;   // per-head projections merged into one call (merge_projections)
  int64_t merged_parts = 0;   // the per-head projections those calls replace
  int64_t stacked_calls = 0;  // per-head steps of identical tasks stacked into one (stack_tasks)
  int64_t stacked_parts = 0;  // the per-head steps those replace
  int64_t fused_ropes = 0;    // RoPE patterns run as one step each (step_planner_rope.cpp)
  // Attentions whose masked score columns may be skipped, and the masks they read.
  std::vector<ColumnMask> column_masks;
  std::vector<std::shared_ptr<const ColumnSkip>> column_skips;  // one per such attention
  int64_t row_outputs = 0;  // graph outputs computed row by row (step_planner_rows.cpp)
};

}  // namespace hs::runtime::detail

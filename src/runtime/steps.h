// Internal to the runtime: the step kinds the planner emits, as plain specs with every shape
// value precomputed, and the factories that turn a spec into a Step.
//   steps_compute.cpp  projections, matmul, elementwise, normalization, I/O staging
//   steps_layout.cpp   strided copies (transpose, slice, concat, expand, reshape), gather
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/matmul_parts.h"
#include "headsplit/kernels/qgemm.h"
#include "step_plan.h"

namespace hs::runtime::detail {

using kernels::BinaryKind;

// One part of a matmul's right-hand side B (kernels/matmul_parts.h) and where it is read.
struct MatmulPartSource {
  Source source;             // contiguous [batches..., rows, cols] of this part
  int64_t batch_stride = 0;  // elements between the part's source batches
  int64_t begin = 0;         // first column (concat on N) or row (concat on K) it covers
  int64_t extent = 0;        // columns (N) or rows (K) it covers
};

// The token rows a row-computed projection (step_planner_rows.cpp) hands to the layout step
// that writes its graph output: rows [first, first + count), token-major [count, N]. Written by
// the projection and read by that copy step in the same execution.
struct RowBuffer {
  std::vector<float> rows;
  int64_t first = 0, count = 0;
};

// conv2d (1x1, channel-major x[Ci, S] per image) or linear (token-major x[M, K]).
struct ProjectionSpec {
  std::string label;
  kernels::ActLayout layout = kernels::ActLayout::kTokenMajor;
  int64_t images = 1;        // conv2d: x.shape[0]; linear: 1
  int64_t m = 0, n = 0, k = 0;  // tokens (S for conv2d), outputs, inputs
  int32_t x = -1, y = -1;    // refs: x dense f32, y f32
  enum class Weights : uint8_t { kF32, kQuantized, kReference } weights = Weights::kF32;
  const float* w_f32 = nullptr;  // kF32: [N,K] in the mapping; kReference: dequantized [N,K]
  kernels::QuantizedWeights w_q;  // kQuantized: spans into the mapping / prepared scales
  const float* bias = nullptr;    // [N] or null
  FakeQuant fake_quant;
  // >= 0: this projection's tokens are that graph output's rows (step_planner_rows.cpp); only
  // ExecContext::output_rows[row_output] are computed: into `rows` when set (layout steps
  // follow), else into their rows of y; the rest of y is not written.
  int32_t row_output = -1;
  std::shared_ptr<RowBuffer> rows;
  // Weights, scales and bias owned by the step (merge_projections' concatenations; empty: the
  // pointers above point into the mapping or the plan's prepared constants).
  std::vector<std::byte> own_weights;  // int8 / packed int4 rows, or f32
  std::vector<float> own_scales, own_bias;
  // LPBQ factors of per-block int4 scales (kernels::lpbq_factor), or empty; w_q's lpbq spans.
  std::vector<float> own_lpbq_scales;
  std::vector<uint8_t> own_lpbq_mult;
  std::vector<int32_t> own_lpbq_sums;  // kernels::lpbq_row_sums, where the CPU reads them
};
std::unique_ptr<Step> make_projection_step(ProjectionSpec spec);

// P projections of one x (the per-head slices of a split q/k/v projection, W_i [n_i, K]) as one
// call over the stacked weights:
//   y_i = x · W_iᵀ = rows [n_0 + .. + n_{i-1}, + n_i) of x · [W_0; ..; W_{P-1}]ᵀ
// bit for bit, since no kernel's row depends on the others (gemm.h, qgemm.h: per-head slices
// give identical rows). Requires the same x, M, K, layout and kernel settings, each y starting
// where the previous ends (channel-major y_i [n_i, M] or M = 1: the merged y [Σn_i, M] is the
// y_i one after another), the same per-tensor (or no) fake quantization, no row limit. The
// stacked weights are the mapping's bytes when the W_i follow each other there, else a copy the
// step owns (*copied_bytes says its size; the artifact keeps each head's params after its
// weight). nullptr when they do not qualify (the caller keeps the parts).
std::unique_ptr<Step> merge_projections(const std::vector<const Step*>& parts,
                                        const std::vector<Ref>& refs, int64_t* copied_bytes);

struct MatmulSpec {
  std::string label;
  kernels::MatmulShapeInfo shape;  // its offset pointers are set by the step from the vectors
  std::vector<int64_t> a_offsets, b_batches;  // [batches]
  int32_t a = -1, y = -1;                     // refs: A dense f32 [.., M, K], y f32
  std::vector<MatmulPartSource> parts;        // B, 1..8 parts
  FakeQuant fake_quant;
  std::shared_ptr<const ColumnSkip> skip;  // attention scores: decides the dead columns
  // P·V (concat on K) reading that attention's softmax output as A: its decided columns are
  // A's exact zeros, so those rows of B are skipped (only where B is integer storage, as the
  // kernel's own zero test: matmul_parts_f32.cpp).
  std::shared_ptr<const ColumnSkip> skip_rows;
  // A stacked scores matmul (steps_stack.cpp): the other heads' skips, given skip's decision.
  std::vector<std::shared_ptr<const ColumnSkip>> skip_also;
};
std::unique_ptr<Step> make_matmul_step(MatmulSpec spec);

// add/sub/mul/div with NumPy broadcasting. Fast patterns: equal shapes, a scalar operand, and
// an operand repeating as a block (`tile`: its shape equals the output's trailing dims).
struct BinarySpec {
  std::string label;
  BinaryKind op = BinaryKind::kAdd;
  int32_t a = -1, b = -1, y = -1;
  std::vector<int64_t> a_shape, b_shape, y_shape;
  FakeQuant fake_quant;
  std::shared_ptr<const ColumnSkip> skip;  // skips skip->decided (rows of y_shape.back())
};
std::unique_ptr<Step> make_binary_step(BinarySpec spec);

// Ops run by their reference kernel (exact semantics, small tensors): neg, silu, tanh, gelu,
// rms_norm, layer_norm, softmax, reduce_min, eq, where.
enum class RefOp : uint8_t {
  kNeg,
  kSilu,
  kTanh,
  kGelu,
  kRmsNorm,
  kLayerNorm,
  kSoftmax,
  kReduceMin,
  kEq,
  kWhere
};
struct RefSpec {
  std::string label;
  RefOp op = RefOp::kNeg;
  std::vector<int32_t> inputs;                   // refs, dense
  std::vector<std::vector<int64_t>> in_shapes;   // per input
  int32_t y = -1;
  std::vector<int64_t> y_shape;
  int64_t axis = 0;  // softmax / reduce_min: normalized axis
  float eps = 0.f;   // rms_norm, layer_norm
  bool gelu_tanh = false;  // gelu: the tanh approximation
  FakeQuant fake_quant;
  std::shared_ptr<const ColumnSkip> skip;  // softmax, last axis: skip->decided are exactly 0
};
std::unique_ptr<Step> make_ref_step(RefSpec spec);

// Dequantizes an integer graph input into float staging at the start of a step, or quantizes a
// float staging buffer into an integer graph output at the end.
struct ConvertSpec {
  std::string label;
  bool to_storage = false;  // false: storage -> f32; true: f32 -> storage
  int32_t from = -1, to = -1;
  int64_t count = 0;
  Elem storage = Elem::kU16;
  float scale = 1.f;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
  // to_storage of a row-computed output (step_planner_rows.cpp): its `count` elements are
  // token rows of row_elems; only ExecContext::output_rows[row_output] are converted.
  int32_t row_output = -1;
  int64_t row_elems = 0;
};
std::unique_ptr<Step> make_convert_step(ConvertSpec spec);

// One strided copy: for every index i of `shape`,
//   dst[dst_offset + sum i*dst_strides] = decode(src[src_offset + sum i*src_strides]).
struct CopyPiece {
  Source src;
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
  std::vector<int64_t> shape, src_strides, dst_strides;
};
// Merges axes that are contiguous in both source and destination and drops size-1 axes.
void collapse_piece(CopyPiece& piece);

struct CopySpec {
  std::string label;
  int32_t y = -1;
  Elem out = Elem::kF32;  // f32 or i32
  std::vector<CopyPiece> pieces;
  FakeQuant fake_quant;
  // >= 0: a layout node after a row-computed projection (step_planner_rows.cpp). When
  // ExecContext::output_rows[row_output] limits the rows, it copies nothing, except the node
  // writing the graph output (`rows` set): it copies the projection's rows to rows
  // [first, first + count) of y (row r at r * N).
  int32_t row_output = -1;
  std::shared_ptr<const RowBuffer> rows;
};
std::unique_ptr<Step> make_copy_step(CopySpec spec);

// Rows of a table gathered by int32 indices. The table is dense (f32 or i32 at a ref) or a
// quantized weight read through its params row by row.
struct GatherSpec {
  std::string label;
  int32_t indices = -1, y = -1;
  int64_t count = 0;  // indices
  int64_t rows = 0, width = 0;
  enum class Table : uint8_t { kDense, kQuantized, kInt4 } table = Table::kDense;
  int32_t table_ref = -1;            // kDense
  Elem dense_elem = Elem::kF32;      // kDense: f32 or i32
  const std::byte* data = nullptr;   // kQuantized: [rows, width] elements; kInt4: packed rows
  Elem storage = Elem::kI8;          // kQuantized
  std::span<const float> scales;     // per tensor (1), per row (rows) or per block (rows * nb)
  std::span<const int32_t> zero_points;
  int64_t block = 0;                 // per block along the row
  FakeQuant fake_quant;
};
std::unique_ptr<Step> make_gather_step(GatherSpec spec);

// Rotate-half RoPE on x [rows, dh] (step_planner_rope.cpp), per row r with the tables' row
// c = r % table_rows (cos, sin [table_rows, half]):
//   y[r, 0:h]  = fq2(fq0(x1 * cos) - fq1(x2 * sin))     x1 = x[r, 0:h], x2 = x[r, h:2h]
//   y[r, h:2h] = fq5(fq3(x1 * sin) + fq4(x2 * cos))
//   y[r, 2h:]  = x[r, 2h:]
// then out_fq over the row when active (the concat requantizes). Each fq is per tensor or
// inactive. y may be x itself (each row's products are taken before the row is written).
inline constexpr int64_t kRopeMaxHalf = 512;
struct RopeSpec {
  std::string label;
  int32_t x = -1, cos = -1, sin = -1, y = -1;  // refs, dense f32
  int64_t rows = 0, dh = 0, half = 0, table_rows = 1;
  FakeQuant fq[6];
  FakeQuant out_fq;
};
std::unique_ptr<Step> make_rope_step(RopeSpec spec);

// Stacking (steps_stack.cpp): S steps of one kind, one per identical per-head task, whose
// outputs the planner placed side by side (task i's at the first's + i * its bytes), as one step
// over a new leading axis of S:
//   operand of task i at first + i * bytes  -> stacked ([S, ...shape])
//   the same memory for every task          -> shared (broadcast over S)
//   matmul B parts of task i at first + b_i * stride (the kv head's cache slice) -> batch b_i
// Every element is computed by the same kernel operations as in its own step (elementwise ops,
// row-wise softmax and RoPE, and per-batch matmul rows do not depend on their neighbours), so
// the stacked step's output bytes equal the S steps'. Params (fake quantization, cos/sin tables,
// shapes, the attention's skip settings) must be equal; else nullptr and the steps stay.
//
// Column skips: a stacked scores matmul decides one span for all heads (dead columns vanish in
// every head) and writes it to each head's ColumnSkip, so each head's skip is tied to the first
// head's; a later step reading a head's skip stacks only when its skips are tied that way.
struct StackState {
  const std::vector<Ref>* refs = nullptr;
  std::vector<std::pair<const ColumnSkip*, const ColumnSkip*>> tied;  // (a head's, the first's)
  // Every skips[i] is skips[0] or tied to it (or all are null).
  bool tied_together(const std::vector<const ColumnSkip*>& skips) const;
};
std::unique_ptr<Step> stack_matmuls(const std::vector<const MatmulSpec*>& s, StackState& state);
std::unique_ptr<Step> stack_binaries(const std::vector<const BinarySpec*>& s, StackState& state);
std::unique_ptr<Step> stack_ref_steps(const std::vector<const RefSpec*>& s, StackState& state);
std::unique_ptr<Step> stack_ropes(const std::vector<const RopeSpec*>& s, StackState& state);
std::unique_ptr<Step> stack_copies(const std::vector<const CopySpec*>& s, StackState& state);

// The specs of `first` and of `others` when each of them is a StepT (else empty).
template <typename StepT>
auto specs_of(const StepT& first, const std::vector<const Step*>& others) {
  using Spec = std::remove_cvref_t<decltype(first.spec())>;
  std::vector<const Spec*> s{&first.spec()};
  for (const Step* o : others) {
    const auto* t = dynamic_cast<const StepT*>(o);
    if (t == nullptr) return std::vector<const Spec*>{};
    s.push_back(&t->spec());
  }
  return s;
}

// Phases of independent step sequences (the per-head chains of one split attention). Each
// phase is one parallel region over its tasks: the steps of one task run in order on one
// thread, and their kernels run inline there (nested parallel_for). The planner guarantees that
// no task reads or writes memory another task of its phase writes, so the result equals
// running the tasks one after another. A phase of one task (stacked steps: stack_matmuls, ...)
// runs its steps in order on the caller, each with the whole pool.
struct ChainsSpec {
  std::string label;
  // Run first, one after another, each with the whole pool: the chains' projections of a shared
  // x merged into one call each (merge_projections). They read only tensors ready before the
  // group and write outputs no task writes.
  std::vector<std::unique_ptr<Step>> prologue;
  std::vector<std::vector<std::vector<std::unique_ptr<Step>>>> phases;  // [phase][task][step]
};
std::unique_ptr<Step> make_chains_step(ChainsSpec spec);

}  // namespace hs::runtime::detail

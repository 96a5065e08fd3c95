// Internal to the runtime: turns one graph of a loaded artifact into a StepPlan.
//
//   storage   graph inputs are read from their bindings (u8/u16 inputs through their params;
//             an integer input some consumer needs as float is dequantized into staging at
//             the start of the step); graph outputs are written to their bindings (integer
//             outputs via float staging, quantized at the end); intermediates live at their
//             arena offsets.
//   views     a layout node whose output is a contiguous range of its input (reshape,
//             (un)squeeze, unit-axis transposes, outer slices, dequantize) has no step when the
//             backend aliased it (contract §4) or its input is not in the arena (I/O, staging,
//             weights): consumers read the input's memory.
//   fusion    concat(cache, new) read only by matmuls (directly or through the GQA repeat
//             unsqueeze -> expand -> reshape) is not materialized: the matmul reads its parts
//             in place (kernels/matmul_parts.h).
//   checks    every node's arity, attributes and shapes with the op set's rules
//             (opset::infer_type, check_node below); an op/dtype combination without a kernel
//             is a kUnsupported error naming the node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "step_plan.h"
#include "steps.h"

namespace hs::runtime::detail {

struct StepPlanOptions {
  bool reference_kernels = false;  // reference kernels for projections, no fusion
  bool fuse_cache_reads = true;    // concat(cache, new) read in place by the attention matmuls
  bool batch_heads = true;         // per-head chains of a split attention as one parallel step
  bool skip_dead_columns = true;   // attention columns the mask kills (step_planner_columns.cpp)
  bool fuse_rope = true;           // rotate-half RoPE's nine nodes as one step (step_planner_rope.cpp)
};

// A graph input or output as the executor binds it.
struct BindingDesc {
  std::string name;
  int32_t tensor = -1;
  Elem elem = Elem::kF32;
  int64_t count = 0;  // elements
  int64_t bytes = 0;  // count * opset::dtype_size(elem)
};

struct BuiltStepPlan {
  StepPlan plan;
  std::vector<BindingDesc> inputs, outputs;  // the graph's binding order
};

// Elements of a shape (the planner files' shorthand for kernels::ref::count).
inline int64_t numel(const std::vector<int64_t>& shape) { return kernels::ref::count(shape); }

// A node's attributes, validated and normalized (negative axes resolved).
struct NodeAttrs {
  int64_t axis = 0;
  int64_t start = 0, end = 0;  // slice
  bool keepdim = false;        // reduce_min
  double eps = 0.0;            // rms_norm, layer_norm
  bool gelu_tanh = false;      // gelu: approximate = "tanh"
  std::vector<int64_t> perm;   // transpose
};

// Checks `node` of `graph` with the op set's rules (operand count, attributes, operand kinds
// and shapes, the declared output against the inferred one) and the runtime's own limits (one
// output, rank at most 8). Errors start with `label` (the node's name and op).
Result<NodeAttrs> check_node(const artifact::GraphDesc& graph, const artifact::NodeDesc& node,
                             std::string_view label);

// `what` (the artifact path and graph name) starts every error message.
Result<BuiltStepPlan> build_step_plan(const artifact::LoadedArtifact& artifact, int graph_index,
                                      const StepPlanOptions& options);

// ---- planner internals (step_planner.cpp, step_planner_ops.cpp, _layout.cpp)
// ----------------------------------

// A lazily assembled right-hand matmul operand (a fused concat, maybe GQA-repeated).
struct LazyOperand {
  std::vector<MatmulPartSource> parts;
  bool concat_on_n = true;
  std::vector<int64_t> shape;  // logical shape [batch..., K, N]
  int64_t batch_div = 1;       // logical batch b reads source batch b / batch_div
};

struct TensorState {
  Source src;     // src.ref < 0: not available (yet)
  int lazy = -1;  // index into StepPlanner::lazy_ when the tensor is a lazy matmul operand
};

class StepPlanner {
 public:
  StepPlanner(const artifact::LoadedArtifact& artifact, int graph_index,
              const StepPlanOptions& options);
  Result<BuiltStepPlan> build();

 private:
  // One planning pass; restarts with more staged inputs when an integer input reaches a
  // consumer that needs floats.
  Status plan_pass();
  Status plan_node(int32_t node_index);

  // step_planner_heads.cpp: the per-head chains of split attentions (see there).
  void find_head_groups();          // once per build, from the graph alone
  void place_head_group_tensors();  // per pass, after plan_io: staging for the groups' outputs
  // Per pass, after every node: moves the steps of each group's nodes into one chains step at
  // the place of the group's first node. node_steps[i] = steps [first, second) of node i.
  void batch_head_groups(const std::vector<std::pair<size_t, size_t>>& node_steps);

  // step_planner_columns.cpp: once per build, the attentions whose dead score columns (the
  // mask's) may be skipped: node_skip_[node] is the attention's ColumnSkip, or null.
  void find_column_skips();
  // step_planner_rows.cpp: once per build, row_output_[node] = the graph output (index) whose
  // token rows the projection `node`, or the layout node `node` after it, computes, or -1;
  // row_buffer_[node]: the rows the projection hands to the chain's last node (both hold it);
  // row_tokens_[output] = its T (0: not computed by rows).
  void find_row_outputs();
  std::vector<int32_t> row_output_;
  std::vector<std::shared_ptr<RowBuffer>> row_buffer_;
  std::vector<int64_t> row_tokens_;
  std::optional<ScoreOp> score_op(const artifact::NodeDesc& node) const;
  // step_planner_rope.cpp: once per build (after find_row_outputs), the RoPE patterns:
  // rope_at_[concat node] indexes ropes_, rope_member_[node] marks the other eight nodes (no
  // step); plan_rope plans the fused step at the concat.
  struct RopeMatch {
    int32_t x = -1, cos = -1, sin = -1;  // tensors
    int64_t half = 0;
    // x1cos, x2sin, rot_a, x1sin, x2cos, rot_b (RopeSpec::fq's order)
    std::vector<int32_t> products;
    bool requantize = false;  // the concat's output params differ from its inputs'
  };
  void find_ropes();
  Status plan_rope(int32_t node_index, const std::string& label);
  std::vector<RopeMatch> ropes_;
  std::vector<int32_t> rope_at_;
  std::vector<bool> rope_member_;

  // step_planner.cpp: memory and operands.
  int32_t add_ref(uint32_t base, uint64_t offset);
  int64_t alloc_staging(int64_t bytes);
  Status plan_io();
  Result<Source> operand(int32_t tensor, std::string_view label);  // any storage
  Result<Source> dense(int32_t tensor, std::string_view label);    // f32 / i32 only
  Source constant_dense(int32_t tensor);       // f32 / i32, converted at load when needed
  Result<Source> output_dest(int32_t tensor);  // where a node writes its output
  // The first of `ins` whose arena bytes overlap out's (elementwise: an operand at exactly out's
  // bytes, read and written element by element, does not count), or -1.
  int overlapping_operand(const Source& out, int32_t out_tensor,
                          std::span<const std::pair<Source, int32_t>> ins, bool elementwise) const;
  Status check_overlap(std::string_view label, const Source& out, int32_t out_tensor,
                       const std::vector<std::pair<Source, int32_t>>& ins, bool elementwise);
  std::string node_label(int32_t node_index) const;
  FakeQuant fake_quant_of(int32_t tensor) const;
  const artifact::TensorDesc& tensor(int32_t i) const;

  // step_planner_ops.cpp, step_planner_layout.cpp: one function per op family.
  Status plan_projection(int32_t node_index, const std::string& label);
  Status plan_matmul(int32_t node_index, const std::string& label);
  Status plan_elementwise(int32_t node_index, const std::string& label, const NodeAttrs& attrs);
  Status plan_gather(int32_t node_index, const std::string& label);
  Status plan_layout(int32_t node_index, const std::string& label, const NodeAttrs& attrs);
  bool try_view(int32_t node_index, const NodeAttrs& attrs);
  bool try_lazy_concat(int32_t node_index, const NodeAttrs& attrs);

  const artifact::LoadedArtifact& artifact_;
  const artifact::GraphDesc& graph_;
  StepPlanOptions options_;
  std::string what_;  // "<path>: graph '<name>'"

  // Per pass.
  StepPlan plan_;
  std::vector<TensorState> state_;
  std::vector<LazyOperand> lazy_;
  std::vector<std::unique_ptr<Step>> final_steps_;  // output conversions, appended at the end
  std::vector<std::vector<std::pair<int32_t, int>>> uses_;  // per tensor: (node, operand)
  std::vector<int32_t> producer_;  // per tensor: the node that writes it, or -1
  std::vector<bool> is_output_;
  std::vector<int32_t> binding_of_;      // per tensor: binding index (inputs then outputs) or -1
  std::map<int32_t, int32_t> prepared_;  // constant tensor -> ref of its f32/int32 form
  std::vector<bool> skip_;               // per node: folded into a fused cache read
  std::vector<int64_t> relocated_;  // per tensor: staging offset of a group's output, or -1
  // Across passes.
  struct HeadGroup {
    std::vector<std::vector<int32_t>> chains;  // node indices, graph order; chains by first node
    std::vector<std::vector<std::vector<int32_t>>> phases;  // [phase][task]: node indices
    int32_t first_node = -1;
    // Projections reading one outside x whose weights follow each other in the data section
    // (a q/k/v weight's per-head row slices), in weight order: one call each (prologue).
    std::vector<std::vector<int32_t>> merges;
  };
  std::vector<std::vector<int32_t>> projection_merges(int32_t group,
                                                      const std::vector<int32_t>& nodes) const;
  using Tasks = std::vector<std::vector<std::unique_ptr<Step>>>;  // [task][step]
  std::vector<Tasks> stack_tasks(Tasks tasks, StackState& state);
  std::vector<HeadGroup> head_groups_;
  std::vector<int32_t> node_group_;  // per node: index into head_groups_, or -1
  std::vector<bool> escaping_;       // per tensor of a group: read outside it (own staging)
  int64_t head_scratch_bytes_ = 0;   // largest sum of a group's non-escaping outputs
  std::vector<bool> staged_;  // per tensor: integer input dequantized at step start
  std::vector<std::shared_ptr<ColumnSkip>> node_skip_;
  std::vector<std::shared_ptr<ColumnSkip>> dead_rows_;  // per tensor: a skipping softmax's output
  std::vector<ColumnMask> column_masks_;
  int32_t restart_input_ = -1;
  BuiltStepPlan result_;
};

}  // namespace hs::runtime::detail

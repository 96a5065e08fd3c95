// GraphExecutor: owns a graph's plan, arena and staging memory, tracks the bound I/O buffers,
// resolves the plan's references to pointers when a binding changes, and runs the steps.
#include "headsplit/runtime/executor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "step_planner.h"

namespace hs::runtime {

namespace {

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<std::byte, FreeDeleter>;

Result<AlignedBytes> allocate(int64_t bytes, std::string_view what) {
  const auto size = static_cast<size_t>((std::max<int64_t>(bytes, 1) + 63) / 64 * 64);
  AlignedBytes p(static_cast<std::byte*>(std::aligned_alloc(64, size)));
  if (!p) return errorf(ErrorKind::kIo, "{}: cannot allocate {} bytes", what, size);
  std::memset(p.get(), 0, size);
  return p;
}

// The longest run of nonzero col_dead entries.
detail::ColumnSpan longest_run(const std::vector<uint8_t>& col_dead) {
  const size_t cols = col_dead.size();
  detail::ColumnSpan best;
  for (size_t c = 0; c < cols;) {
    if (col_dead[c] == 0) {
      ++c;
      continue;
    }
    size_t e = c;
    while (e < cols && col_dead[e] != 0) ++e;
    if (static_cast<int64_t>(e - c) > best.end - best.begin) {
      best = {static_cast<int64_t>(c), static_cast<int64_t>(e)};
    }
    c = e;
  }
  return best;
}

// The span of mask columns this execution may skip (detail::ColumnMask): the longest run of
// columns holding dead_code in every row. `col_dead` is scratch of mask.cols entries.
template <typename Code>
detail::ColumnSpan dead_span(const detail::ColumnMask& mask, const Code* codes,
                             std::vector<uint8_t>& col_dead) {
  const auto cols = static_cast<size_t>(mask.cols);
  col_dead.assign(cols, 1);
  for (int64_t r = 0; r < mask.rows; ++r) {
    const Code* row = codes + r * mask.cols;
    for (size_t c = 0; c < cols; ++c) {
      col_dead[c] &= static_cast<uint8_t>(static_cast<int32_t>(row[c]) == mask.dead_code);
    }
  }
  return longest_run(col_dead);
}

// An f32 mask: the columns holding the mask's smallest value in every row (NaN is never dead).
detail::ColumnSpan dead_span_f32(const detail::ColumnMask& mask, const float* values,
                                 std::vector<uint8_t>& col_dead, float& dead_value) {
  const auto cols = static_cast<size_t>(mask.cols);
  const auto count = static_cast<size_t>(mask.rows) * cols;
  float lowest = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < count; ++i) lowest = values[i] < lowest ? values[i] : lowest;
  dead_value = lowest;
  col_dead.assign(cols, 1);
  for (int64_t r = 0; r < mask.rows; ++r) {
    const float* row = values + r * mask.cols;
    for (size_t c = 0; c < cols; ++c) col_dead[c] &= static_cast<uint8_t>(row[c] == lowest);
  }
  return longest_run(col_dead);
}

}  // namespace

struct GraphExecutor::Impl {
  std::shared_ptr<const artifact::LoadedArtifact> artifact;
  int graph_index = 0;
  ExecOptions options;
  detail::StepPlan plan;
  std::vector<detail::BindingDesc> in_desc, out_desc;
  AlignedBytes arena, staging;
  std::vector<std::byte*> bases;  // indexed by BaseId; bindings after kBaseFirstBinding
  std::vector<std::byte*> ptrs;   // resolved plan refs
  bool dirty = true;
  std::vector<detail::RowRange> output_rows;  // per graph output: set_output_rows
  std::vector<detail::MaskView> masks;  // per plan.column_masks, this execution's
  std::vector<uint8_t> col_dead;        // scratch of dead_span

  // The dead column spans of this execution's mask inputs.
  void find_dead_columns() {
    for (size_t i = 0; i < plan.column_masks.size(); ++i) {
      const detail::ColumnMask& mask = plan.column_masks[i];
      const std::byte* codes = bases[detail::kBaseFirstBinding + static_cast<size_t>(mask.input)];
      if (mask.elem == opset::DType::kF32) {
        float dead_value = 0.f;
        const detail::ColumnSpan dead =
            dead_span_f32(mask, reinterpret_cast<const float*>(codes), col_dead, dead_value);
        masks[i] = {.dead = dead, .codes = codes, .elem = mask.elem, .rows = mask.rows,
                    .cols = mask.cols, .dead_value = dead_value};
        continue;
      }
      masks[i] = {.dead = mask.elem == opset::DType::kU16
                              ? dead_span(mask, reinterpret_cast<const uint16_t*>(codes), col_dead)
                              : dead_span(mask, reinterpret_cast<const uint8_t*>(codes), col_dead),
                  .codes = codes,
                  .elem = mask.elem,
                  .rows = mask.rows,
                  .cols = mask.cols};
    }
  }

  std::string what() const {
    return fmt::format("{}: graph '{}'", artifact->path(),
                       artifact->program().graphs[static_cast<size_t>(graph_index)].name);
  }

  void resolve() {
    for (size_t i = 0; i < plan.refs.size(); ++i) {
      const detail::Ref& r = plan.refs[i];
      ptrs[i] = r.base == detail::kBaseAbsolute
                    ? reinterpret_cast<std::byte*>(static_cast<uintptr_t>(r.offset))
                    : bases[r.base] + r.offset;
    }
    dirty = false;
  }

  Status bind(size_t slot, const detail::BindingDesc& d, std::byte* data, size_t size,
              std::string_view kind) {
    if (static_cast<int64_t>(size) != d.bytes) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: {} '{}' ({} x {}) needs a buffer of {} bytes, got {}", what(), kind,
                    d.name, d.count, opset::dtype_name(d.elem), d.bytes, size);
    }
    if (reinterpret_cast<uintptr_t>(data) % static_cast<uintptr_t>(opset::dtype_size(d.elem)) !=
        0) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: {} '{}' buffer is not aligned to its {}-byte elements", what(), kind,
                    d.name, opset::dtype_size(d.elem));
    }
    if (data == nullptr && size == 0) data = arena.get();  // empty tensor: any valid address
    if (bases[slot] != data) {
      bases[slot] = data;
      dirty = true;
    }
    return ok_status();
  }
};

GraphExecutor::~GraphExecutor() = default;

Result<std::unique_ptr<GraphExecutor>> GraphExecutor::create(
    std::shared_ptr<const artifact::LoadedArtifact> artifact, std::string_view name,
    const ExecOptions& options) {
  const artifact::Program& program = artifact->program();
  int index = -1;
  std::vector<std::string_view> names;
  for (size_t i = 0; i < program.graphs.size(); ++i) {
    names.push_back(program.graphs[i].name);
    if (program.graphs[i].name == name) index = static_cast<int>(i);
  }
  if (index < 0) {
    return errorf(ErrorKind::kNotFound, "{}: no graph '{}' (the artifact has: {})",
                  artifact->path(), name, fmt::join(names, ", "));
  }
  // HS_SKIP_DEAD_COLUMNS=0 in the environment turns the column skipping off (for comparisons).
  static const bool skip_env = [] {
    const char* v = std::getenv("HS_SKIP_DEAD_COLUMNS");
    return v == nullptr || v[0] != '0';
  }();
  const detail::StepPlanOptions plan_options{
      .reference_kernels = options.kernels == KernelChoice::kReference,
      .fuse_cache_reads = options.kernels == KernelChoice::kFast,
      .batch_heads = options.kernels == KernelChoice::kFast && options.batch_heads,
      .skip_dead_columns = options.kernels == KernelChoice::kFast && options.skip_dead_columns && skip_env,
      .fuse_rope = options.kernels == KernelChoice::kFast && options.fuse_rope};
  HS_ASSIGN_OR_RETURN(detail::BuiltStepPlan built,
                      detail::build_step_plan(*artifact, index, plan_options));

  std::unique_ptr<GraphExecutor> exec(new GraphExecutor());
  auto impl = std::make_unique<Impl>();
  impl->artifact = std::move(artifact);
  impl->graph_index = index;
  impl->options = options;
  impl->plan = std::move(built.plan);
  impl->in_desc = std::move(built.inputs);
  impl->out_desc = std::move(built.outputs);
  HS_ASSIGN_OR_RETURN(impl->arena, allocate(impl->plan.arena_bytes, impl->what() + " arena"));
  HS_ASSIGN_OR_RETURN(impl->staging,
                      allocate(impl->plan.staging_bytes, impl->what() + " staging"));
  impl->bases.assign(detail::kBaseFirstBinding + impl->in_desc.size() + impl->out_desc.size(),
                     nullptr);
  impl->bases[detail::kBaseArena] = impl->arena.get();
  impl->bases[detail::kBaseStaging] = impl->staging.get();
  impl->ptrs.assign(impl->plan.refs.size(), nullptr);
  impl->masks.assign(impl->plan.column_masks.size(), detail::MaskView{});
  impl->output_rows.assign(impl->out_desc.size(), detail::RowRange{});

  const artifact::GraphDesc& g = impl->artifact->program().graphs[static_cast<size_t>(index)];
  for (const detail::BindingDesc& d : impl->in_desc) {
    exec->inputs_.push_back(
        {d.name, d.elem, g.tensors[static_cast<size_t>(d.tensor)].shape, d.bytes});
  }
  for (const detail::BindingDesc& d : impl->out_desc) {
    exec->outputs_.push_back(
        {d.name, d.elem, g.tensors[static_cast<size_t>(d.tensor)].shape, d.bytes});
  }
  const detail::StepPlan& p = impl->plan;
  exec->summary_ =
      PlanSummary{.nodes = static_cast<int64_t>(g.nodes.size()),
                  .steps = static_cast<int64_t>(p.steps.size()) - p.head_groups + p.chain_steps,
                  .views = p.views,
                  .fused_concats = p.fused_concats,
                  .staged_inputs = p.staged_inputs,
                  .arena_bytes = p.arena_bytes,
                  .staging_bytes = p.staging_bytes,
                  .prepared_bytes = p.prepared_bytes,
                  .lpbq_projections = p.lpbq_projections,
                  .head_groups = p.head_groups,
                  .head_chains = p.head_chains,
                  .head_tasks = p.head_tasks,
                  .merged_calls = p.merged_calls,
                  .merged_parts = p.merged_parts,
                  .stacked_calls = p.stacked_calls,
                  .stacked_parts = p.stacked_parts,
                  .fused_ropes = p.fused_ropes,
                  .column_skips = static_cast<int64_t>(p.column_skips.size()),
                  .row_outputs = p.row_outputs};
  exec->impl_ = std::move(impl);
  return exec;
}

Status GraphExecutor::set_output_rows(int index, int64_t first, int64_t count) {
  if (index < 0 || static_cast<size_t>(index) >= outputs_.size()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: output index {} outside [0, {})",
                  impl_->what(), index, outputs_.size());
  }
  const int64_t t = graph().ar_len;
  if (count >= 0 && (first < 0 || first + count > t)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: output '{}': rows [{}, {}) outside the graph's {} token rows", impl_->what(),
                  outputs_[static_cast<size_t>(index)].name, first, first + count, t);
  }
  impl_->output_rows[static_cast<size_t>(index)] =
      count < 0 ? detail::RowRange{} : detail::RowRange{first, count};
  return ok_status();
}

int64_t GraphExecutor::skipped_columns() const {
  int64_t n = 0;
  for (const auto& skip : impl_->plan.column_skips) {
    n += skip->decided.empty() ? 0 : skip->decided.end - skip->decided.begin;
  }
  return n;
}

const artifact::GraphDesc& GraphExecutor::graph() const {
  return impl_->artifact->program().graphs[static_cast<size_t>(impl_->graph_index)];
}

int GraphExecutor::input_index(std::string_view name) const {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int GraphExecutor::output_index(std::string_view name) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (outputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Status GraphExecutor::bind_input(std::string_view name, std::span<const std::byte> bytes) {
  const int i = input_index(name);
  if (i < 0) {
    std::vector<std::string_view> names;
    for (const IoDesc& d : inputs_) names.push_back(d.name);
    return errorf(ErrorKind::kNotFound, "{}: no input '{}' (inputs: {})", impl_->what(), name,
                  fmt::join(names, ", "));
  }
  return bind_input(i, bytes);
}

Status GraphExecutor::bind_output(std::string_view name, std::span<std::byte> bytes) {
  const int i = output_index(name);
  if (i < 0) {
    std::vector<std::string_view> names;
    for (const IoDesc& d : outputs_) names.push_back(d.name);
    return errorf(ErrorKind::kNotFound, "{}: no output '{}' (outputs: {})", impl_->what(), name,
                  fmt::join(names, ", "));
  }
  return bind_output(i, bytes);
}

Status GraphExecutor::bind_input(int index, std::span<const std::byte> bytes) {
  if (index < 0 || static_cast<size_t>(index) >= inputs_.size()) {
    return errorf(ErrorKind::kNotFound, "{}: input index {} outside [0, {})", impl_->what(), index,
                  inputs_.size());
  }
  // Inputs are only read; the plan never writes through an input reference.
  return impl_->bind(detail::kBaseFirstBinding + static_cast<size_t>(index),
                     impl_->in_desc[static_cast<size_t>(index)],
                     const_cast<std::byte*>(bytes.data()), bytes.size(), "input");
}

Status GraphExecutor::bind_output(int index, std::span<std::byte> bytes) {
  if (index < 0 || static_cast<size_t>(index) >= outputs_.size()) {
    return errorf(ErrorKind::kNotFound, "{}: output index {} outside [0, {})", impl_->what(),
                  index, outputs_.size());
  }
  return impl_->bind(detail::kBaseFirstBinding + inputs_.size() + static_cast<size_t>(index),
                     impl_->out_desc[static_cast<size_t>(index)], bytes.data(), bytes.size(),
                     "output");
}

Status GraphExecutor::execute() {
  Impl& m = *impl_;
  if (m.dirty) {
    for (size_t i = 0; i < m.in_desc.size() + m.out_desc.size(); ++i) {
      if (m.bases[detail::kBaseFirstBinding + i] != nullptr) continue;
      const bool input = i < m.in_desc.size();
      const detail::BindingDesc& d = input ? m.in_desc[i] : m.out_desc[i - m.in_desc.size()];
      return errorf(ErrorKind::kInvalidArgument, "{}: {} '{}' is not bound", m.what(),
                    input ? "input" : "output", d.name);
    }
    m.resolve();
  }
  m.find_dead_columns();
  const detail::ExecContext ctx{.ptrs = m.ptrs.data(), .pool = m.options.pool, .masks = m.masks.data(),
                                .output_rows = m.output_rows.data()};
  const size_t count = m.plan.steps.size();
  for (size_t i = 0; i < count; ++i) {
    if (i + 1 < count) detail::prefetch_step(m.plan.steps[i + 1].get());
    const detail::Step& step = *m.plan.steps[i];
    Status s = step.run(ctx);
    if (!s.ok()) return std::move(s).error().with_context(step.label());
  }
  return ok_status();
}

}  // namespace hs::runtime

// ArtifactStepModel: binds the KvManager buffers, the SmartMask mask, tokens and positions to
// the graph for the step's AR length, executes it, and hands the logits back as floats.
#include "headsplit/runtime/artifact_step_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <system_error>

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/kv_manager.h"

namespace hs::runtime {

struct ArtifactStepModel::Run {
  std::unique_ptr<GraphExecutor> exec;
  opset::StepIo io;
  std::vector<float> mask_f32;      // float graphs: the mask as 0 / -255
  std::vector<float> window_f32;    // float graphs with a window mask: the same
  std::vector<std::byte> logits_q;  // integer logits before dequantization
};

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The graph's I/O against the step-I/O contract: its tensors are the contract's types.
Result<opset::StepIo> describe_io(const artifact::GraphDesc& g, std::string_view what) {
  std::vector<opset::NamedType> inputs, outputs;
  for (int32_t i : g.inputs)
    inputs.push_back({g.tensors[static_cast<size_t>(i)].name, &g.tensors[static_cast<size_t>(i)]});
  for (int32_t i : g.outputs)
    outputs.push_back({g.tensors[static_cast<size_t>(i)].name, &g.tensors[static_cast<size_t>(i)]});
  return opset::describe_step_io(inputs, outputs, what);
}

template <typename T>
std::span<const std::byte> bytes_of(std::span<const T> s) {
  return std::as_bytes(s);
}

}  // namespace

ArtifactStepModel::ArtifactStepModel() = default;
ArtifactStepModel::~ArtifactStepModel() = default;

int ArtifactStepModel::threads() const { return pool_ != nullptr ? pool_->num_threads() : 1; }

Result<std::unique_ptr<ArtifactStepModel>> ArtifactStepModel::create(
    std::shared_ptr<const artifact::LoadedArtifact> artifact, const StepModelOptions& options) {
  std::unique_ptr<ArtifactStepModel> model(new ArtifactStepModel());
  model->artifact_ = artifact;
  model->pool_ = options.pool;
  if (model->pool_ == nullptr) {
    model->own_pool_ = std::make_unique<kernels::ThreadPool>(options.threads);
    model->pool_ = model->own_pool_.get();
  }
  const artifact::Program& program = artifact->program();
  if (program.graphs.empty()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: the artifact has no graph", artifact->path());
  }
  std::vector<int64_t> ar_lens;
  for (const artifact::GraphDesc& g : program.graphs) {
    const std::string what = fmt::format("{}: graph '{}'", artifact->path(), g.name);
    auto run = std::make_unique<Run>();
    HS_ASSIGN_OR_RETURN(run->exec,
                        GraphExecutor::create(artifact, g.name,
                                              {.kernels = options.kernels,
                                               .pool = model->pool_,
                                               .batch_heads = options.batch_heads,
                                               .skip_dead_columns = options.skip_dead_columns,
                                               .fuse_rope = options.fuse_rope}));
    HS_ASSIGN_OR_RETURN(run->io, describe_io(g, what));
    const opset::StepIo& io = run->io;
    for (const auto& other : model->runs_) {
      HS_TRY(opset::check_same_kv_caches(other->io, io,
                                         fmt::format("{}: graphs '{}' and '{}'", artifact->path(),
                                                     other->exec->graph().name, g.name)));
      if (other->io.dims.ar_len == io.dims.ar_len) {
        return errorf(ErrorKind::kInvalidArgument, "{}: two graphs have ar length {}",
                      artifact->path(), io.dims.ar_len);
      }
    }
    const auto mask_index = static_cast<int>(io.mask), logits_index = static_cast<int>(io.logits);
    if (io.mask_dtype == opset::DType::kF32) {
      run->mask_f32.resize(static_cast<size_t>(io.dims.ar_len * io.dims.context_len));
      HS_TRY(
          run->exec->bind_input(mask_index, std::as_bytes(std::span<const float>(run->mask_f32))));
      if (io.has_window_mask) {
        run->window_f32.resize(run->mask_f32.size());
        HS_TRY(run->exec->bind_input(static_cast<int>(io.window_mask),
                                     std::as_bytes(std::span<const float>(run->window_f32))));
      }
    }
    if (io.logits_dtype != opset::DType::kF32) {
      run->logits_q.resize(static_cast<size_t>(run->exec->outputs()[io.logits].bytes));
      HS_TRY(run->exec->bind_output(logits_index, run->logits_q));
    }
    ar_lens.push_back(io.dims.ar_len);
    model->runs_.push_back(std::move(run));
  }
  model->layout_ = model->runs_.front()->io.dims.layout;
  model->info_ = runner::step_model_info(model->runs_.front()->io, std::move(ar_lens));
  // The sliding window of Gemma3-like models: metadata extra "sliding_window".
  int64_t window = 0;
  if (auto it = program.metadata.extra.find("sliding_window");
      it != program.metadata.extra.end()) {
    const std::string& text = it->second;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), window);
    if (ec != std::errc() || end != text.data() + text.size() || window <= 0) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata sliding_window is '{}', expected an integer > 0",
                    artifact->path(), text);
    }
  }
  HS_ASSIGN_OR_RETURN(model->info_.sliding_window,
                      runner::check_sliding_window(model->runs_.front()->io, window,
                                                   artifact->path()));
  return model;
}

ArtifactStepModel::Run* ArtifactStepModel::find(int64_t ar_len) const {
  for (const auto& run : runs_) {
    if (run->io.dims.ar_len == ar_len) return run.get();
  }
  return nullptr;
}

const GraphExecutor* ArtifactStepModel::executor(int64_t ar_len) const {
  const Run* run = find(ar_len);
  return run != nullptr ? run->exec.get() : nullptr;
}

BindingCounts ArtifactStepModel::binding_counts(int64_t ar_len) const {
  const Run* run = find(ar_len);
  if (run == nullptr) return {};
  const auto kv = static_cast<int64_t>(2 * run->io.slots.size());
  return {.inputs = static_cast<int64_t>(run->exec->inputs().size()),
          .outputs = static_cast<int64_t>(run->exec->outputs().size()),
          .kv_inputs = kv,
          .kv_outputs = kv};
}

Status ArtifactStepModel::step(int64_t ar_len, std::span<const int32_t> tokens,
                               std::span<const int32_t> positions, std::span<const uint16_t> mask,
                               runner::KvManager& kv, std::span<float> logits) {
  Run* run = find(ar_len);
  if (run == nullptr) return runner::no_graph_for(ar_len, info_.ar_lens);
  const opset::StepIo& io = run->io;
  HS_TRY(runner::check_step_arguments(io, kv, tokens.size(), positions.size(), mask.size(),
                                      logits.size(), "the graph"));
  const auto bind_start = std::chrono::steady_clock::now();
  GraphExecutor& exec = *run->exec;
  auto at = [](size_t position) { return static_cast<int>(position); };
  HS_TRY(exec.bind_input(at(io.tokens), bytes_of(tokens)));
  HS_TRY(exec.bind_input(at(io.input_pos), bytes_of(positions)));
  const size_t tc = run->io.has_window_mask ? mask.size() / 2 : mask.size();  // [T*C]
  if (io.mask_dtype == opset::DType::kF32) {
    auto to_f32 = [](std::span<const uint16_t> from, std::vector<float>& to) {  // 0 / -255
      for (size_t i = 0; i < to.size(); ++i) {
        to[i] = from[i] == runner::AttentionMask::kAttend ? 0.0f : -255.0f;
      }
    };
    to_f32(mask.subspan(0, tc), run->mask_f32);
    if (io.has_window_mask) to_f32(mask.subspan(tc), run->window_f32);
  } else {
    HS_TRY(exec.bind_input(at(io.mask), bytes_of(mask.subspan(0, tc))));
    if (io.has_window_mask) {
      HS_TRY(exec.bind_input(at(io.window_mask), bytes_of(mask.subspan(tc))));
    }
  }
  if (io.logits_dtype == opset::DType::kF32) {
    HS_TRY(exec.bind_output(at(io.logits), std::as_writable_bytes(logits)));
  }
  for (const opset::CacheSlot& s : io.slots) {
    // Head g of a per-head layout is the g-th contiguous block of the layer's buffer.
    const auto kin = static_cast<size_t>(exec.inputs()[s.k_in].bytes);
    const auto vin = static_cast<size_t>(exec.inputs()[s.v_in].bytes);
    const auto kout = static_cast<size_t>(exec.outputs()[s.k_out].bytes);
    const auto vout = static_cast<size_t>(exec.outputs()[s.v_out].bytes);
    const auto g = static_cast<size_t>(s.head);
    const runner::KvManager& ckv = kv;
    HS_TRY(exec.bind_input(at(s.k_in), ckv.k_in(s.layer).subspan(g * kin, kin)));
    HS_TRY(exec.bind_input(at(s.v_in), ckv.v_in(s.layer).subspan(g * vin, vin)));
    HS_TRY(exec.bind_output(at(s.k_out), kv.k_out(s.layer).subspan(g * kout, kout)));
    HS_TRY(exec.bind_output(at(s.v_out), kv.v_out(s.layer).subspan(g * vout, vout)));
  }
  bind_seconds_ += seconds_since(bind_start);

  const auto exec_start = std::chrono::steady_clock::now();
  // The rows the caller reads (want_logits_rows, this step only; all by default).
  const int64_t v = static_cast<int64_t>(logits.size()) / std::max<int64_t>(ar_len, 1);
  int64_t first = 0, count = ar_len;
  if (rows_count_ >= 0) {
    first = std::clamp<int64_t>(rows_first_, 0, ar_len);
    count = std::clamp<int64_t>(rows_count_, 0, ar_len - first);
  }
  rows_count_ = -1;
  HS_TRY(exec.set_output_rows(at(io.logits), first, count == ar_len ? -1 : count));
  HS_TRY(exec.execute());
  if (io.logits_dtype != opset::DType::kF32) {  // u8 / u16 with per-tensor params
    const opset::QuantParams& q = io.logits_quant;
    const int32_t zp = q.zero_points.empty() ? 0 : q.zero_points[0];
    const size_t bytes = static_cast<size_t>(opset::dtype_size(io.logits_dtype));
    kernels::dequantize_to_f32(run->logits_q.data() + static_cast<size_t>(first * v) * bytes,
                               io.logits_dtype, count * v, q.scales[0], zp,
                               logits.data() + first * v);
  }
  execute_seconds_ += seconds_since(exec_start);
  return ok_status();
}

}  // namespace hs::runtime

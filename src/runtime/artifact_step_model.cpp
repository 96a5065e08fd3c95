// ArtifactStepModel: binds the KvManager buffers, the SmartMask mask, tokens and positions to
// the graph for the step's AR length, executes it, and hands the logits back as floats.
#include "headsplit/runtime/artifact_step_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/kernels/elementwise.h"
#include "step_io.h"

namespace hs::runtime {

struct ArtifactStepModel::Run {
  std::unique_ptr<GraphExecutor> exec;
  detail::StepIo io;
  std::vector<float> mask_f32;         // float graphs: the mask as 0 / -255
  std::vector<std::byte> logits_q;     // integer logits before dequantization
};

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

runner::StepModelInfo make_info(const detail::StepIo& io, std::vector<int64_t> ar_lens) {
  runner::StepModelInfo info;
  info.n_layers = io.n_layers;
  info.n_kv_heads = io.n_kv_heads;
  info.head_dim = io.head_dim;
  info.context_len = io.context_len;
  info.vocab_size = io.vocab_size;
  info.ar_lens = std::move(ar_lens);
  info.kv_element = io.element;
  if (io.element == runner::KvElement::kF32) return info;
  for (int64_t l = 0; l < io.n_layers; ++l) {
    for (int64_t g = 0; g < io.n_kv_heads; ++g) {
      const size_t slot =
          static_cast<size_t>(io.layout == CacheLayout::kPerHead ? l * io.n_kv_heads + g : l);
      const detail::CacheSlot& s = io.slots[slot];
      const int32_t kzp = s.k_quant.zero_points.empty() ? 0 : s.k_quant.zero_points[0];
      const int32_t vzp = s.v_quant.zero_points.empty() ? 0 : s.v_quant.zero_points[0];
      info.k_head_scales.push_back(s.k_quant.scales[0]);
      info.k_head_zero_points.push_back(kzp);
      info.v_head_scales.push_back(s.v_quant.scales[0]);
      info.v_head_zero_points.push_back(vzp);
      if (g > 0) continue;
      info.k_scales.push_back(s.k_quant.scales[0]);
      info.k_zero_points.push_back(kzp);
      info.v_scales.push_back(s.v_quant.scales[0]);
      info.v_zero_points.push_back(vzp);
    }
  }
  return info;
}

// Graphs sharing one KvManager must agree on everything but T.
Status check_compatible(const detail::StepIo& a, const detail::StepIo& b, std::string_view what) {
  auto differ = [&](std::string_view field, int64_t x, int64_t y) {
    return errorf(ErrorKind::kShape, "{}: graphs of ar length {} and {} differ in {}: {} vs {}",
                  what, a.ar_len, b.ar_len, field, x, y);
  };
  if (a.context_len != b.context_len) return differ("context length", a.context_len, b.context_len);
  if (a.vocab_size != b.vocab_size) return differ("vocabulary size", a.vocab_size, b.vocab_size);
  if (a.n_layers != b.n_layers) return differ("layer count", a.n_layers, b.n_layers);
  if (a.n_kv_heads != b.n_kv_heads) return differ("kv head count", a.n_kv_heads, b.n_kv_heads);
  if (a.head_dim != b.head_dim) return differ("head size", a.head_dim, b.head_dim);
  if (a.layout != b.layout) return differ("cache layout", static_cast<int>(a.layout), static_cast<int>(b.layout));
  if (a.element != b.element) return differ("cache element", static_cast<int>(a.element), static_cast<int>(b.element));
  for (size_t i = 0; i < a.slots.size(); ++i) {
    if (a.slots[i].k_quant != b.slots[i].k_quant || a.slots[i].v_quant != b.slots[i].v_quant) {
      return errorf(ErrorKind::kShape,
                    "{}: graphs of ar length {} and {} encode the caches of layer {} differently",
                    what, a.ar_len, b.ar_len, a.slots[i].layer);
    }
  }
  return ok_status();
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
    HS_ASSIGN_OR_RETURN(run->exec, GraphExecutor::create(
                                       artifact, g.name,
                                       {.kernels = options.kernels, .pool = model->pool_}));
    HS_ASSIGN_OR_RETURN(run->io, detail::describe_step_io(*run->exec, what));
    for (const auto& other : model->runs_) {
      HS_TRY(check_compatible(other->io, run->io, artifact->path()));
      if (other->io.ar_len == run->io.ar_len) {
        return errorf(ErrorKind::kInvalidArgument, "{}: two graphs have ar length {}",
                      artifact->path(), run->io.ar_len);
      }
    }
    const detail::StepIo& io = run->io;
    if (io.mask_type == artifact::ElementType::kF32) {
      run->mask_f32.resize(static_cast<size_t>(io.ar_len * io.context_len));
      HS_TRY(run->exec->bind_input(io.mask, std::as_bytes(std::span<const float>(run->mask_f32))));
    }
    if (io.logits_type != artifact::ElementType::kF32) {
      run->logits_q.resize(static_cast<size_t>(run->exec->outputs()[static_cast<size_t>(io.logits)].bytes));
      HS_TRY(run->exec->bind_output(io.logits, run->logits_q));
    }
    ar_lens.push_back(io.ar_len);
    model->runs_.push_back(std::move(run));
  }
  model->layout_ = model->runs_.front()->io.layout;
  model->info_ = make_info(model->runs_.front()->io, std::move(ar_lens));
  return model;
}

ArtifactStepModel::Run* ArtifactStepModel::find(int64_t ar_len) const {
  for (const auto& run : runs_) {
    if (run->io.ar_len == ar_len) return run.get();
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
  if (run == nullptr) {
    return errorf(ErrorKind::kInvalidArgument, "step: no graph for ar length {} (have {})", ar_len,
                  fmt::join(info_.ar_lens, ", "));
  }
  const detail::StepIo& io = run->io;
  const runner::KvShape& ks = kv.shape();
  if (kv.ar_len() != ar_len || ks.n_layers != io.n_layers || ks.n_kv_heads != io.n_kv_heads ||
      ks.head_dim != io.head_dim || ks.context_len != io.context_len ||
      ks.elem_size != runner::kv_element_size(io.element)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: kv cache (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element) does not "
                  "match the graph (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element)",
                  ks.n_layers, ks.n_kv_heads, ks.head_dim, ks.context_len, kv.ar_len(),
                  ks.elem_size, io.n_layers, io.n_kv_heads, io.head_dim, io.context_len, ar_len,
                  runner::kv_element_size(io.element));
  }
  const int64_t t = ar_len, c = io.context_len, v = io.vocab_size;
  if (static_cast<int64_t>(tokens.size()) != t || static_cast<int64_t>(positions.size()) != t ||
      static_cast<int64_t>(mask.size()) != t * c || static_cast<int64_t>(logits.size()) != t * v) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: got {} tokens, {} positions, {} mask and {} logits elements; the graph "
                  "needs {}, {}, {} and {}",
                  tokens.size(), positions.size(), mask.size(), logits.size(), t, t, t * c, t * v);
  }
  const auto bind_start = std::chrono::steady_clock::now();
  GraphExecutor& exec = *run->exec;
  HS_TRY(exec.bind_input(io.tokens, bytes_of(tokens)));
  HS_TRY(exec.bind_input(io.input_pos, bytes_of(positions)));
  if (io.mask_type == artifact::ElementType::kF32) {
    for (size_t i = 0; i < mask.size(); ++i) {
      run->mask_f32[i] = mask[i] == runner::AttentionMask::kAttend ? 0.0f : -255.0f;
    }
  } else {
    HS_TRY(exec.bind_input(io.mask, bytes_of(mask)));
  }
  if (io.logits_type == artifact::ElementType::kF32) {
    HS_TRY(exec.bind_output(io.logits, std::as_writable_bytes(logits)));
  }
  for (const detail::CacheSlot& s : io.slots) {
    // Head g of a per-head layout is the g-th contiguous block of the layer's buffer.
    const auto kin = static_cast<size_t>(exec.inputs()[static_cast<size_t>(s.k_in)].bytes);
    const auto vin = static_cast<size_t>(exec.inputs()[static_cast<size_t>(s.v_in)].bytes);
    const auto kout = static_cast<size_t>(exec.outputs()[static_cast<size_t>(s.k_out)].bytes);
    const auto vout = static_cast<size_t>(exec.outputs()[static_cast<size_t>(s.v_out)].bytes);
    const auto g = static_cast<size_t>(s.head);
    const runner::KvManager& ckv = kv;
    HS_TRY(exec.bind_input(s.k_in, ckv.k_in(s.layer).subspan(g * kin, kin)));
    HS_TRY(exec.bind_input(s.v_in, ckv.v_in(s.layer).subspan(g * vin, vin)));
    HS_TRY(exec.bind_output(s.k_out, kv.k_out(s.layer).subspan(g * kout, kout)));
    HS_TRY(exec.bind_output(s.v_out, kv.v_out(s.layer).subspan(g * vout, vout)));
  }
  bind_seconds_ += seconds_since(bind_start);

  const auto exec_start = std::chrono::steady_clock::now();
  HS_TRY(exec.execute());
  if (io.logits_type != artifact::ElementType::kF32) {
    const artifact::Quant& q = io.logits_quant;
    const float scale = q.scales[0];
    const int32_t zp = q.zero_points.empty() ? 0 : q.zero_points[0];
    kernels::dequantize_to_f32(run->logits_q.data(),
                              io.logits_type == artifact::ElementType::kU16 ? opset::DType::kU16
                                                                            : opset::DType::kU8,
                              static_cast<int64_t>(logits.size()), scale, zp, logits.data());
  }
  execute_seconds_ += seconds_since(exec_start);
  return ok_status();
}

}  // namespace hs::runtime

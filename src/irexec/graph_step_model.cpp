// GraphStepModel: binds the KvManager buffers, the SmartMask mask, tokens and positions to the
// inputs of the graph for the step's AR length, runs the reference interpreter, and copies
// logits and the new K/V entries back (dequantizing / quantizing integer caches).
#include "headsplit/irexec/graph_step_model.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "headsplit/kernels/quant.h"

namespace hs::irexec {

struct GraphStepModel::Run {
  std::shared_ptr<const ir::Graph> graph;
  opset::StepIo io;
  std::optional<ir::Interpreter> interpreter;
  std::vector<ir::NamedTensor> inputs;  // graph.inputs() order; shapes fixed, data per step
  std::vector<ir::InputView> views;     // per step: `inputs`, or an f32 cache read in place
  std::vector<ir::Tensor> outputs;      // graph outputs of the last step (storage reused)
  ir::Interpreter::Observer observer;
};

namespace {

using runner::KvElement;

// dst[i] = real value of element i of `src` (f32 as is; u8/u16: scale * (q - zero_point)).
void decode_cache(std::span<const std::byte> src, KvElement element, const ir::QuantParams& q,
                  std::vector<float>& dst) {
  if (element == KvElement::kF32) {
    std::memcpy(dst.data(), src.data(), dst.size() * sizeof(float));
    return;
  }
  const float scale = q.scales[0];
  const int32_t zp = q.zero_points[0];
  for (size_t i = 0; i < dst.size(); ++i) {
    int32_t v = 0;
    if (element == KvElement::kU8) {
      v = static_cast<uint8_t>(src[i]);
    } else {
      uint16_t u = 0;
      std::memcpy(&u, src.data() + 2 * i, 2);
      v = u;
    }
    dst[i] = kernels::dequantize_one(v, scale, zp);
  }
}

// Stores `values` into `dst` as the cache element type (u8/u16: quantized with `q`).
void encode_cache(std::span<const float> values, KvElement element, const ir::QuantParams& q,
                  std::span<std::byte> dst) {
  if (element == KvElement::kF32) {
    std::memcpy(dst.data(), values.data(), values.size() * sizeof(float));
    return;
  }
  const float scale = q.scales[0];
  const int32_t zp = q.zero_points[0];
  for (size_t i = 0; i < values.size(); ++i) {
    const int32_t v = kernels::quantize_one(values[i], scale, zp, q.qmin, q.qmax);
    if (element == KvElement::kU8) {
      dst[i] = static_cast<std::byte>(static_cast<uint8_t>(v));
    } else {
      const auto u = static_cast<uint16_t>(v);
      std::memcpy(dst.data() + 2 * i, &u, 2);
    }
  }
}

// The SmartMask uint16 value as the graph's mask input: float graphs take 0 (attend) / -255
// (masked); a quantized mask input takes the value as its quantized form.
float mask_value(uint16_t m, const ir::QuantParams& q) {
  if (q.is_quantized()) return kernels::dequantize_one(m, q.scales[0], q.zero_points[0]);
  return m == runner::AttentionMask::kAttend ? 0.0f : -255.0f;
}

// The graph's I/O against the step-I/O contract.
Result<opset::StepIo> describe_io(const ir::Graph& g) {
  std::vector<opset::NamedType> inputs, outputs;
  for (ir::ValueId id : g.inputs()) inputs.push_back({g.value(id).name, &g.type(id)});
  for (ir::ValueId id : g.outputs()) outputs.push_back({g.value(id).name, &g.type(id)});
  return opset::describe_step_io(inputs, outputs, fmt::format("graph '{}'", g.name()));
}

}  // namespace

GraphStepModel::~GraphStepModel() = default;

Result<std::unique_ptr<GraphStepModel>> GraphStepModel::create(
    std::vector<ir::Graph> graphs, const GraphStepModelOptions& options) {
  std::vector<std::shared_ptr<const ir::Graph>> shared;
  for (ir::Graph& g : graphs) shared.push_back(std::make_shared<const ir::Graph>(std::move(g)));
  return create(std::move(shared), options);
}

Result<std::unique_ptr<GraphStepModel>> GraphStepModel::create(
    std::vector<std::shared_ptr<const ir::Graph>> graphs, const GraphStepModelOptions& options) {
  if (graphs.empty()) {
    return Error(ErrorKind::kInvalidArgument, "graph step model: no graph given");
  }
  std::unique_ptr<GraphStepModel> model(new GraphStepModel());
  std::vector<int64_t> ar_lens;
  for (auto& graph : graphs) {
    HS_CHECK(graph != nullptr, "graph step model: null graph");
    auto run = std::make_unique<Run>();
    run->graph = std::move(graph);
    HS_ASSIGN_OR_RETURN(run->io, describe_io(*run->graph));
    if (!model->runs_.empty()) {
      const Run& first = *model->runs_.front();
      HS_TRY(opset::check_same_kv_caches(
          first.io, run->io,
          fmt::format("graphs '{}' and '{}'", first.graph->name(), run->graph->name())));
      for (const auto& other : model->runs_) {
        if (other->io.dims.ar_len == run->io.dims.ar_len) {
          return errorf(ErrorKind::kInvalidArgument, "graphs '{}' and '{}' both have ar length {}",
                        other->graph->name(), run->graph->name(), run->io.dims.ar_len);
        }
      }
    }
    HS_ASSIGN_OR_RETURN(ir::Interpreter interpreter,
                        ir::Interpreter::create(*run->graph, options.interpreter));
    run->interpreter.emplace(std::move(interpreter));
    // f32 caches are read in place from the KvManager (step): their tensors get a shape but
    // no data (filled only if a buffer is ever misaligned).
    std::vector<bool> in_place(run->graph->inputs().size(), false);
    if (runner::kv_element_of(run->io.cache_dtype) == KvElement::kF32) {
      for (const opset::CacheSlot& s : run->io.slots) in_place[s.k_in] = in_place[s.v_in] = true;
    }
    for (ir::ValueId id : run->graph->inputs()) {
      const ir::TensorType& type = run->graph->type(id);
      const auto n = static_cast<size_t>(type.numel());
      ir::Tensor t;
      if (type.dtype == ir::DType::kI32) {
        t = ir::Tensor::from_i32(type.shape, std::vector<int32_t>(n));
      } else if (in_place[run->inputs.size()]) {
        t = ir::Tensor::from_f32(type.shape, {});
      } else {
        t = ir::Tensor::zeros_f32(type.shape);
      }
      run->inputs.push_back({run->graph->value(id).name, std::move(t)});
    }
    ar_lens.push_back(run->io.dims.ar_len);
    model->runs_.push_back(std::move(run));
  }
  model->layout_ = model->runs_.front()->io.dims.layout;
  model->info_ = runner::step_model_info(model->runs_.front()->io, std::move(ar_lens));
  HS_ASSIGN_OR_RETURN(
      model->info_.sliding_window,
      runner::check_sliding_window(model->runs_.front()->io, options.sliding_window,
                                   fmt::format("graph '{}'", model->runs_.front()->graph->name())));
  return model;
}

GraphStepModel::Run* GraphStepModel::find(int64_t ar_len) {
  for (auto& run : runs_) {
    if (run->io.dims.ar_len == ar_len) return run.get();
  }
  return nullptr;
}

const ir::Graph* GraphStepModel::graph(int64_t ar_len) const {
  for (const auto& run : runs_) {
    if (run->io.dims.ar_len == ar_len) return run->graph.get();
  }
  return nullptr;
}

Status GraphStepModel::set_observer(int64_t ar_len, ir::Interpreter::Observer observer) {
  Run* run = find(ar_len);
  if (run == nullptr) {
    return errorf(ErrorKind::kInvalidArgument, "graph step model: no graph for ar length {}",
                  ar_len);
  }
  run->observer = std::move(observer);
  return ok_status();
}

Status GraphStepModel::step(int64_t ar_len, std::span<const int32_t> tokens,
                            std::span<const int32_t> positions, std::span<const uint16_t> mask,
                            runner::KvManager& kv, std::span<float> logits) {
  Run* run = find(ar_len);
  if (run == nullptr) return runner::no_graph_for(ar_len, info_.ar_lens);
  const opset::StepIo& io = run->io;
  HS_TRY(runner::check_step_arguments(io, kv, tokens.size(), positions.size(), mask.size(),
                                      logits.size(),
                                      fmt::format("graph '{}'", run->graph->name())));
  const KvElement element = runner::kv_element_of(io.cache_dtype);
  const auto es = static_cast<size_t>(runner::kv_element_size(element));

  // Inputs.
  auto& in = run->inputs;
  std::copy(tokens.begin(), tokens.end(), in[io.tokens].tensor.i.begin());
  std::copy(positions.begin(), positions.end(), in[io.input_pos].tensor.i.begin());
  std::vector<float>& m = in[io.mask].tensor.f;
  for (size_t i = 0; i < m.size(); ++i) m[i] = mask_value(mask[i], io.mask_quant);
  if (io.has_window_mask) {  // mask [2, T, C]: the window mask follows
    std::vector<float>& wm = in[io.window_mask].tensor.f;
    for (size_t i = 0; i < wm.size(); ++i) wm[i] = mask_value(mask[m.size() + i], io.mask_quant);
  }
  auto& views = run->views;
  views.clear();
  for (const ir::NamedTensor& t : in) views.push_back(ir::InputView::of(t));
  // A cache input: an f32 cache is read in place from the KvManager buffer, u8/u16 ones are
  // decoded into the input tensor. Head g of a per-head layout is the g-th block of
  // numel(slot tensor) elements.
  auto bind_cache = [&](size_t input, std::span<const std::byte> buffer, int64_t head,
                        const ir::QuantParams& q) {
    const ir::Tensor& t = in[input].tensor;
    const auto count = static_cast<size_t>(t.numel());
    const std::span<const std::byte> src =
        buffer.subspan(static_cast<size_t>(head) * count * es, count * es);
    if (element == KvElement::kF32 &&
        reinterpret_cast<uintptr_t>(src.data()) % alignof(float) == 0) {
      views[input].f = {reinterpret_cast<const float*>(src.data()), count};
    } else {
      std::vector<float>& f = in[input].tensor.f;
      f.resize(count);
      decode_cache(src, element, q, f);
      views[input].f = f;
    }
  };
  for (const opset::CacheSlot& s : io.slots) {
    bind_cache(s.k_in, kv.k_in(s.layer), s.head, s.k_quant);
    bind_cache(s.v_in, kv.v_in(s.layer), s.head, s.v_quant);
  }

  std::vector<ir::Tensor>& out = run->outputs;
  HS_TRY(run->interpreter->run_into(views, out, run->observer));

  // Outputs.
  const std::vector<float>& lf = out[io.logits].f;
  std::copy(lf.begin(), lf.end(), logits.begin());
  for (const opset::CacheSlot& s : io.slots) {
    const std::vector<float>& kf = out[s.k_out].f;
    const std::vector<float>& vf = out[s.v_out].f;
    encode_cache(
        kf, element, s.k_quant,
        kv.k_out(s.layer).subspan(static_cast<size_t>(s.head) * kf.size() * es, kf.size() * es));
    encode_cache(
        vf, element, s.v_quant,
        kv.v_out(s.layer).subspan(static_cast<size_t>(s.head) * vf.size() * es, vf.size() * es));
  }
  return ok_status();
}

}  // namespace hs::irexec

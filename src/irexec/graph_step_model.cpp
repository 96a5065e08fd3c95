// GraphStepModel: binds the KvManager buffers, the SmartMask mask, tokens and positions to the
// inputs of the graph for the step's AR length, runs the reference interpreter, and copies
// logits and the new K/V entries back (dequantizing / quantizing integer caches).
#include "headsplit/irexec/graph_step_model.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "graph_io.h"
#include "headsplit/kernels/quant.h"

namespace hs::irexec {

struct GraphStepModel::Run {
  std::shared_ptr<const ir::Graph> graph;
  detail::GraphIo io;
  std::optional<ir::Interpreter> interpreter;
  std::vector<ir::NamedTensor> inputs;  // graph.inputs() order; shapes fixed, data per step
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

runner::StepModelInfo make_info(const detail::GraphIo& io, std::vector<int64_t> ar_lens) {
  runner::StepModelInfo info;
  info.n_layers = io.n_layers;
  info.n_kv_heads = io.n_kv_heads;
  info.head_dim = io.head_dim;
  info.context_len = io.context_len;
  info.vocab_size = io.vocab_size;
  info.ar_lens = std::move(ar_lens);
  info.kv_element = io.element;
  if (io.element == KvElement::kF32) return info;
  for (int64_t l = 0; l < io.n_layers; ++l) {
    for (int64_t g = 0; g < io.n_kv_heads; ++g) {
      const size_t slot =
          static_cast<size_t>(io.layout == CacheLayout::kPerHead ? l * io.n_kv_heads + g : l);
      const detail::CacheSlot& s = io.slots[slot];
      info.k_head_scales.push_back(s.k_quant.scales[0]);
      info.k_head_zero_points.push_back(s.k_quant.zero_points[0]);
      info.v_head_scales.push_back(s.v_quant.scales[0]);
      info.v_head_zero_points.push_back(s.v_quant.zero_points[0]);
      if (g > 0) continue;
      info.k_scales.push_back(s.k_quant.scales[0]);
      info.k_zero_points.push_back(s.k_quant.zero_points[0]);
      info.v_scales.push_back(s.v_quant.scales[0]);
      info.v_zero_points.push_back(s.v_quant.zero_points[0]);
    }
  }
  return info;
}

// Graphs sharing one KvManager must agree on everything but T.
Status check_compatible(const detail::GraphIo& a, const ir::Graph& ga, const detail::GraphIo& b,
                        const ir::Graph& gb) {
  auto differ = [&](std::string_view what, auto x, auto y) {
    return errorf(ErrorKind::kShape,
                  "graphs '{}' (ar length {}) and '{}' (ar length {}) differ in {}: {} vs {}",
                  ga.name(), a.ar_len, gb.name(), b.ar_len, what, x, y);
  };
  if (a.context_len != b.context_len) return differ("context length", a.context_len, b.context_len);
  if (a.vocab_size != b.vocab_size) return differ("vocabulary size", a.vocab_size, b.vocab_size);
  if (a.n_layers != b.n_layers) return differ("layer count", a.n_layers, b.n_layers);
  if (a.n_kv_heads != b.n_kv_heads) return differ("kv head count", a.n_kv_heads, b.n_kv_heads);
  if (a.head_dim != b.head_dim) return differ("head size", a.head_dim, b.head_dim);
  auto layout_name = [](CacheLayout l) {
    return l == CacheLayout::kPerLayer ? "per-layer" : "per-head";
  };
  if (a.layout != b.layout)
    return differ("cache layout", layout_name(a.layout), layout_name(b.layout));
  for (size_t i = 0; i < a.slots.size(); ++i) {
    for (bool is_k : {true, false}) {
      const ir::ValueId ia = ga.inputs()[is_k ? a.slots[i].k_in : a.slots[i].v_in];
      const ir::ValueId ib = gb.inputs()[is_k ? b.slots[i].k_in : b.slots[i].v_in];
      const ir::TensorType& ta = ga.type(ia);
      const ir::TensorType& tb = gb.type(ib);
      if (ta.dtype != tb.dtype || ta.quant != tb.quant) {
        return differ(fmt::format("the element type or encoding of '{}'", ga.value(ia).name),
                      ir::type_str(ta), ir::type_str(tb));
      }
    }
  }
  return ok_status();
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
    HS_ASSIGN_OR_RETURN(run->io, detail::describe_graph_io(*run->graph));
    if (!model->runs_.empty()) {
      const Run& first = *model->runs_.front();
      HS_TRY(check_compatible(first.io, *first.graph, run->io, *run->graph));
      for (const auto& other : model->runs_) {
        if (other->io.ar_len == run->io.ar_len) {
          return errorf(ErrorKind::kInvalidArgument, "graphs '{}' and '{}' both have ar length {}",
                        other->graph->name(), run->graph->name(), run->io.ar_len);
        }
      }
    }
    HS_ASSIGN_OR_RETURN(ir::Interpreter interpreter,
                        ir::Interpreter::create(*run->graph, options.interpreter));
    run->interpreter.emplace(std::move(interpreter));
    for (ir::ValueId id : run->graph->inputs()) {
      const ir::TensorType& type = run->graph->type(id);
      const auto n = static_cast<size_t>(type.numel());
      ir::Tensor t = type.dtype == ir::DType::kI32
                         ? ir::Tensor::from_i32(type.shape, std::vector<int32_t>(n))
                         : ir::Tensor::zeros_f32(type.shape);
      run->inputs.push_back({run->graph->value(id).name, std::move(t)});
    }
    ar_lens.push_back(run->io.ar_len);
    model->runs_.push_back(std::move(run));
  }
  model->layout_ = model->runs_.front()->io.layout;
  model->info_ = make_info(model->runs_.front()->io, std::move(ar_lens));
  return model;
}

GraphStepModel::Run* GraphStepModel::find(int64_t ar_len) {
  for (auto& run : runs_) {
    if (run->io.ar_len == ar_len) return run.get();
  }
  return nullptr;
}

const ir::Graph* GraphStepModel::graph(int64_t ar_len) const {
  for (const auto& run : runs_) {
    if (run->io.ar_len == ar_len) return run->graph.get();
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
  if (run == nullptr) {
    return errorf(ErrorKind::kInvalidArgument, "step: no graph for ar length {} (have {})", ar_len,
                  fmt::join(info_.ar_lens, ", "));
  }
  const detail::GraphIo& io = run->io;
  const int64_t t = ar_len, c = io.context_len, v = io.vocab_size;
  const runner::KvShape& ks = kv.shape();
  if (kv.ar_len() != t || ks.n_layers != io.n_layers || ks.n_kv_heads != io.n_kv_heads ||
      ks.head_dim != io.head_dim || ks.context_len != c ||
      ks.elem_size != runner::kv_element_size(io.element)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: kv cache (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element) does not "
                  "match graph '{}' (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element)",
                  ks.n_layers, ks.n_kv_heads, ks.head_dim, ks.context_len, kv.ar_len(),
                  ks.elem_size, run->graph->name(), io.n_layers, io.n_kv_heads, io.head_dim, c, t,
                  runner::kv_element_size(io.element));
  }
  if (static_cast<int64_t>(tokens.size()) != t || static_cast<int64_t>(positions.size()) != t ||
      static_cast<int64_t>(mask.size()) != t * c || static_cast<int64_t>(logits.size()) != t * v) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: got {} tokens, {} positions, {} mask and {} logits elements; graph '{}' "
                  "needs {}, {}, {} and {}",
                  tokens.size(), positions.size(), mask.size(), logits.size(), run->graph->name(),
                  t, t, t * c, t * v);
  }

  // Inputs.
  auto& in = run->inputs;
  std::copy(tokens.begin(), tokens.end(), in[io.tokens].tensor.i.begin());
  std::copy(positions.begin(), positions.end(), in[io.input_pos].tensor.i.begin());
  std::vector<float>& m = in[io.mask].tensor.f;
  for (size_t i = 0; i < mask.size(); ++i) m[i] = mask_value(mask[i], io.mask_quant);
  const auto es = static_cast<size_t>(ks.elem_size);
  for (const detail::CacheSlot& s : io.slots) {
    // Head g of a per-head layout is the g-th block of numel(slot tensor) elements.
    std::vector<float>& kf = in[s.k_in].tensor.f;
    std::vector<float>& vf = in[s.v_in].tensor.f;
    decode_cache(
        kv.k_in(s.layer).subspan(static_cast<size_t>(s.head) * kf.size() * es, kf.size() * es),
        io.element, s.k_quant, kf);
    decode_cache(
        kv.v_in(s.layer).subspan(static_cast<size_t>(s.head) * vf.size() * es, vf.size() * es),
        io.element, s.v_quant, vf);
  }

  HS_ASSIGN_OR_RETURN(std::vector<ir::Tensor> out,
                      run->interpreter->run(run->inputs, run->observer));

  // Outputs.
  const std::vector<float>& lf = out[io.logits].f;
  std::copy(lf.begin(), lf.end(), logits.begin());
  for (const detail::CacheSlot& s : io.slots) {
    const std::vector<float>& kf = out[s.k_out].f;
    const std::vector<float>& vf = out[s.v_out].f;
    encode_cache(
        kf, io.element, s.k_quant,
        kv.k_out(s.layer).subspan(static_cast<size_t>(s.head) * kf.size() * es, kf.size() * es));
    encode_cache(
        vf, io.element, s.v_quant,
        kv.v_out(s.layer).subspan(static_cast<size_t>(s.head) * vf.size() * es, vf.size() * es));
  }
  return ok_status();
}

}  // namespace hs::irexec

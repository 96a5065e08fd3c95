#include "testing/graph_fixtures.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

namespace hs::testing {

using ir::DType;
using ir::Graph;
using ir::QuantParams;
using ir::ValueId;

std::vector<ir::NamedTensor> random_step_inputs(const Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto mask_id = g.find_value("attention_mask");
  const ir::Shape& ms = g.type(*mask_id).shape;  // [1,T,C]
  const int64_t T = ms[1], C = ms[2], P = C - T;
  const int64_t vocab = g.type(g.outputs()[0]).shape[2];
  const auto n_past = static_cast<int64_t>(rng() % static_cast<uint64_t>(P + 1));
  std::vector<ir::NamedTensor> inputs;
  for (ValueId id : g.inputs()) {
    const ir::Value& v = g.value(id);
    const ir::Shape& s = v.type.shape;
    if (v.name == "tokens") {
      std::vector<int32_t> t(static_cast<size_t>(T));
      for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
      inputs.push_back({v.name, ir::Tensor::from_i32(s, t)});
    } else if (v.name == "input_pos") {
      std::vector<int32_t> p(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) p[static_cast<size_t>(t)] = static_cast<int32_t>(n_past + t);
      inputs.push_back({v.name, ir::Tensor::from_i32(s, p)});
    } else if (v.name == "attention_mask" || v.name == "window_attention_mask") {
      // Causal; the window mask (sliding-window layers) sees the last 4 positions only.
      const int64_t w = v.name == "attention_mask" ? C + 1 : 4;
      std::vector<float> m(static_cast<size_t>(T * C), -255.0f);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t pos = n_past + t;
        for (int64_t j = 0; j < n_past; ++j) {
          if (pos - j < w) m[static_cast<size_t>(t * C + j)] = 0.0f;
        }
        for (int64_t j = 0; j <= t; ++j) {
          if (t - j < w) m[static_cast<size_t>(t * C + P + j)] = 0.0f;
        }
      }
      inputs.push_back({v.name, ir::Tensor::from_f32(s, m)});
    } else {
      std::vector<float> c(static_cast<size_t>(ir::num_elements(s)));
      for (auto& x : c) x = normal(rng);
      inputs.push_back({v.name, ir::Tensor::from_f32(s, c)});
    }
  }
  return inputs;
}

namespace {

void quantize_weight(Graph& g, ValueId id, const SyntheticQuant& o) {
  ir::Value& v = g.value(id);
  std::span<const float> w(reinterpret_cast<const float*>(v.data->bytes().data()),
                           static_cast<size_t>(v.type.numel()));
  const int64_t rows = v.type.shape[0];
  const int64_t cols = v.type.numel() / rows;
  auto buffer = std::make_shared<HeapBuffer>(static_cast<size_t>(rows * cols));
  auto* q = reinterpret_cast<int8_t*>(buffer->mutable_bytes().data());
  const bool block = o.weights == SyntheticWeights::kPerBlockInt4 && v.type.rank() >= 2;
  const int64_t bs = block ? o.block : cols;
  const int64_t blocks = (cols + bs - 1) / bs;
  const int32_t qmax = block ? 7 : 127;
  std::vector<float> scales;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      float amax = 0;
      for (int64_t c = b * bs; c < std::min(cols, (b + 1) * bs); ++c) {
        amax = std::max(amax, std::abs(w[static_cast<size_t>(r * cols + c)]));
      }
      const float scale = std::max(amax / static_cast<float>(qmax), 1e-8f);
      scales.push_back(scale);
      for (int64_t c = b * bs; c < std::min(cols, (b + 1) * bs); ++c) {
        float x = std::nearbyint(w[static_cast<size_t>(r * cols + c)] / scale);
        q[r * cols + c] = static_cast<int8_t>(std::clamp(x, -static_cast<float>(qmax),
                                                         static_cast<float>(qmax)));
      }
    }
  }
  if (block) {
    v.type.dtype = DType::kI4;
    v.type.quant = QuantParams::per_block(0, 1, bs, scales, 4, -7, 7);
  } else {
    v.type.dtype = DType::kI8;
    v.type.quant = QuantParams::per_axis(0, scales, std::vector<int32_t>(scales.size(), 0), 8,
                                         -127, 127);
  }
  size_t size = buffer->size();
  v.data = BufferView{std::move(buffer), 0, size};
}

QuantParams u16_params(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  const float scale = std::max((hi - lo) / 65535.0f, 1e-9f);
  const auto zp = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.0f, 65535.0f));
  return QuantParams::per_tensor(scale, zp, 16, 0, 65535);
}

}  // namespace

Status quantize_synthetic(Graph& g, const SyntheticQuant& o) {
  // Activation ranges from one float run (before weights change).
  std::map<ValueId, std::pair<float, float>> ranges;
  if (o.activations) {
    auto inputs = random_step_inputs(g, o.calibration_seed);
    HS_ASSIGN_OR_RETURN(ir::Interpreter interp, ir::Interpreter::create(g));
    auto observe = [&](ValueId id, const ir::Tensor& t) {
      if (t.dtype != DType::kF32 || t.f.empty()) return;
      auto [mn, mx] = std::minmax_element(t.f.begin(), t.f.end());
      ranges[id] = {*mn, *mx};
    };
    HS_TRY(interp.run(inputs, observe));
    for (const auto& in : inputs) {
      if (in.tensor.dtype != DType::kF32) continue;
      auto [mn, mx] = std::minmax_element(in.tensor.f.begin(), in.tensor.f.end());
      ranges[*g.find_value(in.name)] = {*mn, *mx};
    }
  }
  if (o.weights != SyntheticWeights::kNone) {
    for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
      const ir::Node& node = g.node(n);
      if (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear) continue;
      ValueId w = node.inputs[1];
      if (g.value(w).is_constant() && g.type(w).dtype == DType::kF32) quantize_weight(g, w, o);
    }
  }
  if (!o.activations) return {};
  for (ValueId id : g.inputs()) {
    ir::TensorType& t = g.value(id).type;
    if (t.dtype != DType::kF32) continue;
    auto [lo, hi] = ranges[id];
    t.quant = g.value(id).name == "attention_mask"
                  ? QuantParams::per_tensor(255.0f / 65535.0f, 65535, 16, 0, 65535)
                  : u16_params(lo, hi);
    t.dtype = DType::kU16;
  }
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    for (ValueId out : node.outputs) {
      ir::TensorType& t = g.value(out).type;
      if (t.dtype != DType::kF32) continue;
      const ir::TensorType& in = g.type(node.inputs[0]);
      if (ir::op_info(node.op).is_layout && in.quant.kind == ir::QuantKind::kPerTensor) {
        t.quant = in.quant;  // layout ops share their input's params: no requantization
      } else {
        auto [lo, hi] = ranges[out];
        t.quant = u16_params(lo, hi);
      }
      t.dtype = DType::kU16;
    }
  }
  return {};
}

bool bit_identical(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b,
                   std::string* why) {
  if (a.size() != b.size()) {
    *why = fmt::format("{} vs {} outputs", a.size(), b.size());
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape != b[i].shape || a[i].dtype != b[i].dtype) {
      *why = fmt::format("output {}: shape {} vs {}", i, ir::shape_str(a[i].shape),
                         ir::shape_str(b[i].shape));
      return false;
    }
    for (size_t k = 0; k < a[i].f.size(); ++k) {
      if (std::memcmp(&a[i].f[k], &b[i].f[k], sizeof(float)) != 0) {
        *why = fmt::format("output {} element {}: {} vs {}", i, k, a[i].f[k], b[i].f[k]);
        return false;
      }
    }
    if (a[i].i != b[i].i) {
      *why = fmt::format("output {}: integer data differs", i);
      return false;
    }
  }
  return true;
}

}  // namespace hs::testing

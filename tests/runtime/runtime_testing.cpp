// Runtime test helpers: IR graphs -> artifact, seeded inputs, interpreter vs runtime runs.
#include "runtime_testing.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>

#include "headsplit/backend/lower.h"
#include "headsplit/kernels/quant.h"
#include "testing/testing.h"

namespace hs::runtime::testing {

namespace {

template <typename T>
void put(std::vector<std::byte>& out, size_t i, T v) {
  std::memcpy(out.data() + i * sizeof(T), &v, sizeof(T));
}

template <typename T>
T get(const std::vector<std::byte>& in, size_t i) {
  T v;
  std::memcpy(&v, in.data() + i * sizeof(T), sizeof(T));
  return v;
}

// The bytes of `t` in the storage of artifact tensor `d`.
std::vector<std::byte> to_storage(const ir::Tensor& t, const artifact::TensorDesc& d) {
  const auto n = static_cast<size_t>(t.numel());
  std::vector<std::byte> out;
  const float scale = d.quant.scales.empty() ? 1.f : d.quant.scales[0];
  const int32_t zp = d.quant.zero_points.empty() ? 0 : d.quant.zero_points[0];
  auto q = [&](size_t i) {
    return kernels::quantize_one(t.f[i], scale, zp, d.quant.qmin, d.quant.qmax);
  };
  switch (d.dtype) {
    case artifact::ElementType::kF32:
      out.resize(n * 4);
      std::memcpy(out.data(), t.f.data(), n * 4);
      break;
    case artifact::ElementType::kI32:
      out.resize(n * 4);
      std::memcpy(out.data(), t.i.data(), n * 4);
      break;
    case artifact::ElementType::kU8:
      out.resize(n);
      for (size_t i = 0; i < n; ++i) put<uint8_t>(out, i, static_cast<uint8_t>(q(i)));
      break;
    case artifact::ElementType::kI8:
      out.resize(n);
      for (size_t i = 0; i < n; ++i) put<int8_t>(out, i, static_cast<int8_t>(q(i)));
      break;
    case artifact::ElementType::kU16:
      out.resize(n * 2);
      for (size_t i = 0; i < n; ++i) put<uint16_t>(out, i, static_cast<uint16_t>(q(i)));
      break;
    case artifact::ElementType::kI16:
      out.resize(n * 2);
      for (size_t i = 0; i < n; ++i) put<int16_t>(out, i, static_cast<int16_t>(q(i)));
      break;
    default: break;
  }
  return out;
}

ir::Tensor from_storage(const std::vector<std::byte>& bytes, const artifact::TensorDesc& d) {
  ir::Tensor t;
  t.shape = d.shape;
  const auto n = static_cast<size_t>(t.numel());
  const float scale = d.quant.scales.empty() ? 1.f : d.quant.scales[0];
  const int32_t zp = d.quant.zero_points.empty() ? 0 : d.quant.zero_points[0];
  if (d.dtype == artifact::ElementType::kI32) {
    t.dtype = ir::DType::kI32;
    t.i.resize(n);
    std::memcpy(t.i.data(), bytes.data(), n * 4);
    return t;
  }
  t.f.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (d.dtype) {
      case artifact::ElementType::kF32: t.f[i] = get<float>(bytes, i); break;
      case artifact::ElementType::kU8: t.f[i] = kernels::dequantize_one(get<uint8_t>(bytes, i), scale, zp); break;
      case artifact::ElementType::kI8: t.f[i] = kernels::dequantize_one(get<int8_t>(bytes, i), scale, zp); break;
      case artifact::ElementType::kU16: t.f[i] = kernels::dequantize_one(get<uint16_t>(bytes, i), scale, zp); break;
      case artifact::ElementType::kI16: t.f[i] = kernels::dequantize_one(get<int16_t>(bytes, i), scale, zp); break;
      default: break;
    }
  }
  return t;
}

}  // namespace

Result<std::shared_ptr<const artifact::LoadedArtifact>> make_artifact(
    const std::vector<NamedGraph>& graphs, const backend::MemoryPlanOptions& memory) {
  static std::atomic<int> counter{0};
  const std::string path = fmt::format("{}/a{}.hsa", hs::testing::temp_dir(), counter++);
  std::vector<backend::MemoryPlan> plans;
  plans.reserve(graphs.size());
  artifact::ModelMetadata metadata;
  metadata.model_name = "test";
  for (const NamedGraph& g : graphs) {
    HS_ASSIGN_OR_RETURN(backend::MemoryPlan plan, backend::plan_memory(*g.graph, memory));
    plans.push_back(std::move(plan));
    metadata.ar_lengths.push_back(g.ar_len);
  }
  std::vector<backend::GraphToLower> to_lower;
  for (size_t i = 0; i < graphs.size(); ++i) {
    to_lower.push_back({graphs[i].graph, graphs[i].name, graphs[i].ar_len, &plans[i]});
  }
  HS_ASSIGN_OR_RETURN(backend::LoweredProgram lowered,
                      backend::lower(to_lower, metadata, tokenizer::TokenizerData{}));
  HS_TRY(backend::write_lowered(path, lowered));
  HS_ASSIGN_OR_RETURN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
  return std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
}

Result<std::shared_ptr<const artifact::LoadedArtifact>> make_artifact(const ir::Graph& graph) {
  return make_artifact({{.name = "g", .graph = &graph, .ar_len = 1}});
}

std::vector<ir::NamedTensor> random_inputs(const ir::Graph& graph, uint64_t seed,
                                           int32_t index_limit) {
  std::mt19937_64 rng(seed);
  std::vector<ir::NamedTensor> out;
  for (ir::ValueId id : graph.inputs()) {
    const ir::TensorType& type = graph.type(id);
    const auto n = static_cast<size_t>(type.numel());
    ir::Tensor t;
    t.shape = type.shape;
    if (!type.is_real()) {
      t.dtype = ir::DType::kI32;
      t.i.resize(n);
      const int32_t limit = type.dtype == ir::DType::kBool ? 2 : index_limit;
      for (auto& v : t.i) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(limit));
    } else if (type.quant.kind == ir::QuantKind::kPerTensor) {
      const ir::QuantParams& q = type.quant;
      t.f.resize(n);
      for (auto& v : t.f) {
        const auto range = static_cast<uint64_t>(q.qmax - q.qmin + 1);
        const int32_t qv = q.qmin + static_cast<int32_t>(rng() % range);
        v = kernels::dequantize_one(qv, q.scales[0], q.zero_points[0]);
      }
    } else {
      std::uniform_real_distribution<float> dist(-2.f, 2.f);
      t.f.resize(n);
      for (auto& v : t.f) v = dist(rng);
    }
    out.push_back({graph.value(id).name, std::move(t)});
  }
  return out;
}

Result<std::vector<ir::Tensor>> run_executor(GraphExecutor& exec, const ir::Graph& graph,
                                             const std::vector<ir::NamedTensor>& inputs) {
  const artifact::GraphDesc& g = exec.graph();
  std::vector<std::vector<std::byte>> in_bytes(exec.inputs().size());
  for (size_t i = 0; i < exec.inputs().size(); ++i) {
    const artifact::TensorDesc& d = g.tensors[static_cast<size_t>(g.inputs[i])];
    const ir::NamedTensor* named = nullptr;
    for (const ir::NamedTensor& n : inputs) {
      if (n.name == d.name) named = &n;
    }
    if (named == nullptr) return errorf(ErrorKind::kNotFound, "no test input '{}'", d.name);
    in_bytes[i] = to_storage(named->tensor, d);
    HS_TRY(exec.bind_input(static_cast<int>(i), in_bytes[i]));
  }
  std::vector<std::vector<std::byte>> out_bytes(exec.outputs().size());
  for (size_t i = 0; i < exec.outputs().size(); ++i) {
    out_bytes[i].resize(static_cast<size_t>(exec.outputs()[i].bytes));
    HS_TRY(exec.bind_output(static_cast<int>(i), out_bytes[i]));
  }
  HS_TRY(exec.execute());
  std::vector<ir::Tensor> outs;
  for (size_t i = 0; i < exec.outputs().size(); ++i) {
    outs.push_back(from_storage(out_bytes[i], g.tensors[static_cast<size_t>(g.outputs[i])]));
  }
  (void)graph;
  return outs;
}

Result<BothRuns> run_both(const ir::Graph& graph, const std::vector<ir::NamedTensor>& inputs,
                          KernelChoice kernels, const backend::MemoryPlanOptions& memory) {
  BothRuns runs;
  HS_ASSIGN_OR_RETURN(runs.reference, ir::run_graph(graph, inputs));
  HS_ASSIGN_OR_RETURN(auto artifact,
                      make_artifact({{.name = "g", .graph = &graph, .ar_len = 1}}, memory));
  HS_ASSIGN_OR_RETURN(auto exec, GraphExecutor::create(artifact, "g", {.kernels = kernels}));
  runs.summary = exec->summary();
  HS_ASSIGN_OR_RETURN(runs.runtime, run_executor(*exec, graph, inputs));
  return runs;
}

double max_abs_diff(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].shape != b[t].shape || a[t].f.size() != b[t].f.size() || a[t].i != b[t].i) {
      return INFINITY;
    }
    for (size_t i = 0; i < a[t].f.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(a[t].f[i] - b[t].f[i])));
    }
  }
  return worst;
}

bool bit_identical(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b,
                   std::string* why) {
  if (a.size() != b.size()) {
    *why = fmt::format("{} vs {} tensors", a.size(), b.size());
    return false;
  }
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].shape != b[t].shape || a[t].f.size() != b[t].f.size() || a[t].i != b[t].i) {
      *why = fmt::format("tensor {}: shapes or int values differ", t);
      return false;
    }
    for (size_t i = 0; i < a[t].f.size(); ++i) {
      if (std::memcmp(&a[t].f[i], &b[t].f[i], 4) != 0) {
        *why = fmt::format("tensor {} element {}: {} vs {}", t, i, a[t].f[i], b[t].f[i]);
        return false;
      }
    }
  }
  return true;
}

}  // namespace hs::runtime::testing

// apply_quantization: group encodings onto activations, integer storage onto weights.
#include "headsplit/quant/apply.h"

#include <cstdint>
#include <cstring>

#include "headsplit/ir/verifier.h"

namespace hs::quant {

namespace {

// The float32 values of a constant (copied: the bytes may come from any buffer).
std::vector<float> constant_floats(const ir::Value& v) {
  std::vector<float> out(static_cast<size_t>(v.type.numel()));
  const std::span<const std::byte> bytes = v.data->bytes();
  HS_CHECK(bytes.size() == out.size() * sizeof(float), "constant_floats: size mismatch");
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

Result<ir::QuantParams> group_params(const ir::Graph& g, const ActivationGroup& group,
                                     const CalibrationTable& table) {
  const std::string& first = g.value(group.members.front()).name;
  if (group.kind == GroupKind::kMask) return mask_params();
  Range range;
  bool observed = false;
  for (ir::ValueId id : group.members) {
    if (const Range* r = table.find(g.value(id).name); r != nullptr && !r->empty()) {
      range.merge(*r);
      observed = true;
    }
  }
  if (!observed) {
    return errorf(ErrorKind::kInvalidArgument,
                  "graph '{}': value '{}' (and {} more sharing its encoding) was never observed "
                  "during calibration",
                  g.name(), first, group.members.size() - 1);
  }
  return activation_params(range, group.bits, fmt::format("value '{}'", first));
}

}  // namespace

Result<QuantizedWeight> WeightCache::get(const ir::Value& value, const WeightSpec& spec,
                                         const WeightOverride* override) {
  HS_CHECK(value.is_constant() && value.type.dtype == ir::DType::kF32,
           "WeightCache::get: not a float32 constant");
  const BufferView& data = *value.data;
  Key key{data.buffer.get(), data.offset, data.size, value.type.shape, spec.bits, spec.block,
          spec.lpbq,          override};
  if (auto it = entries_.find(key); it != entries_.end()) return it->second.weight;
  // Float-aligned bytes are read in place; others are copied first.
  const std::span<const std::byte> bytes = data.bytes();
  std::vector<float> copy;
  std::span<const float> floats;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0 &&
      bytes.size() == static_cast<size_t>(value.type.numel()) * sizeof(float)) {
    floats = {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
  } else {
    copy = constant_floats(value);
    floats = copy;
  }
  HS_ASSIGN_OR_RETURN(QuantizedWeight q, quantize_weight(floats, value.type.shape, spec,
                                                         fmt::format("weight '{}'", value.name), override));
  entries_.emplace(std::move(key), Entry{data.buffer, q});
  return q;
}

Result<ir::Graph> apply_quantization(const ir::Graph& graph, const CalibrationTable& table,
                                     const QuantConfig& config, WeightCache& cache,
                                     const WeightOverrides* overrides) {
  HS_ASSIGN_OR_RETURN(const Annotation a, annotate(graph, config));
  ir::Graph q = graph;
  for (const ActivationGroup& group : a.groups) {
    HS_ASSIGN_OR_RETURN(ir::QuantParams params, group_params(graph, group, table));
    for (ir::ValueId id : group.members) {
      ir::TensorType& t = q.value(id).type;
      t.dtype = activation_dtype(params.bits);
      t.quant = params;
    }
  }
  for (ir::ValueId id = 0; id < q.num_values(); ++id) {
    const ValueRole role = a.role[static_cast<size_t>(id)];
    if (role != ValueRole::kWeight && role != ValueRole::kEmbedding) continue;
    ir::Value& v = q.value(id);
    WeightSpec spec;  // the embedding: per-row int8
    if (role == ValueRole::kWeight) {
      const Scheme& s = a.weight_scheme[static_cast<size_t>(id)];
      spec = WeightSpec{s.weight_bits, s.block, config.lpbq};
    }
    const WeightOverride* override = nullptr;
    if (overrides != nullptr && role == ValueRole::kWeight) {
      if (auto it = overrides->find(v.name); it != overrides->end()) override = &it->second;
    }
    HS_ASSIGN_OR_RETURN(QuantizedWeight w, cache.get(v, spec, override));
    v.type = w.type;
    v.data = w.data;
  }
  if (Status s = ir::verify(q); !s.ok()) {
    return Error(ErrorKind::kInternal, fmt::format("quantized graph '{}' does not verify: {}",
                                                   q.name(), s.error().message()));
  }
  return q;
}

Result<std::vector<ir::Graph>> apply_quantization(std::span<const ir::Graph> graphs,
                                                  const CalibrationTable& table,
                                                  const QuantConfig& config,
                                                  const WeightOverrides* overrides) {
  WeightCache cache;
  std::vector<ir::Graph> out;
  for (const ir::Graph& g : graphs) {
    HS_ASSIGN_OR_RETURN(ir::Graph q, apply_quantization(g, table, config, cache, overrides));
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace hs::quant

// GraphEmitter: a thin helper for building graphs op by op with a sticky error.
//
// Builder code reads like the math (`auto y = e.matmul(q, k, "layers.0.attn.scores")`); the
// first failure is remembered and every later call returns kNoValue, so the caller checks
// once at the end with `e.status()`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/ir/graph.h"

namespace hs::frontend {

class GraphEmitter {
 public:
  explicit GraphEmitter(ir::Graph& graph) : g_(graph) {}

  Status status() const { return status_; }
  bool ok() const { return status_.ok(); }
  ir::Graph& graph() { return g_; }

  ir::ValueId input(const std::string& name, ir::TensorType type);
  // A float32 constant viewing `data` (no copy); data.size must be numel * 4.
  ir::ValueId constant(const std::string& name, ir::Shape shape, BufferView data);
  // A float32 constant owning a copy of `values`.
  ir::ValueId constant(const std::string& name, ir::Shape shape, std::span<const float> values);
  // A rank-0 float32 scalar constant.
  ir::ValueId scalar(const std::string& name, float value);
  // A float32 constant viewing a weight, reshaped to `shape` (same element count).
  ir::ValueId weight(const std::string& name, const Weight& w, ir::Shape shape);
  ir::ValueId weight(const std::string& name, const Weight& w) { return weight(name, w, w.shape); }

  ir::ValueId op(ir::OpKind kind, std::vector<ir::ValueId> inputs, ir::Attrs attrs,
                 const std::string& name);

  // Shorthands, one per op used by the builder.
  ir::ValueId conv2d(ir::ValueId x, ir::ValueId w, ir::ValueId bias, const std::string& name);
  ir::ValueId linear(ir::ValueId x, ir::ValueId w, ir::ValueId bias, const std::string& name);
  ir::ValueId matmul(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId add(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId sub(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId mul(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId div(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId where(ir::ValueId c, ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId eq(ir::ValueId a, ir::ValueId b, const std::string& name);
  ir::ValueId reduce_min(ir::ValueId x, int64_t axis, const std::string& name);  // keepdim
  ir::ValueId softmax(ir::ValueId x, int64_t axis, const std::string& name);
  ir::ValueId rms_norm(ir::ValueId x, ir::ValueId w, double eps, const std::string& name);
  // (x - mean) / sqrt(var + eps) * w + b over the last axis.
  ir::ValueId layer_norm(ir::ValueId x, ir::ValueId w, ir::ValueId b, double eps,
                         const std::string& name);
  ir::ValueId silu(ir::ValueId x, const std::string& name);
  // approximate: "none" (erf) or "tanh".
  ir::ValueId gelu(ir::ValueId x, const std::string& approximate, const std::string& name);
  ir::ValueId tanh(ir::ValueId x, const std::string& name);
  ir::ValueId gather(ir::ValueId table, ir::ValueId indices, const std::string& name);
  ir::ValueId reshape(ir::ValueId x, ir::Shape shape, const std::string& name);
  ir::ValueId transpose(ir::ValueId x, std::vector<int64_t> perm, const std::string& name);
  ir::ValueId slice(ir::ValueId x, int64_t axis, int64_t start, int64_t end,
                    const std::string& name);
  ir::ValueId concat(std::vector<ir::ValueId> xs, int64_t axis, const std::string& name);
  ir::ValueId unsqueeze(ir::ValueId x, int64_t axis, const std::string& name);
  ir::ValueId squeeze(ir::ValueId x, int64_t axis, const std::string& name);
  ir::ValueId expand(ir::ValueId x, ir::Shape shape, const std::string& name);

  const ir::Shape& shape(ir::ValueId v) const { return g_.type(v).shape; }

 private:
  bool failed() const { return !status_.ok(); }
  ir::Graph& g_;
  Status status_;
};

}  // namespace hs::frontend

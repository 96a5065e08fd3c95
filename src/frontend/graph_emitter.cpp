#include "graph_emitter.h"

#include <cstring>

namespace hs::frontend {

using ir::Attrs;
using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

ValueId GraphEmitter::input(const std::string& name, ir::TensorType type) {
  if (failed()) return kNoValue;
  auto r = g_.add_input(name, std::move(type));
  if (!r.ok()) {
    status_ = std::move(r).error();
    return kNoValue;
  }
  return *r;
}

ValueId GraphEmitter::constant(const std::string& name, ir::Shape shape, BufferView data) {
  if (failed()) return kNoValue;
  auto r = g_.add_constant(name, ir::TensorType::f32(std::move(shape)), std::move(data));
  if (!r.ok()) {
    status_ = std::move(r).error();
    return kNoValue;
  }
  return *r;
}

ValueId GraphEmitter::constant(const std::string& name, ir::Shape shape,
                               std::span<const float> values) {
  auto buffer = HeapBuffer::copy_of(std::as_bytes(values));
  size_t size = buffer->size();
  return constant(name, std::move(shape), BufferView{std::move(buffer), 0, size});
}

ValueId GraphEmitter::scalar(const std::string& name, float value) {
  return constant(name, {}, std::span<const float>(&value, 1));
}

ValueId GraphEmitter::weight(const std::string& name, const Weight& w, ir::Shape shape) {
  if (failed()) return kNoValue;
  if (ir::num_elements(shape) != w.numel()) {
    status_ = errorf(ErrorKind::kShape, "weight '{}' has shape {}, cannot view it as {}", name,
                     ir::shape_str(w.shape), ir::shape_str(shape));
    return kNoValue;
  }
  return constant(name, std::move(shape), w.data);
}

ValueId GraphEmitter::op(OpKind kind, std::vector<ValueId> inputs, Attrs attrs,
                         const std::string& name) {
  if (failed()) return kNoValue;
  auto r = g_.emit(kind, std::move(inputs), std::move(attrs), name);
  if (!r.ok()) {
    status_ = std::move(r).error();
    return kNoValue;
  }
  return *r;
}

ValueId GraphEmitter::conv2d(ValueId x, ValueId w, ValueId bias, const std::string& name) {
  std::vector<ValueId> in{x, w};
  if (bias != kNoValue) in.push_back(bias);
  return op(OpKind::kConv2d, std::move(in), {}, name);
}

ValueId GraphEmitter::linear(ValueId x, ValueId w, ValueId bias, const std::string& name) {
  std::vector<ValueId> in{x, w};
  if (bias != kNoValue) in.push_back(bias);
  return op(OpKind::kLinear, std::move(in), {}, name);
}

ValueId GraphEmitter::matmul(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kMatMul, {a, b}, {}, name);
}
ValueId GraphEmitter::add(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kAdd, {a, b}, {}, name);
}
ValueId GraphEmitter::sub(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kSub, {a, b}, {}, name);
}
ValueId GraphEmitter::mul(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kMul, {a, b}, {}, name);
}
ValueId GraphEmitter::div(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kDiv, {a, b}, {}, name);
}
ValueId GraphEmitter::where(ValueId c, ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kWhere, {c, a, b}, {}, name);
}
ValueId GraphEmitter::eq(ValueId a, ValueId b, const std::string& name) {
  return op(OpKind::kEq, {a, b}, {}, name);
}
ValueId GraphEmitter::reduce_min(ValueId x, int64_t axis, const std::string& name) {
  return op(OpKind::kReduceMin, {x}, {{"axis", axis}, {"keepdim", int64_t{1}}}, name);
}
ValueId GraphEmitter::softmax(ValueId x, int64_t axis, const std::string& name) {
  return op(OpKind::kSoftmax, {x}, {{"axis", axis}}, name);
}
ValueId GraphEmitter::rms_norm(ValueId x, ValueId w, double eps, const std::string& name) {
  return op(OpKind::kRmsNorm, {x, w}, {{"eps", eps}}, name);
}
ValueId GraphEmitter::layer_norm(ValueId x, ValueId w, ValueId b, double eps,
                                 const std::string& name) {
  return op(OpKind::kLayerNorm, {x, w, b}, {{"eps", eps}}, name);
}
ValueId GraphEmitter::gelu(ValueId x, const std::string& approximate, const std::string& name) {
  return op(OpKind::kGelu, {x}, {{"approximate", approximate}}, name);
}

ValueId GraphEmitter::tanh(ValueId x, const std::string& name) {
  return op(OpKind::kTanh, {x}, {}, name);
}

ValueId GraphEmitter::silu(ValueId x, const std::string& name) {
  return op(OpKind::kSilu, {x}, {}, name);
}
ValueId GraphEmitter::gather(ValueId table, ValueId indices, const std::string& name) {
  return op(OpKind::kGather, {table, indices}, {}, name);
}
ValueId GraphEmitter::reshape(ValueId x, ir::Shape shape, const std::string& name) {
  return op(OpKind::kReshape, {x}, {{"shape", std::vector<int64_t>(shape)}}, name);
}
ValueId GraphEmitter::transpose(ValueId x, std::vector<int64_t> perm, const std::string& name) {
  return op(OpKind::kTranspose, {x}, {{"perm", std::move(perm)}}, name);
}
ValueId GraphEmitter::slice(ValueId x, int64_t axis, int64_t start, int64_t end,
                            const std::string& name) {
  return op(OpKind::kSlice, {x}, {{"axis", axis}, {"start", start}, {"end", end}}, name);
}
ValueId GraphEmitter::concat(std::vector<ValueId> xs, int64_t axis, const std::string& name) {
  return op(OpKind::kConcat, std::move(xs), {{"axis", axis}}, name);
}
ValueId GraphEmitter::unsqueeze(ValueId x, int64_t axis, const std::string& name) {
  return op(OpKind::kUnsqueeze, {x}, {{"axis", axis}}, name);
}
ValueId GraphEmitter::squeeze(ValueId x, int64_t axis, const std::string& name) {
  return op(OpKind::kSqueeze, {x}, {{"axis", axis}}, name);
}
ValueId GraphEmitter::expand(ValueId x, ir::Shape shape, const std::string& name) {
  return op(OpKind::kExpand, {x}, {{"shape", std::vector<int64_t>(shape)}}, name);
}

}  // namespace hs::frontend

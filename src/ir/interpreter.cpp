// The reference interpreter: runs a graph node by node with the reference kernels.
//
// Real values (f32 and quantized types) are float32 tensors; i32 and bool values are int32
// tensors. With options.fake_quant, every value with a quantized type holds its
// fake-quantized value: constants are dequantized from their integer storage once (plain
// float32 constants are read in place, so weights are not copied), real graph inputs are
// fake-quantized on entry and node outputs right after the node runs. Intermediates
// are freed after their last use. With KernelSet::kFast, the GQA repeat of a KV value
// (unsqueeze -> expand -> reshape) feeding a matmul is not materialised: the matmul reads
// the unexpanded value (interpreter_fusion.h), and the observer does not see the three
// skipped layout values.
#include "headsplit/ir/interpreter.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "interpreter_fusion.h"
#include "interpreter_ops.h"

namespace hs::ir {

namespace ref = kernels::ref;
using detail::Operand;

namespace {

// last_use_ of a graph output: never freed.
constexpr NodeId kKeepAlive = std::numeric_limits<NodeId>::max();

// The interpreter's tensor kind for a value type: f32 for real values, else i32 or bool.
DType runtime_dtype(const TensorType& type) { return type.is_real() ? DType::kF32 : type.dtype; }

Tensor empty_tensor(const TensorType& type) {
  Tensor t;
  t.dtype = runtime_dtype(type);
  t.shape = type.shape;
  if (t.dtype == DType::kF32) {
    t.f.resize(static_cast<size_t>(t.numel()));
  } else {
    t.i.resize(static_cast<size_t>(t.numel()));
  }
  return t;
}

// Storage for n elements from `pool`: the pooled vector of least capacity in [n, 2n + slack]
// (its first n elements hold stale values; growing its size zero-fills the new tail), else
// a new zero-filled vector. Storage is reused only when it is not much larger than needed,
// so a big buffer is not shrunk for a small tensor and then zero-filled again when grown.
template <typename T>
std::vector<T> take_storage(std::vector<std::vector<T>>& pool, size_t n) {
  constexpr size_t kSlack = 1024;
  size_t best = pool.size();
  for (size_t k = 0; k < pool.size(); ++k) {
    const size_t cap = pool[k].capacity();
    if (cap >= n && cap <= 2 * n + kSlack && (best == pool.size() || cap < pool[best].capacity())) {
      best = k;
    }
  }
  std::vector<T> v;
  if (best < pool.size()) {
    v = std::move(pool[best]);
    pool[best] = std::move(pool.back());
    pool.pop_back();
  }
  v.resize(n);
  return v;
}

// Returns storage to `pool` (bounded: past kMaxPooled vectors, it is freed instead).
template <typename T>
void give_storage(std::vector<std::vector<T>>& pool, std::vector<T>&& v) {
  constexpr size_t kMaxPooled = 4096;
  if (v.capacity() == 0 || pool.size() >= kMaxPooled) {
    v = std::vector<T>();
    return;
  }
  pool.push_back(std::move(v));
}

std::string node_label(const Graph& g, const Node& node) {
  return fmt::format("node '{}' ({})", g.value(node.outputs[0]).name, op_name(node.op));
}

// A plain float32 constant whose bytes the kernels can read in place: unquantized, of the
// declared size and float-aligned. Other constants are converted once by read_constant.
bool viewable_constant(const Graph& g, ValueId id) {
  const Value& v = g.value(id);
  if (!v.is_constant() || v.type.dtype != DType::kF32 || v.type.quant.is_quantized()) return false;
  const std::span<const std::byte> bytes = v.data->bytes();
  return static_cast<int64_t>(bytes.size()) == v.type.numel() * 4 &&
         reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0;
}

Operand constant_view(const Graph& g, ValueId id) {
  const Value& v = g.value(id);
  return {DType::kF32, &v.type.shape, reinterpret_cast<const float*>(v.data->bytes().data()),
          nullptr};
}

// t = a copy of operand x (graph outputs), reusing t's storage.
void copy_to(const Operand& x, Tensor& t) {
  t.dtype = x.dtype;
  t.shape = *x.shape;
  const auto n = static_cast<size_t>(x.numel());
  if (x.dtype == DType::kF32) {
    t.f.assign(x.f, x.f + n);
    t.i.clear();
  } else {
    t.i.assign(x.i, x.i + n);
    t.f.clear();
  }
}

// Copy ops (reshape, (un)squeeze, (de)quantize) whose input dies at node n (last_use) take
// over the input's storage as `y` instead of copying it; false when they cannot.
bool take_input(const Graph& g, const std::vector<NodeId>& last_use, const Node& node, NodeId n,
                const TensorType& out_type, std::vector<Tensor>& live, Tensor& y) {
  switch (node.op) {
    case OpKind::kReshape:
    case OpKind::kUnsqueeze:
    case OpKind::kSqueeze:
    case OpKind::kQuantize:
    case OpKind::kDequantize: break;
    default: return false;
  }
  const auto x = static_cast<size_t>(node.inputs[0]);
  Tensor& in = live[x];
  if (last_use[x] != n || g.value(node.inputs[0]).is_constant() ||
      in.dtype != runtime_dtype(out_type) || in.numel() != out_type.numel()) {
    return false;
  }
  if (in.f.size() + in.i.size() != static_cast<size_t>(out_type.numel())) return false;
  y.dtype = in.dtype;
  y.shape = out_type.shape;
  y.f = std::move(in.f);
  y.i = std::move(in.i);
  return true;
}

}  // namespace

Tensor Tensor::zeros_f32(Shape shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.f.assign(static_cast<size_t>(t.numel()), 0.f);
  return t;
}

Tensor Tensor::from_f32(Shape shape, std::vector<float> data) {
  Tensor t;
  t.shape = std::move(shape);
  t.f = std::move(data);
  return t;
}

Tensor Tensor::from_i32(Shape shape, std::vector<int32_t> data) {
  Tensor t;
  t.dtype = DType::kI32;
  t.shape = std::move(shape);
  t.i = std::move(data);
  return t;
}

void fake_quantize(const QuantParams& quant, Tensor& tensor) {
  if (!quant.is_quantized()) return;
  HS_CHECK(tensor.dtype == DType::kF32, "fake_quantize: tensor is not real-valued");
  ref::fake_quantize(tensor.f.data(), tensor.shape, quant);
}

Result<Tensor> read_constant(const Graph& graph, ValueId id) {
  const Value& v = graph.value(id);
  if (!v.is_constant()) {
    return errorf(ErrorKind::kInvalidArgument, "'{}' is not a constant", v.name);
  }
  HS_TRY(check_quant(v.type, fmt::format("constant '{}'", v.name)));
  const std::span<const std::byte> bytes = v.data->bytes();
  const int64_t n = v.type.numel();
  if (static_cast<int64_t>(bytes.size()) != n * dtype_size(v.type.dtype)) {
    return errorf(ErrorKind::kCorrupt, "constant '{}' of type {} has {} bytes, expected {}", v.name,
                  type_str(v.type), bytes.size(), n * dtype_size(v.type.dtype));
  }
  Tensor t = empty_tensor(v.type);
  if (v.type.quant.is_quantized()) {
    ref::dequantize(bytes.data(), v.type.dtype, v.type.shape, v.type.quant, t.f.data());
  } else if (v.type.dtype == DType::kF32) {
    std::memcpy(t.f.data(), bytes.data(), bytes.size());
  } else if (v.type.dtype == DType::kI32) {
    std::memcpy(t.i.data(), bytes.data(), bytes.size());
  } else {  // bool: one byte per element, nonzero is true
    for (size_t k = 0; k < bytes.size(); ++k) t.i[k] = bytes[k] != std::byte{0} ? 1 : 0;
  }
  return t;
}

Result<Interpreter> Interpreter::create(const Graph& graph, InterpreterOptions options) {
  Interpreter interp(graph, options);
  HS_TRY_CTX(interp.prepare(), fmt::format("graph '{}'", graph.name()));
  return interp;
}

Status Interpreter::prepare() {
  const Graph& g = *graph_;
  const auto n_values = static_cast<size_t>(g.num_values());
  constants_.assign(n_values, Tensor{});
  last_use_.assign(n_values, kNoNode);
  std::vector<bool> available(n_values, false);
  for (ValueId v = 0; v < g.num_values(); ++v) {
    const Value& value = g.value(v);
    HS_TRY(check_quant(value.type, fmt::format("value '{}'", value.name)));
    if (value.is_constant()) {
      // Plain float32 constants are read in place at run time (no copy of the weights).
      if (!viewable_constant(g, v)) {
        HS_ASSIGN_OR_RETURN(constants_[static_cast<size_t>(v)], read_constant(g, v));
      }
      available[static_cast<size_t>(v)] = true;
    }
  }
  for (ValueId v : g.inputs()) available[static_cast<size_t>(v)] = true;

  // Every live node reads only values available before it and produces the type it declares,
  // so the kernels can trust their shapes.
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    if (node.erased) continue;
    if (node.outputs.size() != 1) {
      return errorf(ErrorKind::kUnsupported, "{} node #{} has {} outputs, expected 1",
                    op_name(node.op), n, node.outputs.size());
    }
    const std::string label = node_label(g, node);
    std::vector<const TensorType*> types;
    for (ValueId v : node.inputs) {
      if (v < 0 || v >= g.num_values() || !available[static_cast<size_t>(v)]) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{}: operand {} is not produced before it is used", label,
                      v >= 0 && v < g.num_values() ? g.value(v).name : "?");
      }
      types.push_back(&g.type(v));
      last_use_[static_cast<size_t>(v)] = n;
    }
    auto inferred = infer_type(node.op, types, node.attrs);
    if (!inferred.ok()) return std::move(inferred).error().with_context(label);
    const TensorType& declared = g.type(node.outputs[0]);
    if (inferred->shape != declared.shape || runtime_dtype(*inferred) != runtime_dtype(declared)) {
      return errorf(ErrorKind::kShape, "{}: declared type {} but the op produces {}", label,
                    type_str(declared), type_str(*inferred));
    }
    available[static_cast<size_t>(node.outputs[0])] = true;
    last_use_[static_cast<size_t>(node.outputs[0])] = n;  // unread outputs die right away
  }
  for (ValueId v : g.outputs()) {
    if (v < 0 || v >= g.num_values() || !available[static_cast<size_t>(v)]) {
      return errorf(ErrorKind::kInvalidArgument, "graph output {} is never produced",
                    v >= 0 && v < g.num_values() ? g.value(v).name : "?");
    }
    last_use_[static_cast<size_t>(v)] = kKeepAlive;
  }
  return prepare_bf16();
}

// bf16_[w] for the constant float32 weight w of every live conv2d / linear, when asked for
// and the CPU runs matmul_bf16: W [N, ...] as N rows of numel / N inputs (conv2d [Co, Ci, 1,
// 1] and linear [out, in] alike).
Status Interpreter::prepare_bf16() {
  const Graph& g = *graph_;
  bf16_.assign(static_cast<size_t>(g.num_values()), nullptr);
  if (options_.kernels != KernelSet::kFast || !options_.bf16_weights ||
      !kernels::bf16_matmul_supported()) {
    return {};
  }
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    if (node.erased || (node.op != OpKind::kConv2d && node.op != OpKind::kLinear)) continue;
    const ValueId w = node.inputs[1];
    const Shape& shape = g.type(w).shape;
    if (!viewable_constant(g, w) || shape.empty() || shape[0] <= 0) continue;
    const Operand view = constant_view(g, w);
    HS_ASSIGN_OR_RETURN(bf16_[static_cast<size_t>(w)],
                        options_.bf16_weights->get(view.f, shape[0], view.numel() / shape[0],
                                                   detail::fast_pool(1, 1, view.numel())));
  }
  return {};
}

Status Interpreter::bind_inputs(std::span<const InputView> inputs, std::vector<Tensor>& live,
                                std::vector<Operand>& bound) const {
  const Graph& g = *graph_;
  std::vector<bool> given(static_cast<size_t>(g.num_values()), false);
  for (const InputView& named : inputs) {
    const std::optional<ValueId> id = g.find_value(named.name);
    if (!id || !g.is_graph_input(*id)) {
      std::vector<std::string_view> names;
      for (ValueId v : g.inputs()) names.push_back(g.value(v).name);
      return errorf(ErrorKind::kNotFound, "unknown input '{}' (graph '{}' has inputs: {})",
                    named.name, g.name(), fmt::join(names, ", "));
    }
    const auto k = static_cast<size_t>(*id);
    if (given[k]) {
      return errorf(ErrorKind::kInvalidArgument, "input '{}' is given twice", named.name);
    }
    given[k] = true;
    const TensorType& type = g.type(*id);
    const InputView& t = named;
    HS_CHECK(t.shape != nullptr, "interpreter: input view without a shape");
    const DType want = runtime_dtype(type);
    const bool kind_ok = t.dtype == want || (want == DType::kBool && t.dtype == DType::kI32);
    if (!kind_ok) {
      return errorf(ErrorKind::kShape, "input '{}' is a {} tensor, graph declares {} (give {})",
                    named.name, dtype_name(t.dtype), type_str(type),
                    want == DType::kF32 ? "f32" : "i32");
    }
    if (*t.shape != type.shape) {
      return errorf(ErrorKind::kShape, "input '{}' has shape {}, graph declares {}", named.name,
                    shape_str(*t.shape), shape_str(type.shape));
    }
    const size_t held = want == DType::kF32 ? t.f.size() : t.i.size();
    if (static_cast<int64_t>(held) != type.numel()) {
      return errorf(ErrorKind::kInvalidArgument,
                    "input '{}' of shape {} holds {} elements, expected {}", named.name,
                    shape_str(*t.shape), held, type.numel());
    }
    if (want == DType::kBool) {
      for (size_t e = 0; e < t.i.size(); ++e) {
        if (t.i[e] != 0 && t.i[e] != 1) {
          return errorf(ErrorKind::kInvalidArgument,
                        "bool input '{}' holds {} at element {}, expected 0 or 1", named.name,
                        t.i[e], e);
        }
      }
    }
    if (options_.fake_quant && type.quant.is_quantized()) {  // a fake-quantized copy
      Tensor& copy = live[k];
      copy.dtype = want;
      copy.shape = type.shape;
      copy.f.assign(t.f.begin(), t.f.end());
      fake_quantize(type.quant, copy);
      bound[k] = Operand::of(copy);
    } else {  // read in place
      bound[k] = Operand{want, &type.shape, t.f.data(), t.i.data()};
    }
  }
  for (ValueId v : g.inputs()) {
    if (!given[static_cast<size_t>(v)]) {
      return errorf(ErrorKind::kInvalidArgument, "missing input '{}' ({})", g.value(v).name,
                    type_str(g.type(v)));
    }
  }
  return {};
}

Result<std::vector<Tensor>> Interpreter::run(std::span<const NamedTensor> inputs,
                                             const Observer& observer) {
  std::vector<InputView> views;
  views.reserve(inputs.size());
  for (const NamedTensor& t : inputs) views.push_back(InputView::of(t));
  std::vector<Tensor> results;
  HS_TRY(run_into(views, results, observer));
  return results;
}

Status Interpreter::run_into(std::span<const InputView> inputs, std::vector<Tensor>& outputs,
                             const Observer& observer) {
  const Graph& g = *graph_;
  const bool pooled = options_.threaded_kernels ||
                      (options_.pool_when != nullptr && options_.pool_when->load());
  const detail::SerialKernelsScope serial(!pooled);
  const auto n_values = static_cast<size_t>(g.num_values());
  std::vector<Tensor> live(n_values);  // node outputs (and fake-quantized inputs), by ValueId
  std::vector<Operand> env(n_values);  // what each value reads from
  HS_TRY(bind_inputs(inputs, live, env));
  for (size_t v = 0; v < n_values; ++v) {
    const auto id = static_cast<ValueId>(v);
    if (env[v].shape == nullptr && g.value(id).is_constant()) {
      env[v] = viewable_constant(g, id) ? constant_view(g, id) : Operand::of(constants_[v]);
      env[v].bf16 = bf16_[v];
    }
  }
  // kFast: GQA repeat-KV matmuls read the unexpanded KV value, which lives until then.
  detail::FusionPlan plan;
  std::vector<NodeId> last_use = last_use_;
  if (options_.kernels == KernelSet::kFast) {
    plan = detail::plan_repeat_kv_matmuls(g);
    for (NodeId n = 0; n < g.num_nodes(); ++n) {
      const ValueId x = plan.fused == 0 ? detail::kNoValue : plan.source[static_cast<size_t>(n)];
      if (x != detail::kNoValue) {
        NodeId& last = last_use[static_cast<size_t>(x)];
        last = std::max(last, n);
      }
    }
  }
  // Returns a tensor's storage to the pools.
  auto recycle = [&](Tensor& t) {
    give_storage(free_f_, std::move(t.f));
    give_storage(free_i_, std::move(t.i));
    t = Tensor{};
  };
  // Frees a value after node n when n was its last reader (constants and outputs stay).
  auto release = [&](ValueId v, NodeId n) {
    const auto k = static_cast<size_t>(v);
    if (last_use[k] != n || g.value(v).is_constant()) return;
    recycle(live[k]);
    env[k] = Operand{};
  };
  // Storage for node n's output, from the pools. Kernels write every element of their
  // output except when an operand is empty (a matmul over K = 0 writes nothing, the
  // result being zeros), so only then is the storage cleared.
  auto allocate = [&](const TensorType& type, std::span<const Operand> operands, Tensor& y) {
    y.dtype = runtime_dtype(type);
    y.shape = type.shape;
    const auto n = static_cast<size_t>(type.numel());
    bool clear = false;
    for (const Operand& x : operands) clear |= x.shape != nullptr && x.numel() == 0;
    if (y.dtype == DType::kF32) {
      y.f = take_storage(free_f_, n);
      if (clear) std::fill(y.f.begin(), y.f.end(), 0.f);
    } else {
      y.i = take_storage(free_i_, n);
      if (clear) std::fill(y.i.begin(), y.i.end(), 0);
    }
  };

  std::vector<Operand> operands;
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    if (node.erased || (!plan.empty() && plan.skip[static_cast<size_t>(n)])) continue;
    operands.clear();
    for (ValueId v : node.inputs) operands.push_back(env[static_cast<size_t>(v)]);
    const ValueId out = node.outputs[0];
    const TensorType& out_type = g.type(out);
    Tensor& y = live[static_cast<size_t>(out)];
    const ValueId source = plan.empty() ? detail::kNoValue : plan.source[static_cast<size_t>(n)];
    if (source != detail::kNoValue) {
      const Operand& x = env[static_cast<size_t>(source)];
      const Operand fused[] = {operands[0], x};
      allocate(out_type, fused, y);
      HS_TRY_CTX(detail::run_repeat_kv_matmul(operands[0], x, g.type(node.inputs[1]).shape,
                                              plan.group[static_cast<size_t>(n)], y),
                 node_label(g, node));
      release(source, n);
    } else if (!take_input(g, last_use, node, n, out_type, live, y)) {
      allocate(out_type, operands, y);
      HS_TRY_CTX(detail::run_node(node, operands, options_.kernels, y), node_label(g, node));
    }
    if (options_.fake_quant) fake_quantize(out_type.quant, y);
    env[static_cast<size_t>(out)] = Operand::of(y);
    if (observer) observer(out, y);
    for (ValueId v : node.inputs) release(v, n);
    release(out, n);
  }

  // Outputs: a node output held in `live` is swapped into its slot (no copy; the slot's old
  // storage goes to the pools), anything else (inputs, constants, repeats) is copied.
  const std::vector<ValueId>& outs = g.outputs();
  outputs.resize(outs.size());
  for (size_t j = 0; j < outs.size(); ++j) {
    const auto k = static_cast<size_t>(outs[j]);
    Tensor& held = live[k];
    const bool own = held.dtype == DType::kF32 ? !held.f.empty() && env[k].f == held.f.data()
                                               : !held.i.empty() && env[k].i == held.i.data();
    if (own) {
      std::swap(outputs[j], held);
      env[k] = Operand::of(outputs[j]);  // a repeated output copies from here
      recycle(held);
    } else {
      copy_to(env[k], outputs[j]);
    }
  }
  return ok_status();
}

Result<std::vector<Tensor>> run_graph(const Graph& graph, std::span<const NamedTensor> inputs,
                                      InterpreterOptions options) {
  HS_ASSIGN_OR_RETURN(Interpreter interp, Interpreter::create(graph, options));
  return interp.run(inputs);
}

}  // namespace hs::ir

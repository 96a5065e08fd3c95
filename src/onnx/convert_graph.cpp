// One headsplit graph -> one ONNX GraphProto in QDQ form (docs/onnx.md has the op table).
//
// Every IR value v gets the ONNX name of what its consumers read (`real_`): the float tensor
// for real values (f32, or the DequantizeLinear output of a quantized value), int32 / bool
// tensors as they are. A node with a quantized result computes it in float, then
//   QuantizeLinear(scale, zero_point) -> integer -> DequantizeLinear -> what consumers read
// which is exactly the interpreter's fake quantization after every node. Quantized graph
// inputs are integer ONNX inputs followed by a DequantizeLinear; quantized graph outputs are
// the QuantizeLinear's integer result under the artifact's name.
#include <fmt/format.h>

#include <cstring>
#include <set>

#include "onnx_internal.h"

namespace hs::onnx::detail {
namespace {

using ir::DType;
using ir::OpKind;
using ir::QuantKind;
using ir::QuantParams;
using ir::TensorType;

void set_shape(::onnx::ValueInfoProto& info, const std::string& name, int32_t elem_type,
               const ir::Shape& shape) {
  info.set_name(name);
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* dims = tensor->mutable_shape();
  for (int64_t d : shape) dims->add_dim()->set_dim_value(d);
}

class Converter {
 public:
  Converter(const ir::Graph& g, const GraphContext& ctx, ::onnx::GraphProto& out)
      : g_(g), ctx_(ctx), out_(out), real_(static_cast<size_t>(g.num_values())) {}

  Status run() {
    out_.set_name(g_.name());
    uses_ = g_.compute_uses();
    // Graph I/O names are reserved first: they must keep the artifact's names exactly.
    for (ir::ValueId v : g_.inputs()) names_.insert(g_.value(v).name);
    for (ir::ValueId v : g_.outputs()) names_.insert(g_.value(v).name);
    for (ir::ValueId v : g_.inputs()) HS_TRY(add_input(v));
    for (ir::ValueId v = 0; v < g_.num_values(); ++v) {
      if (g_.value(v).is_constant() && !uses_[static_cast<size_t>(v)].empty()) {
        HS_TRY(add_constant(v));
      }
    }
    for (ir::NodeId n = 0; n < g_.num_nodes(); ++n) {
      if (!g_.node(n).erased) HS_TRY(add_node(g_.node(n)));
    }
    for (ir::ValueId v : g_.outputs()) {
      const ir::Value& value = g_.value(v);
      if (value.producer == ir::kNoNode) {
        return errorf(ErrorKind::kUnsupported,
                      "graph '{}': output '{}' is not computed by a node (no ONNX form)", g_.name(),
                      value.name);
      }
      set_shape(*out_.add_output(), value.name, onnx_type(value.type.dtype), value.type.shape);
    }
    return ok_status();
  }

 private:
  // A name not used yet in this graph: base, base_1, base_2, ...
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; names_.count(name) != 0; ++i) name = fmt::format("{}_{}", base, i);
    names_.insert(name);
    return name;
  }

  ::onnx::NodeProto& node(const std::string& op, std::vector<std::string> inputs,
                          const std::string& output) {
    ::onnx::NodeProto& n = *out_.add_node();
    n.set_op_type(op);
    n.set_name(output);
    for (std::string& in : inputs) n.add_input(std::move(in));
    n.add_output(output);
    return n;
  }

  static void attr_int(::onnx::NodeProto& n, const std::string& name, int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void attr_ints(::onnx::NodeProto& n, const std::string& name,
                        const std::vector<int64_t>& values) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  static void attr_float(::onnx::NodeProto& n, const std::string& name, float value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  static void attr_string(::onnx::NodeProto& n, const std::string& name, const std::string& value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::STRING);
    a->set_s(value);
  }

  // A small initializer from raw bytes.
  std::string initializer(const std::string& base, int32_t type, const ir::Shape& dims,
                          const void* data, size_t bytes) {
    const std::string name = fresh(base);
    ::onnx::TensorProto& t = *out_.add_initializer();
    t.set_name(name);
    t.set_data_type(type);
    for (int64_t d : dims) t.add_dims(d);
    t.set_raw_data(data, bytes);
    return name;
  }
  std::string int64s(const std::string& base, const std::vector<int64_t>& values) {
    return initializer(base, kInt64, {static_cast<int64_t>(values.size())}, values.data(),
                       values.size() * sizeof(int64_t));
  }
  std::string scalar_f32(const std::string& base, float value) {
    return initializer(base, kFloat, {}, &value, sizeof value);
  }

  // The scale / zero point initializers and attributes of a Q/DQ pair for `type`.
  struct QdqParams {
    std::string scale, zero_point;  // zero_point "" when all zero and optional
    int64_t axis = -1;              // -1: no axis attribute
    int64_t block_size = 0;
  };
  Result<QdqParams> qdq_params(const std::string& base, const TensorType& type,
                               bool need_zero_point) {
    const QuantParams& q = type.quant;
    QdqParams p;
    ir::Shape dims;  // of the scale tensor
    std::vector<float> scales;
    std::vector<int32_t> zps;
    switch (q.kind) {
      case QuantKind::kPerTensor:
        scales = q.scales;
        zps = q.zero_points;
        break;
      case QuantKind::kPerAxis:
        dims = {static_cast<int64_t>(q.scales.size())};
        scales = q.scales;
        zps = q.zero_points;
        p.axis = q.axis;
        break;
      case QuantKind::kPerBlock: {
        // ONNX blocked quantization: the scale has x's rank, x's dims except ceil(D / block)
        // on the blocked axis; headsplit's scales are [channel][block] (other axes share).
        dims = type.shape;
        const int64_t blocks = q.blocks_for(type.shape[static_cast<size_t>(q.block_axis)]);
        dims[static_cast<size_t>(q.block_axis)] = blocks;
        const int64_t n = ir::num_elements(dims);
        scales.resize(static_cast<size_t>(n));
        zps.assign(static_cast<size_t>(n), 0);
        for (int64_t i = 0; i < n; ++i) {
          int64_t rest = i, c = 0, b = 0;
          for (int64_t a = static_cast<int64_t>(dims.size()) - 1; a >= 0; --a) {
            const int64_t idx = rest % dims[static_cast<size_t>(a)];
            rest /= dims[static_cast<size_t>(a)];
            if (a == q.axis) c = idx;
            if (a == q.block_axis) b = idx;
          }
          scales[static_cast<size_t>(i)] = q.scales[static_cast<size_t>(c * blocks + b)];
        }
        p.axis = q.block_axis;
        p.block_size = q.block;
        break;
      }
      case QuantKind::kNone: break;
    }
    p.scale = initializer(base + "/scale", kFloat, dims, scales.data(), scales.size() * 4);
    bool all_zero = true;
    for (int32_t z : zps) all_zero = all_zero && z == 0;
    if (need_zero_point || !all_zero) {
      std::vector<std::byte> ir(zps.size() * static_cast<size_t>(ir::dtype_size(type.dtype)));
      for (size_t i = 0; i < zps.size(); ++i) {
        switch (type.dtype) {
          case DType::kU8: ir[i] = static_cast<std::byte>(static_cast<uint8_t>(zps[i])); break;
          case DType::kI8:
          case DType::kI4: ir[i] = static_cast<std::byte>(static_cast<int8_t>(zps[i])); break;
          case DType::kU16: {
            const auto z = static_cast<uint16_t>(zps[i]);
            std::memcpy(&ir[2 * i], &z, 2);
            break;
          }
          case DType::kI16: {
            const auto z = static_cast<int16_t>(zps[i]);
            std::memcpy(&ir[2 * i], &z, 2);
            break;
          }
          default: return errorf(ErrorKind::kInternal, "'{}': no zero point type", base);
        }
      }
      const std::vector<std::byte> raw = raw_bytes(type.dtype, ir);
      p.zero_point =
          initializer(base + "/zero_point", onnx_type(type.dtype), dims, raw.data(), raw.size());
    }
    return p;
  }

  ::onnx::NodeProto& qdq_node(const std::string& op, const std::string& in, const QdqParams& p,
                              const std::string& out) {
    std::vector<std::string> ins{in, p.scale};
    if (!p.zero_point.empty()) ins.push_back(p.zero_point);
    ::onnx::NodeProto& n = node(op, std::move(ins), out);
    if (p.axis >= 0) attr_int(n, "axis", p.axis);
    if (p.block_size > 0) attr_int(n, "block_size", p.block_size);
    return n;
  }

  // Activations: ONNX's QuantizeLinear saturates to the storage type's whole range, so a
  // restricted [qmin, qmax] has no QDQ form.
  Status check_activation(const ir::Value& v) {
    const QuantParams& q = v.type.quant;
    if (q.kind != QuantKind::kPerTensor && q.kind != QuantKind::kPerAxis) {
      return errorf(ErrorKind::kUnsupported,
                    "value '{}': {} activation quantization has no QDQ form here", v.name,
                    ir::quant_kind_name(q.kind));
    }
    if (q.qmin != ir::dtype_min(v.type.dtype) || q.qmax != ir::dtype_max(v.type.dtype)) {
      return errorf(ErrorKind::kUnsupported,
                    "value '{}': range [{}, {}] is not the whole {} range (ONNX QuantizeLinear "
                    "saturates to the storage type)",
                    v.name, q.qmin, q.qmax, ir::dtype_name(v.type.dtype));
    }
    return ok_status();
  }

  Status add_input(ir::ValueId id) {
    const ir::Value& v = g_.value(id);
    set_shape(*out_.add_input(), v.name, onnx_type(v.type.dtype), v.type.shape);
    if (!v.type.quant.is_quantized()) {
      real_[static_cast<size_t>(id)] = v.name;
      return ok_status();
    }
    HS_TRY(check_activation(v));
    HS_ASSIGN_OR_RETURN(QdqParams p, qdq_params(v.name, v.type, true));
    const std::string real = fresh(v.name + "/dq");
    qdq_node("DequantizeLinear", v.name, p, real);
    real_[static_cast<size_t>(id)] = real;
    return ok_status();
  }

  // A constant reads its weight's initializer (added once per graph): float / int / bool as
  // is, quantized ones through DequantizeLinear; a Reshape when this constant views the
  // weight in another shape (a tied LM head [V,D,1,1] over the embedding [V,D]).
  Status add_constant(ir::ValueId id) {
    const ir::Value& v = g_.value(id);
    const auto& tensors = ctx_.lowered->tensor_of_value[ctx_.graph_index];
    const int32_t t = tensors[static_cast<size_t>(id)];
    const int32_t w =
        t < 0
            ? -1
            : ctx_.lowered->program.graphs[ctx_.graph_index].tensors[static_cast<size_t>(t)].weight;
    if (w < 0) {
      return errorf(ErrorKind::kInternal, "constant '{}' has no weight in the program", v.name);
    }
    const artifact::WeightDesc& desc = ctx_.lowered->program.weights[static_cast<size_t>(w)];
    std::string name = weight_initializer(w, desc);
    if (desc.quant.is_quantized()) {
      HS_ASSIGN_OR_RETURN(QdqParams p, qdq_params(desc.name, desc, false));
      const std::string real = fresh(desc.shape == v.type.shape ? v.name : v.name + "/dq");
      qdq_node("DequantizeLinear", name, p, real);
      name = real;
    }
    if (desc.shape != v.type.shape) {
      const std::string shaped = fresh(v.name);
      node("Reshape", {name, int64s(v.name + "/shape", v.type.shape)}, shaped);
      name = shaped;
    }
    real_[static_cast<size_t>(id)] = name;
    return ok_status();
  }

  std::string weight_initializer(int32_t w, const artifact::WeightDesc& desc) {
    auto it = weight_names_.find(w);
    if (it != weight_names_.end()) return it->second;
    const std::string name =
        fresh(desc.quant.is_quantized() ? desc.name + "/quantized" : desc.name);
    weight_names_[w] = name;
    ::onnx::TensorProto& t = *out_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx_type(desc.dtype));
    for (int64_t d : desc.shape) t.add_dims(d);
    const WeightPlacement& place = (*ctx_.placement)[static_cast<size_t>(w)];
    if (place.external) {
      t.set_data_location(::onnx::TensorProto::EXTERNAL);
      auto entry = [&t](const std::string& key, const std::string& value) {
        auto* e = t.add_external_data();
        e->set_key(key);
        e->set_value(value);
      };
      entry("location", ctx_.external_file);
      entry("offset", std::to_string(place.offset));
      entry("length", std::to_string(place.length));
    } else {
      const std::vector<std::byte> raw =
          raw_bytes(desc.dtype, ctx_.lowered->weight_data[static_cast<size_t>(w)].bytes());
      t.set_raw_data(raw.data(), raw.size());
    }
    return name;
  }

  const std::string& real(ir::ValueId id) const { return real_[static_cast<size_t>(id)]; }

  Status add_node(const ir::Node& n) {
    const ir::ValueId out_id = n.outputs[0];
    const ir::Value& out = g_.value(out_id);
    const bool quantized = out.type.quant.is_quantized();
    const bool is_output = g_.is_graph_output(out_id);
    const bool used = !uses_[static_cast<size_t>(out_id)].empty();
    if (quantized) HS_TRY(check_activation(out));

    // The float (or int / bool) result of the op itself.
    std::string result;
    if (n.op == OpKind::kQuantize) {
      result = real(n.inputs[0]);  // quantize: the QDQ pair below is the whole op
    } else if (n.op == OpKind::kDequantize && !is_output) {
      real_[static_cast<size_t>(out_id)] = real(n.inputs[0]);  // already dequantized
      return ok_status();
    } else {
      result = quantized ? fresh(out.name + "/f") : (is_output ? out.name : fresh(out.name));
      std::vector<std::string> ins;
      for (ir::ValueId v : n.inputs) ins.push_back(real(v));
      HS_TRY(emit_op(n, ins, result));
    }
    if (!quantized) {
      real_[static_cast<size_t>(out_id)] = result;
      return ok_status();
    }
    HS_ASSIGN_OR_RETURN(QdqParams p, qdq_params(out.name, out.type, true));
    const std::string q = is_output ? out.name : fresh(out.name + "/q");
    qdq_node("QuantizeLinear", result, p, q);
    std::string dq_in = q;
    if (ctx_.isolate_ops && !is_output) {
      set_shape(*out_.add_output(), q, onnx_type(out.type.dtype), out.type.shape);
      dq_in = fresh(out.name + "/q_in");
      set_shape(*out_.add_input(), dq_in, onnx_type(out.type.dtype), out.type.shape);
    }
    if (used) {
      const std::string dq = fresh(is_output ? out.name + "/dq" : out.name);
      qdq_node("DequantizeLinear", dq_in, p, dq);
      real_[static_cast<size_t>(out_id)] = dq;
    }
    return ok_status();
  }

  // The ONNX nodes of one headsplit op, reading `in` (real / int / bool names), writing `out`.
  Status emit_op(const ir::Node& n, const std::vector<std::string>& in, const std::string& out) {
    const ir::Attrs& a = n.attrs;
    auto simple = [&](const char* op) { node(op, in, out); };
    switch (n.op) {
      case OpKind::kConv2d: {  // 1x1, stride 1, no padding
        ::onnx::NodeProto& c = node("Conv", in, out);
        attr_ints(c, "kernel_shape", {1, 1});
        return ok_status();
      }
      case OpKind::kLinear: {  // x[...,I] @ w[O,I]^T (+ b[O])
        const std::string wt = fresh(out + "/weight_t");
        attr_ints(node("Transpose", {in[1]}, wt), "perm", {1, 0});
        if (in.size() == 2) {
          node("MatMul", {in[0], wt}, out);
        } else {
          const std::string mm = fresh(out + "/matmul");
          node("MatMul", {in[0], wt}, mm);
          node("Add", {mm, in[2]}, out);
        }
        return ok_status();
      }
      case OpKind::kMatMul: simple("MatMul"); return ok_status();
      case OpKind::kAdd: simple("Add"); return ok_status();
      case OpKind::kSub: simple("Sub"); return ok_status();
      case OpKind::kMul: simple("Mul"); return ok_status();
      case OpKind::kDiv: simple("Div"); return ok_status();
      case OpKind::kNeg: simple("Neg"); return ok_status();
      case OpKind::kWhere: simple("Where"); return ok_status();
      case OpKind::kEq: simple("Equal"); return ok_status();
      case OpKind::kSoftmax:
        attr_int(node("Softmax", in, out), "axis", a.get_int("axis"));
        return ok_status();
      case OpKind::kReduceMin: {
        ::onnx::NodeProto& r =
            node("ReduceMin", {in[0], int64s(out + "/axes", {a.get_int("axis")})}, out);
        attr_int(r, "keepdims", a.get_int("keepdim"));
        return ok_status();
      }
      case OpKind::kRmsNorm: {
        // x / sqrt(mean(x^2) + eps) * w, as the reference kernel: (x * (1 / sqrt(..))) * w.
        const std::string sq = fresh(out + "/square"), mean = fresh(out + "/mean"),
                          var = fresh(out + "/add_eps"), root = fresh(out + "/sqrt"),
                          inv = fresh(out + "/inv"), norm = fresh(out + "/norm");
        node("Mul", {in[0], in[0]}, sq);
        attr_int(node("ReduceMean", {sq, int64s(out + "/axes", {-1})}, mean), "keepdims", 1);
        node("Add", {mean, scalar_f32(out + "/eps", static_cast<float>(a.get_float("eps")))}, var);
        node("Sqrt", {var}, root);
        node("Reciprocal", {root}, inv);
        node("Mul", {in[0], inv}, norm);
        node("Mul", {norm, in[1]}, out);
        return ok_status();
      }
      case OpKind::kSilu: {  // x * sigmoid(x)
        const std::string sig = fresh(out + "/sigmoid");
        node("Sigmoid", {in[0]}, sig);
        node("Mul", {in[0], sig}, out);
        return ok_status();
      }
      case OpKind::kTanh: simple("Tanh"); return ok_status();
      case OpKind::kGelu:  // opset 20
        attr_string(node("Gelu", in, out), "approximate", a.get_string("approximate"));
        return ok_status();
      case OpKind::kLayerNorm: {  // opset 17; axis -1, the mean and variance in f32
        ::onnx::NodeProto& n = node("LayerNormalization", in, out);
        attr_int(n, "axis", -1);
        attr_float(n, "epsilon", static_cast<float>(a.get_float("eps")));
        return ok_status();
      }
      case OpKind::kGather: attr_int(node("Gather", in, out), "axis", 0); return ok_status();
      case OpKind::kReshape:
        node("Reshape", {in[0], int64s(out + "/shape", a.get_ints("shape"))}, out);
        return ok_status();
      case OpKind::kTranspose:
        attr_ints(node("Transpose", in, out), "perm", a.get_ints("perm"));
        return ok_status();
      case OpKind::kSlice:
        node(
            "Slice",
            {in[0], int64s(out + "/starts", {a.get_int("start")}),
             int64s(out + "/ends", {a.get_int("end")}), int64s(out + "/axes", {a.get_int("axis")})},
            out);
        return ok_status();
      case OpKind::kConcat:
        attr_int(node("Concat", in, out), "axis", a.get_int("axis"));
        return ok_status();
      case OpKind::kUnsqueeze:
        node("Unsqueeze", {in[0], int64s(out + "/axes", {a.get_int("axis")})}, out);
        return ok_status();
      case OpKind::kSqueeze:
        node("Squeeze", {in[0], int64s(out + "/axes", {a.get_int("axis")})}, out);
        return ok_status();
      case OpKind::kExpand:
        node("Expand", {in[0], int64s(out + "/shape", a.get_ints("shape"))}, out);
        return ok_status();
      case OpKind::kDequantize: node("Identity", in, out); return ok_status();  // a graph output
      case OpKind::kQuantize: break;  // handled by add_node
    }
    return errorf(ErrorKind::kUnsupported, "node '{}': op {} has no ONNX form",
                  g_.value(n.outputs[0]).name, ir::op_name(n.op));
  }

  const ir::Graph& g_;
  const GraphContext& ctx_;
  ::onnx::GraphProto& out_;
  std::vector<std::string> real_;  // per value: the ONNX name its consumers read
  std::vector<std::vector<ir::Use>> uses_;
  std::set<std::string> names_;
  std::map<int32_t, std::string> weight_names_;
};

}  // namespace

int32_t onnx_type(ir::DType dtype) {
  switch (dtype) {
    case DType::kF32: return kFloat;
    case DType::kI32: return kInt32;
    case DType::kBool: return kBool;
    case DType::kU8: return kUint8;
    case DType::kI8: return kInt8;
    case DType::kU16: return kUint16;
    case DType::kI16: return kInt16;
    case DType::kI4: return kInt4;
  }
  return 0;
}

int64_t raw_size(ir::DType dtype, int64_t numel) {
  return dtype == DType::kI4 ? (numel + 1) / 2 : numel * ir::dtype_size(dtype);
}

std::vector<std::byte> raw_bytes(ir::DType dtype, std::span<const std::byte> ir_bytes) {
  if (dtype != DType::kI4) return {ir_bytes.begin(), ir_bytes.end()};
  std::vector<std::byte> out((ir_bytes.size() + 1) / 2, std::byte{0});
  for (size_t i = 0; i < ir_bytes.size(); ++i) {
    const auto nibble = static_cast<uint8_t>(static_cast<uint8_t>(ir_bytes[i]) & 0x0F);
    out[i / 2] |= static_cast<std::byte>(i % 2 == 0 ? nibble : nibble << 4);
  }
  return out;
}

Status convert_graph(const ir::Graph& graph, const GraphContext& context, ::onnx::GraphProto& out) {
  Converter converter(graph, context, out);
  return converter.run();
}

}  // namespace hs::onnx::detail

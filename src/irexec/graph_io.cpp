// describe_graph_io: locate and check the step I/O of a static llama graph (tokens, mask,
// positions, logits, per-layer or per-head K/V caches and their new entries).
#include "graph_io.h"

#include <fmt/format.h>

#include <optional>

namespace hs::irexec::detail {

namespace {

std::optional<size_t> position_of(const ir::Graph& g, const std::vector<ir::ValueId>& ids,
                                  std::string_view name) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (g.value(ids[i]).name == name) return i;
  }
  return std::nullopt;
}

class IoChecker {
 public:
  explicit IoChecker(const ir::Graph& g) : g_(g) {}

  Result<size_t> input(std::string_view name) const { return find(name, "input", g_.inputs()); }
  Result<size_t> output(std::string_view name) const { return find(name, "output", g_.outputs()); }
  bool has_input(std::string_view name) const {
    return position_of(g_, g_.inputs(), name).has_value();
  }
  const ir::TensorType& input_type(size_t i) const { return g_.type(g_.inputs()[i]); }
  const ir::TensorType& output_type(size_t i) const { return g_.type(g_.outputs()[i]); }

  // Checks a tensor's shape; `expected_text` spells the layout ("[1,T,C]").
  Status shape(const ir::TensorType& type, std::string_view name, const ir::Shape& expected,
               std::string_view expected_text) const {
    if (type.shape == expected) return ok_status();
    return errorf(ErrorKind::kShape, "graph '{}': '{}' has type {}, expected shape {} = {}",
                  g_.name(), name, ir::type_str(type), expected_text, ir::shape_str(expected));
  }
  Status is_i32(const ir::TensorType& type, std::string_view name) const {
    if (type.dtype == ir::DType::kI32 && !type.quant.is_quantized()) return ok_status();
    return errorf(ErrorKind::kShape, "graph '{}': '{}' has type {}, expected i32", g_.name(), name,
                  ir::type_str(type));
  }
  // A real tensor: f32, or integer storage with per-tensor params.
  Status is_real(const ir::TensorType& type, std::string_view name) const {
    if (type.dtype == ir::DType::kF32 || (type.quant.kind == ir::QuantKind::kPerTensor &&
                                          ir::dtype_is_integer_storage(type.dtype))) {
      return ok_status();
    }
    return errorf(ErrorKind::kUnsupported,
                  "graph '{}': '{}' has type {}, expected f32 or per-tensor quantized", g_.name(),
                  name, ir::type_str(type));
  }
  const std::string& graph_name() const { return g_.name(); }

 private:
  Result<size_t> find(std::string_view name, std::string_view what,
                      const std::vector<ir::ValueId>& ids) const {
    if (auto i = position_of(g_, ids, name)) return *i;
    return errorf(ErrorKind::kNotFound, "graph '{}': no {} '{}'", g_.name(), what, name);
  }
  const ir::Graph& g_;
};

Result<runner::KvElement> cache_element(const IoChecker& c, const ir::TensorType& type,
                                        std::string_view name) {
  HS_TRY(c.is_real(type, name));
  switch (type.dtype) {
    case ir::DType::kF32: return runner::KvElement::kF32;
    case ir::DType::kU8: return runner::KvElement::kU8;
    case ir::DType::kU16: return runner::KvElement::kU16;
    default: break;
  }
  return errorf(ErrorKind::kUnsupported,
                "graph '{}': cache '{}' has type {}: only f32, u8 and "
                "u16 caches are supported",
                c.graph_name(), name, ir::type_str(type));
}

// Checks one cache tensor pair (input, new-entries output) and returns the input's encoding.
Result<ir::QuantParams> check_cache(const IoChecker& c, const GraphIo& io, size_t in, size_t out,
                                    std::string_view in_name, std::string_view out_name,
                                    const ir::Shape& in_shape, std::string_view in_text,
                                    const ir::Shape& out_shape, std::string_view out_text) {
  const ir::TensorType& ti = c.input_type(in);
  const ir::TensorType& to = c.output_type(out);
  HS_TRY(c.shape(ti, in_name, in_shape, in_text));
  HS_TRY(c.shape(to, out_name, out_shape, out_text));
  HS_ASSIGN_OR_RETURN(runner::KvElement element, cache_element(c, ti, in_name));
  if (element != io.element) {
    return errorf(ErrorKind::kShape,
                  "graph '{}': cache '{}' has type {}, but the first cache has element type {}",
                  c.graph_name(), in_name, ir::type_str(ti), ir::dtype_name(io.first_cache_dtype));
  }
  if (to.dtype != ti.dtype || to.quant != ti.quant) {
    return errorf(ErrorKind::kShape,
                  "graph '{}': '{}' has type {} but cache '{}' has type {}: the new entries are "
                  "stored into the cache, so both need the same element type and encoding",
                  c.graph_name(), out_name, ir::type_str(to), in_name, ir::type_str(ti));
  }
  return ti.quant;
}

}  // namespace

Result<GraphIo> describe_graph_io(const ir::Graph& graph) {
  IoChecker c(graph);
  GraphIo io;
  HS_ASSIGN_OR_RETURN(io.tokens, c.input("tokens"));
  HS_ASSIGN_OR_RETURN(io.mask, c.input("attention_mask"));
  HS_ASSIGN_OR_RETURN(io.input_pos, c.input("input_pos"));
  HS_ASSIGN_OR_RETURN(io.logits, c.output("logits"));

  const ir::TensorType& tokens = c.input_type(io.tokens);
  HS_TRY(c.is_i32(tokens, "tokens"));
  if (tokens.rank() != 2 || tokens.shape[0] != 1 || tokens.shape[1] < 1) {
    return errorf(ErrorKind::kShape, "graph '{}': 'tokens' has type {}, expected i32[1,T]",
                  graph.name(), ir::type_str(tokens));
  }
  io.ar_len = tokens.shape[1];
  const int64_t t = io.ar_len;
  const ir::TensorType& mask = c.input_type(io.mask);
  HS_TRY(c.is_real(mask, "attention_mask"));
  if (mask.rank() != 3) {
    return errorf(ErrorKind::kShape, "graph '{}': 'attention_mask' has type {}, expected [1,T,C]",
                  graph.name(), ir::type_str(mask));
  }
  io.context_len = mask.shape[2];
  HS_TRY(c.shape(mask, "attention_mask", {1, t, io.context_len}, "[1,T,C]"));
  io.mask_quant = mask.quant;
  HS_TRY(c.is_i32(c.input_type(io.input_pos), "input_pos"));
  HS_TRY(c.shape(c.input_type(io.input_pos), "input_pos", {1, t}, "[1,T]"));
  const ir::TensorType& logits = c.output_type(io.logits);
  HS_TRY(c.is_real(logits, "logits"));
  if (logits.rank() != 3) {
    return errorf(ErrorKind::kShape, "graph '{}': 'logits' has type {}, expected [1,T,V]",
                  graph.name(), ir::type_str(logits));
  }
  io.vocab_size = logits.shape[2];
  HS_TRY(c.shape(logits, "logits", {1, t, io.vocab_size}, "[1,T,V]"));

  // Cache layout, L, Hkv, Dh.
  const int64_t p = io.context_len - t;
  if (p < 1) {
    return errorf(ErrorKind::kShape, "graph '{}': ar length {} leaves no cache slot in context {}",
                  graph.name(), t, io.context_len);
  }
  auto cache_name = [&](std::string_view base, int64_t l, int64_t g) {
    return io.layout == CacheLayout::kPerHead ? fmt::format("{}.{}.{}", base, l, g)
                                              : fmt::format("{}.{}", base, l);
  };
  if (c.has_input("k_cache.0")) {
    io.layout = CacheLayout::kPerLayer;
  } else if (c.has_input("k_cache.0.0")) {
    io.layout = CacheLayout::kPerHead;
  } else {
    return errorf(ErrorKind::kNotFound, "graph '{}': no input 'k_cache.0' or 'k_cache.0.0'",
                  graph.name());
  }
  while (c.has_input(cache_name("k_cache", io.n_layers, 0))) ++io.n_layers;
  const ir::TensorType& k0 = c.input_type(*c.input(cache_name("k_cache", 0, 0)));
  if (k0.rank() != 4) {
    return errorf(ErrorKind::kShape, "graph '{}': '{}' has type {}, expected [1,Hkv,Dh,P]",
                  graph.name(), cache_name("k_cache", 0, 0), ir::type_str(k0));
  }
  io.head_dim = k0.shape[2];
  HS_ASSIGN_OR_RETURN(io.element, cache_element(c, k0, cache_name("k_cache", 0, 0)));
  io.first_cache_dtype = k0.dtype;
  if (io.layout == CacheLayout::kPerLayer) {
    io.n_kv_heads = k0.shape[1];
  } else {
    while (c.has_input(cache_name("k_cache", 0, io.n_kv_heads))) ++io.n_kv_heads;
  }
  const int64_t heads = io.layout == CacheLayout::kPerLayer ? io.n_kv_heads : 1;
  const int64_t per_layer = io.layout == CacheLayout::kPerLayer ? 1 : io.n_kv_heads;
  const int64_t dh = io.head_dim;
  for (int64_t l = 0; l < io.n_layers; ++l) {
    for (int64_t g = 0; g < per_layer; ++g) {
      CacheSlot slot{.layer = l, .head = g};
      const std::string kc = cache_name("k_cache", l, g), vc = cache_name("v_cache", l, g);
      const std::string kn = cache_name("k_new", l, g), vn = cache_name("v_new", l, g);
      HS_ASSIGN_OR_RETURN(slot.k_in, c.input(kc));
      HS_ASSIGN_OR_RETURN(slot.v_in, c.input(vc));
      HS_ASSIGN_OR_RETURN(slot.k_out, c.output(kn));
      HS_ASSIGN_OR_RETURN(slot.v_out, c.output(vn));
      io.slots.push_back(slot);
      CacheSlot& s = io.slots.back();
      HS_ASSIGN_OR_RETURN(
          s.k_quant, check_cache(c, io, s.k_in, s.k_out, kc, kn, {1, heads, dh, p}, "[1,Hkv,Dh,P]",
                                 {1, heads, dh, t}, "[1,Hkv,Dh,T]"));
      HS_ASSIGN_OR_RETURN(
          s.v_quant, check_cache(c, io, s.v_in, s.v_out, vc, vn, {1, heads, p, dh}, "[1,Hkv,P,Dh]",
                                 {1, heads, t, dh}, "[1,Hkv,T,Dh]"));
    }
  }
  const size_t expected_inputs = 3 + 2 * io.slots.size();
  if (graph.inputs().size() != expected_inputs) {
    for (ir::ValueId id : graph.inputs()) {
      const std::string& name = graph.value(id).name;
      bool known = name == "tokens" || name == "attention_mask" || name == "input_pos";
      for (const CacheSlot& s : io.slots) {
        known = known || graph.inputs()[s.k_in] == id || graph.inputs()[s.v_in] == id;
      }
      if (!known) {
        return errorf(ErrorKind::kUnsupported, "graph '{}': input '{}' is not a step input",
                      graph.name(), name);
      }
    }
  }
  return io;
}

}  // namespace hs::irexec::detail

// describe_step_io: locate and check the step I/O of an artifact graph (tokens, mask,
// positions, logits, per-layer or per-head K/V caches and their new entries).
#include "step_io.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace hs::runtime::detail {

namespace {

using artifact::ElementType;

std::string type_text(const IoDesc& d) {
  return fmt::format("{}[{}]", artifact::element_type_name(d.type), fmt::join(d.shape, ","));
}

class IoFinder {
 public:
  IoFinder(const GraphExecutor& exec, std::string_view what) : exec_(exec), what_(what) {}

  Result<int> input(std::string_view name) const {
    const int i = exec_.input_index(name);
    if (i >= 0) return i;
    return errorf(ErrorKind::kNotFound, "{}: no input '{}'", what_, name);
  }
  Result<int> output(std::string_view name) const {
    const int i = exec_.output_index(name);
    if (i >= 0) return i;
    return errorf(ErrorKind::kNotFound, "{}: no output '{}'", what_, name);
  }
  const IoDesc& in(int i) const { return exec_.inputs()[static_cast<size_t>(i)]; }
  const IoDesc& out(int i) const { return exec_.outputs()[static_cast<size_t>(i)]; }
  const artifact::TensorDesc& in_tensor(int i) const {
    const artifact::GraphDesc& g = exec_.graph();
    return g.tensors[static_cast<size_t>(g.inputs[static_cast<size_t>(i)])];
  }
  const artifact::TensorDesc& out_tensor(int i) const {
    const artifact::GraphDesc& g = exec_.graph();
    return g.tensors[static_cast<size_t>(g.outputs[static_cast<size_t>(i)])];
  }
  Status shape(const IoDesc& d, const std::vector<int64_t>& expected, std::string_view text) const {
    if (d.shape == expected) return ok_status();
    return errorf(ErrorKind::kShape, "{}: '{}' is {}, expected {} = [{}]", what_, d.name,
                  type_text(d), text, fmt::join(expected, ","));
  }
  Status type(const IoDesc& d, bool ok, std::string_view expected) const {
    if (ok) return ok_status();
    return errorf(ErrorKind::kUnsupported, "{}: '{}' is {}, expected {}", what_, d.name,
                  type_text(d), expected);
  }

 private:
  const GraphExecutor& exec_;
  std::string_view what_;
};

Result<runner::KvElement> cache_element(const IoFinder& f, const IoDesc& d) {
  switch (d.type) {
    case ElementType::kF32: return runner::KvElement::kF32;
    case ElementType::kU8: return runner::KvElement::kU8;
    case ElementType::kU16: return runner::KvElement::kU16;
    default: break;
  }
  HS_TRY(f.type(d, false, "an f32, u8 or u16 cache"));
  return runner::KvElement::kF32;
}

}  // namespace

Result<StepIo> describe_step_io(const GraphExecutor& exec, std::string_view what) {
  const IoFinder f(exec, what);
  StepIo io;
  HS_ASSIGN_OR_RETURN(io.tokens, f.input("tokens"));
  HS_ASSIGN_OR_RETURN(io.mask, f.input("attention_mask"));
  HS_ASSIGN_OR_RETURN(io.input_pos, f.input("input_pos"));
  HS_ASSIGN_OR_RETURN(io.logits, f.output("logits"));
  const IoDesc& tokens = f.in(io.tokens);
  HS_TRY(f.type(tokens, tokens.type == ElementType::kI32 && tokens.shape.size() == 2 &&
                            tokens.shape[0] == 1 && tokens.shape[1] >= 1,
                "i32[1,T]"));
  io.ar_len = tokens.shape[1];
  const int64_t t = io.ar_len;
  const IoDesc& mask = f.in(io.mask);
  io.mask_type = mask.type;
  HS_TRY(f.type(mask, (mask.type == ElementType::kU16 || mask.type == ElementType::kF32) &&
                          mask.shape.size() == 3,
                "u16[1,T,C] or f32[1,T,C]"));
  io.context_len = mask.shape[2];
  HS_TRY(f.shape(mask, {1, t, io.context_len}, "[1,T,C]"));
  const IoDesc& pos = f.in(io.input_pos);
  HS_TRY(f.type(pos, pos.type == ElementType::kI32, "i32[1,T]"));
  HS_TRY(f.shape(pos, {1, t}, "[1,T]"));
  const IoDesc& logits = f.out(io.logits);
  io.logits_type = logits.type;
  io.logits_quant = f.out_tensor(io.logits).quant;
  HS_TRY(f.type(logits, (logits.type == ElementType::kF32 || logits.type == ElementType::kU16 ||
                         logits.type == ElementType::kU8) &&
                            logits.shape.size() == 3,
                "f32, u8 or u16 [1,T,V]"));
  io.vocab_size = logits.shape[2];
  HS_TRY(f.shape(logits, {1, t, io.vocab_size}, "[1,T,V]"));
  const int64_t p = io.context_len - t;
  if (p < 1) {
    return errorf(ErrorKind::kShape, "{}: ar length {} leaves no cache slot in context {}", what,
                  t, io.context_len);
  }

  if (exec.input_index("k_cache.0") >= 0) {
    io.layout = CacheLayout::kPerLayer;
  } else if (exec.input_index("k_cache.0.0") >= 0) {
    io.layout = CacheLayout::kPerHead;
  } else {
    return errorf(ErrorKind::kNotFound, "{}: no input 'k_cache.0' or 'k_cache.0.0'", what);
  }
  const bool per_head = io.layout == CacheLayout::kPerHead;
  auto name = [&](std::string_view base, int64_t l, int64_t g) {
    return per_head ? fmt::format("{}.{}.{}", base, l, g) : fmt::format("{}.{}", base, l);
  };
  while (exec.input_index(name("k_cache", io.n_layers, 0)) >= 0) ++io.n_layers;
  const IoDesc& k0 = f.in(exec.input_index(name("k_cache", 0, 0)));
  HS_TRY(f.type(k0, k0.shape.size() == 4, "[1,Hkv,Dh,P]"));
  io.head_dim = k0.shape[2];
  HS_ASSIGN_OR_RETURN(io.element, cache_element(f, k0));
  if (per_head) {
    while (exec.input_index(name("k_cache", 0, io.n_kv_heads)) >= 0) ++io.n_kv_heads;
  } else {
    io.n_kv_heads = k0.shape[1];
  }
  const int64_t heads = per_head ? 1 : io.n_kv_heads, dh = io.head_dim;
  for (int64_t l = 0; l < io.n_layers; ++l) {
    for (int64_t g = 0; g < (per_head ? io.n_kv_heads : 1); ++g) {
      CacheSlot s{.layer = l, .head = g};
      HS_ASSIGN_OR_RETURN(s.k_in, f.input(name("k_cache", l, g)));
      HS_ASSIGN_OR_RETURN(s.v_in, f.input(name("v_cache", l, g)));
      HS_ASSIGN_OR_RETURN(s.k_out, f.output(name("k_new", l, g)));
      HS_ASSIGN_OR_RETURN(s.v_out, f.output(name("v_new", l, g)));
      HS_TRY(f.shape(f.in(s.k_in), {1, heads, dh, p}, "[1,Hkv,Dh,P]"));
      HS_TRY(f.shape(f.in(s.v_in), {1, heads, p, dh}, "[1,Hkv,P,Dh]"));
      HS_TRY(f.shape(f.out(s.k_out), {1, heads, dh, t}, "[1,Hkv,Dh,T]"));
      HS_TRY(f.shape(f.out(s.v_out), {1, heads, t, dh}, "[1,Hkv,T,Dh]"));
      for (auto [in, out] : {std::pair{s.k_in, s.k_out}, std::pair{s.v_in, s.v_out}}) {
        const artifact::TensorDesc& ti = f.in_tensor(in);
        const artifact::TensorDesc& to = f.out_tensor(out);
        HS_ASSIGN_OR_RETURN(const runner::KvElement e, cache_element(f, f.in(in)));
        if (e != io.element) {
          return errorf(ErrorKind::kShape, "{}: cache '{}' is {}, but '{}' is {}", what, ti.name,
                        type_text(f.in(in)), k0.name, type_text(k0));
        }
        if (ti.dtype != to.dtype || ti.quant != to.quant) {
          return errorf(ErrorKind::kShape,
                        "{}: '{}' and cache '{}' differ in element type or encoding: the new "
                        "entries are copied into the cache, so both must be stored alike",
                        what, to.name, ti.name);
        }
      }
      s.k_quant = f.in_tensor(s.k_in).quant;
      s.v_quant = f.in_tensor(s.v_in).quant;
      io.slots.push_back(std::move(s));
    }
  }
  const size_t expected = 3 + 2 * io.slots.size();
  if (exec.inputs().size() != expected || exec.outputs().size() != expected - 2) {
    std::vector<std::string_view> names;
    for (const IoDesc& d : exec.inputs()) names.push_back(d.name);
    return errorf(ErrorKind::kUnsupported,
                  "{}: {} inputs and {} outputs, expected {} and {} for a step graph with {} "
                  "cache slots (inputs: {})",
                  what, exec.inputs().size(), exec.outputs().size(), expected, expected - 2,
                  io.slots.size(), fmt::join(names, ", "));
  }
  return io;
}

}  // namespace hs::runtime::detail

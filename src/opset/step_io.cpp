// describe_step_io: locate and check the step I/O of a static llama graph against the contract
// of step_io.h (tokens, mask, positions, logits, per-layer or per-head K/V caches and their new
// entries), for any graph representation that can list its I/O as (name, type) pairs.
#include "headsplit/opset/step_io.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

namespace hs::opset {

namespace {

constexpr std::string_view kCacheBase[] = {"k_cache", "v_cache", "k_new", "v_new"};

// Graph I/O lookups by name and the contract's type checks, with errors naming the graph.
class IoChecker {
 public:
  IoChecker(std::span<const NamedType> inputs, std::span<const NamedType> outputs,
            std::string_view what)
      : inputs_(inputs), outputs_(outputs), what_(what) {}

  std::optional<size_t> find_input(std::string_view name) const { return find(inputs_, name); }
  Result<size_t> input(std::string_view name) const { return require(inputs_, name, "input"); }
  Result<size_t> output(std::string_view name) const { return require(outputs_, name, "output"); }
  const NamedType& in(size_t i) const { return inputs_[i]; }
  const NamedType& out(size_t i) const { return outputs_[i]; }

  // `t` has `expected` shape; `text` spells the layout ("[1,T,C]").
  Status shape(const NamedType& t, const Shape& expected, std::string_view text) const {
    if (t.type->shape == expected) return {};
    return errorf(ErrorKind::kShape, "{}: '{}' has type {}, expected shape {} = {}", what_, t.name,
                  type_str(*t.type), text, shape_str(expected));
  }
  // `t` has rank `rank` (before its dimensions are read).
  Status rank(const NamedType& t, int64_t rank, std::string_view text) const {
    if (t.type->rank() == rank) return {};
    return errorf(ErrorKind::kShape, "{}: '{}' has type {}, expected shape {}", what_, t.name,
                  type_str(*t.type), text);
  }
  // `t` is stored as one of `dtypes`: f32 and i32 without params, integer storage with
  // per-tensor params.
  Status dtype(const NamedType& t, std::initializer_list<DType> dtypes,
               std::string_view expected) const {
    const TensorType& type = *t.type;
    for (DType d : dtypes) {
      if (type.dtype != d) continue;
      if (dtype_is_integer_storage(d) ? type.quant.kind == QuantKind::kPerTensor
                                      : !type.quant.is_quantized()) {
        return {};
      }
    }
    return errorf(ErrorKind::kUnsupported, "{}: '{}' has type {}, expected {}", what_, t.name,
                  type_str(type), expected);
  }
  std::string_view what() const { return what_; }

 private:
  static std::optional<size_t> find(std::span<const NamedType> list, std::string_view name) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].name == name) return i;
    }
    return std::nullopt;
  }
  Result<size_t> require(std::span<const NamedType> list, std::string_view name,
                         std::string_view kind) const {
    if (auto i = find(list, name)) return *i;
    return errorf(ErrorKind::kNotFound, "{}: no {} '{}'", what_, kind, name);
  }

  std::span<const NamedType> inputs_, outputs_;
  std::string_view what_;
};

constexpr std::string_view kCacheTypes = "f32, or u8/u16 with per-tensor params";

// The layout, L, Hkv and Dh from the first cache; every other cache is checked against them.
Status read_cache_dims(const IoChecker& c, StepIo& io) {
  StepDims& d = io.dims;
  if (c.find_input(k_cache_name(0))) {
    d.layout = CacheLayout::kPerLayer;
  } else if (c.find_input(cache_tensor_name(CacheTensor::kKCache, 0, CacheLayout::kPerHead))) {
    d.layout = CacheLayout::kPerHead;
  } else {
    return errorf(ErrorKind::kNotFound, "{}: no input 'k_cache.0' or 'k_cache.0.0'", c.what());
  }
  auto k_cache = [&](int64_t l, int64_t g) {
    return cache_tensor_name(CacheTensor::kKCache, l, d.layout, g);
  };
  while (c.find_input(k_cache(d.n_layers, 0))) ++d.n_layers;
  const NamedType& k0 = c.in(*c.find_input(k_cache(0, 0)));
  HS_TRY(c.rank(k0, 4, "[1,Hkv,Dh,P]"));
  HS_TRY(c.dtype(k0, {DType::kF32, DType::kU8, DType::kU16}, kCacheTypes));
  io.cache_dtype = k0.type->dtype;
  d.head_dim = k0.type->shape[2];
  if (d.layout == CacheLayout::kPerLayer) {
    d.n_kv_heads = k0.type->shape[1];
  } else {
    while (c.find_input(k_cache(0, d.n_kv_heads))) ++d.n_kv_heads;
  }
  return {};
}

// One slot's four tensors: shapes, the shared element type, equal in/out encodings.
Result<CacheSlot> check_slot(const IoChecker& c, const StepIo& io, int64_t l, int64_t g) {
  const StepDims& d = io.dims;
  CacheSlot s{.layer = l, .head = g};
  size_t* positions[] = {&s.k_in, &s.v_in, &s.k_out, &s.v_out};
  static constexpr std::string_view kLayouts[] = {"[1,Hkv,Dh,P]", "[1,Hkv,P,Dh]", "[1,Hkv,Dh,T]",
                                                  "[1,Hkv,T,Dh]"};
  for (int k = 0; k < 4; ++k) {
    const auto which = static_cast<CacheTensor>(k);
    const std::string name = cache_tensor_name(which, l, d.layout, g);
    HS_ASSIGN_OR_RETURN(*positions[k], k < 2 ? c.input(name) : c.output(name));
    const NamedType& t = k < 2 ? c.in(*positions[k]) : c.out(*positions[k]);
    HS_TRY(c.shape(t, cache_tensor_shape(which, d), kLayouts[k]));
  }
  for (auto [in, out] : {std::pair{s.k_in, s.k_out}, std::pair{s.v_in, s.v_out}}) {
    const NamedType& ti = c.in(in);
    const NamedType& to = c.out(out);
    HS_TRY(c.dtype(ti, {DType::kF32, DType::kU8, DType::kU16}, kCacheTypes));
    if (ti.type->dtype != io.cache_dtype) {
      return errorf(ErrorKind::kShape,
                    "{}: cache '{}' has type {}, but the first cache has "
                    "element type {}",
                    c.what(), ti.name, type_str(*ti.type), dtype_name(io.cache_dtype));
    }
    if (to.type->dtype != ti.type->dtype || to.type->quant != ti.type->quant) {
      return errorf(ErrorKind::kShape,
                    "{}: '{}' has type {} but cache '{}' has type {}: the new entries are stored "
                    "into the cache, so both need the same element type and encoding",
                    c.what(), to.name, type_str(*to.type), ti.name, type_str(*ti.type));
    }
  }
  s.k_quant = c.in(s.k_in).type->quant;
  s.v_quant = c.in(s.v_in).type->quant;
  return s;
}

// The first tensor of `list` that is not one of the contract's, or nullptr.
const NamedType* stranger(std::span<const NamedType> list, const std::vector<size_t>& known) {
  std::vector<bool> is_known(list.size(), false);
  for (size_t i : known) is_known[i] = true;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!is_known[i]) return &list[i];
  }
  return nullptr;
}

}  // namespace

std::string_view cache_layout_name(CacheLayout layout) {
  return layout == CacheLayout::kPerLayer ? "per-layer" : "per-head";
}

std::string cache_tensor_name(CacheTensor which, int64_t layer, CacheLayout layout, int64_t head) {
  const std::string_view base = kCacheBase[static_cast<size_t>(which)];
  if (layout == CacheLayout::kPerHead) return fmt::format("{}.{}.{}", base, layer, head);
  return fmt::format("{}.{}", base, layer);
}

std::string k_cache_name(int64_t layer) { return cache_tensor_name(CacheTensor::kKCache, layer); }
std::string v_cache_name(int64_t layer) { return cache_tensor_name(CacheTensor::kVCache, layer); }
std::string k_new_name(int64_t layer) { return cache_tensor_name(CacheTensor::kKNew, layer); }
std::string v_new_name(int64_t layer) { return cache_tensor_name(CacheTensor::kVNew, layer); }

Shape cache_tensor_shape(CacheTensor which, const StepDims& d) {
  const int64_t hs = d.slot_heads(), p = d.cache_slots(), t = d.ar_len;
  switch (which) {
    case CacheTensor::kKCache: return {1, hs, d.head_dim, p};
    case CacheTensor::kVCache: return {1, hs, p, d.head_dim};
    case CacheTensor::kKNew: return {1, hs, d.head_dim, t};
    case CacheTensor::kVNew: return {1, hs, t, d.head_dim};
  }
  return {};
}

Status check_step_lengths(int64_t ar_len, int64_t context_len) {
  if (ar_len < 1 || ar_len >= context_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "ar length {} must be at least 1 and smaller than the context length {}", ar_len,
                  context_len);
  }
  return {};
}

Result<StepIo> describe_step_io(std::span<const NamedType> inputs,
                                std::span<const NamedType> outputs, std::string_view what) {
  const IoChecker c(inputs, outputs, what);
  StepIo io;
  StepDims& d = io.dims;
  HS_ASSIGN_OR_RETURN(io.tokens, c.input(kTokensName));
  HS_ASSIGN_OR_RETURN(io.mask, c.input(kAttentionMaskName));
  HS_ASSIGN_OR_RETURN(io.input_pos, c.input(kInputPosName));
  HS_ASSIGN_OR_RETURN(io.logits, c.output(kLogitsName));

  const NamedType& tokens = c.in(io.tokens);
  HS_TRY(c.dtype(tokens, {DType::kI32}, "i32[1,T]"));
  HS_TRY(c.rank(tokens, 2, "[1,T]"));
  d.ar_len = tokens.type->shape[1];
  const NamedType& mask = c.in(io.mask);
  HS_TRY(c.dtype(mask, {DType::kF32, DType::kU16}, "f32, or u16 with per-tensor params"));
  HS_TRY(c.rank(mask, 3, "[1,T,C]"));
  d.context_len = mask.type->shape[2];
  const NamedType& logits = c.out(io.logits);
  HS_TRY(c.dtype(logits, {DType::kF32, DType::kU8, DType::kU16},
                 "f32, or u8/u16 with per-tensor params"));
  HS_TRY(c.rank(logits, 3, "[1,T,V]"));
  d.vocab_size = logits.type->shape[2];
  HS_TRY(c.shape(tokens, {1, d.ar_len}, "[1,T]"));
  HS_TRY(c.shape(mask, {1, d.ar_len, d.context_len}, "[1,T,C]"));
  HS_TRY(c.dtype(c.in(io.input_pos), {DType::kI32}, "i32[1,T]"));
  HS_TRY(c.shape(c.in(io.input_pos), {1, d.ar_len}, "[1,T]"));
  HS_TRY(c.shape(logits, {1, d.ar_len, d.vocab_size}, "[1,T,V]"));
  if (d.ar_len < 1 || d.cache_slots() < 1) {
    return errorf(ErrorKind::kShape, "{}: ar length {} leaves no cache slot in context {}", what,
                  d.ar_len, d.context_len);
  }
  io.mask_dtype = mask.type->dtype;
  io.mask_quant = mask.type->quant;
  io.logits_dtype = logits.type->dtype;
  io.logits_quant = logits.type->quant;

  HS_TRY(read_cache_dims(c, io));
  const int64_t heads = d.layout == CacheLayout::kPerLayer ? 1 : d.n_kv_heads;
  std::vector<size_t> known_in = {io.tokens, io.mask, io.input_pos}, known_out = {io.logits};
  if (std::optional<size_t> w = c.find_input(kWindowMaskName)) {
    const NamedType& wm = c.in(*w);
    if (wm.type->dtype != mask.type->dtype || wm.type->quant != mask.type->quant ||
        wm.type->shape != mask.type->shape) {
      return errorf(ErrorKind::kShape,
                    "{}: '{}' has type {} but '{}' has type {}: both masks need the same shape "
                    "and encoding",
                    what, wm.name, type_str(*wm.type), mask.name, type_str(*mask.type));
    }
    io.has_window_mask = true;
    io.window_mask = *w;
    known_in.push_back(*w);
  }
  for (int64_t l = 0; l < d.n_layers; ++l) {
    for (int64_t g = 0; g < heads; ++g) {
      HS_ASSIGN_OR_RETURN(CacheSlot s, check_slot(c, io, l, g));
      known_in.insert(known_in.end(), {s.k_in, s.v_in});
      known_out.insert(known_out.end(), {s.k_out, s.v_out});
      io.slots.push_back(std::move(s));
    }
  }
  if (const NamedType* t = stranger(inputs, known_in)) {
    return errorf(ErrorKind::kUnsupported, "{}: input '{}' is not a step input", what, t->name);
  }
  if (const NamedType* t = stranger(outputs, known_out)) {
    return errorf(ErrorKind::kUnsupported, "{}: output '{}' is not a step output", what, t->name);
  }
  return io;
}

Status check_same_kv_caches(const StepIo& a, const StepIo& b, std::string_view what) {
  auto differ = [&](std::string_view field, const auto& x, const auto& y) {
    return errorf(ErrorKind::kShape, "{} (ar lengths {} and {}) differ in {}: {} vs {}", what,
                  a.dims.ar_len, b.dims.ar_len, field, x, y);
  };
  const StepDims &da = a.dims, &db = b.dims;
  if (da.context_len != db.context_len)
    return differ("context length", da.context_len, db.context_len);
  if (da.vocab_size != db.vocab_size)
    return differ("vocabulary size", da.vocab_size, db.vocab_size);
  if (da.n_layers != db.n_layers) return differ("layer count", da.n_layers, db.n_layers);
  if (da.n_kv_heads != db.n_kv_heads) return differ("kv head count", da.n_kv_heads, db.n_kv_heads);
  if (da.head_dim != db.head_dim) return differ("head size", da.head_dim, db.head_dim);
  if (a.has_window_mask != b.has_window_mask) {
    return differ("the window_attention_mask input", a.has_window_mask ? "present" : "absent",
                  b.has_window_mask ? "present" : "absent");
  }
  if (da.layout != db.layout) {
    return differ("cache layout", cache_layout_name(da.layout), cache_layout_name(db.layout));
  }
  if (a.cache_dtype != b.cache_dtype) {
    return differ("cache element type", dtype_name(a.cache_dtype), dtype_name(b.cache_dtype));
  }
  for (size_t i = 0; i < a.slots.size(); ++i) {
    const CacheSlot &sa = a.slots[i], &sb = b.slots[i];
    if (sa.k_quant != sb.k_quant || sa.v_quant != sb.v_quant) {
      return differ(
          fmt::format("the encoding of the caches of layer {} (kv head {})", sa.layer, sa.head),
          type_str({a.cache_dtype, {}, sa.k_quant != sb.k_quant ? sa.k_quant : sa.v_quant}),
          type_str({b.cache_dtype, {}, sa.k_quant != sb.k_quant ? sb.k_quant : sb.v_quant}));
    }
  }
  return {};
}

}  // namespace hs::opset

// LlamaModel utilities: config and weight-shape validation, float32 weights from stored
// F32/F16/BF16 data, the interleaved -> rotate-half q/k row permutation and deterministic random
// models (counter-based hash RNG, threaded). The named configurations: named_configs.cpp.
#include "headsplit/frontend/llama_model.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace hs::frontend {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

// Dimensions are bounded so that the product of any two fits in int64 without overflow.
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxLayers = 1 << 16;

}  // namespace

// ---- LlamaConfig / LlamaModel validation --------------------------------------------------

Status LlamaConfig::validate(std::string_view what) const {
  const std::pair<const char*, int64_t> dims[] = {{"dim", dim},
                                                  {"hidden_dim", hidden_dim},
                                                  {"n_heads", n_heads},
                                                  {"n_kv_heads", n_kv_heads},
                                                  {"head_dim", head_dim},
                                                  {"vocab_size", vocab_size},
                                                  {"max_seq_len", max_seq_len}};
  for (const auto& [name, value] : dims) {
    if (value <= 0 || value >= kMaxDim) {
      return errorf(ErrorKind::kInvalidArgument, "{}: {} is {}, expected 1..{}", what, name, value,
                    kMaxDim - 1);
    }
  }
  if (n_layers <= 0 || n_layers > kMaxLayers) {
    return errorf(ErrorKind::kInvalidArgument, "{}: n_layers is {}, expected 1..{}", what, n_layers,
                  kMaxLayers);
  }
  if (n_heads % n_kv_heads != 0) {
    return errorf(ErrorKind::kInvalidArgument, "{}: n_heads {} is not a multiple of n_kv_heads {}",
                  what, n_heads, n_kv_heads);
  }
  if (head_dim % 2 != 0 && dim % n_heads != 0 && head_dim == dim / n_heads) {
    // An odd head_dim that looks derived as dim / n_heads: the real fault is the division, not
    // the parity. (An explicit head_dim need not be dim / n_heads: Qwen3, or D 52, H 12, Dh 4.)
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: dim {} is not divisible by n_heads {} (head_dim would be {} rounded down)",
                  what, dim, n_heads, static_cast<double>(dim) / static_cast<double>(n_heads));
  }
  if (head_dim % 2 != 0) {
    return errorf(ErrorKind::kInvalidArgument, "{}: head_dim {} is odd, rope needs pairs", what,
                  head_dim);
  }
  if (!(rms_eps > 0.0) || !std::isfinite(rms_eps)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: rms_eps is {}, expected > 0", what, rms_eps);
  }
  if (!(rope_theta > 0.0) || !std::isfinite(rope_theta)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: rope_theta is {}, expected > 0", what,
                  rope_theta);
  }
  if (rope_scaling) {
    const RopeScaling& s = *rope_scaling;
    if (!(s.factor > 0) || !(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor) ||
        s.original_max_position_embeddings <= 0) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: rope scaling factor {} low {} high {} original {} is not valid", what,
                    s.factor, s.low_freq_factor, s.high_freq_factor,
                    s.original_max_position_embeddings);
    }
  }
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: rotary_dim is {}, expected an even number in 2..head_dim {} (0: all)", what,
                  rotary_dim, head_dim);
  }
  if (longrope) {
    const LongRope& s = *longrope;
    const auto half = static_cast<size_t>(rope_dims() / 2);
    if (rope_scaling) {
      return errorf(ErrorKind::kInvalidArgument, "{}: both llama3 and longrope RoPE scaling", what);
    }
    for (const auto& [key, list] :
         {std::pair{"short_factor", &s.short_factor}, std::pair{"long_factor", &s.long_factor}}) {
      if (list->size() != half) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{}: longrope {} has {} entries, expected rotary dims / 2 = {}", what, key,
                      list->size(), half);
      }
      for (double f : *list) {
        if (!(f > 0.0) || !std::isfinite(f)) {
          return errorf(ErrorKind::kInvalidArgument,
                        "{}: longrope {} holds {}, expected finite values > 0", what, key, f);
        }
      }
    }
    if (s.original_max_position_embeddings <= 0 || !(s.attention_factor > 0.0) ||
        !std::isfinite(s.attention_factor)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: longrope original_max_position_embeddings {} and attention_factor {} "
                    "must be > 0",
                    what, s.original_max_position_embeddings, s.attention_factor);
    }
  }
  for (size_t i = 0; i < no_rope_layers.size(); ++i) {
    const int64_t l = no_rope_layers[i];
    if (l < 0 || l >= n_layers || (i > 0 && l <= no_rope_layers[i - 1])) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: no_rope_layers [{}] must be ascending layer indices in [0, {})", what,
                    fmt::join(no_rope_layers, ","), n_layers);
    }
  }
  for (size_t i = 0; i < sliding_window_layers.size(); ++i) {
    const int64_t l = sliding_window_layers[i];
    if (l < 0 || l >= n_layers || (i > 0 && l <= sliding_window_layers[i - 1])) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: sliding_window_layers [{}] must be ascending layer indices in [0, {})",
                    what, fmt::join(sliding_window_layers, ","), n_layers);
    }
  }
  if (sliding_window < 0 || (sliding_window == 0) != sliding_window_layers.empty()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: sliding_window {} with {} sliding-window layers (a window > 0 needs at "
                  "least one such layer, and layers need a window)",
                  what, sliding_window, sliding_window_layers.size());
  }
  if (!sliding_window_layers.empty() &&
      (!(rope_local_theta > 0.0) || !std::isfinite(rope_local_theta))) {
    return errorf(ErrorKind::kInvalidArgument, "{}: rope_local_theta is {}, expected > 0", what,
                  rope_local_theta);
  }
  if (parallel_block && post_norms) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: post norms and a parallel block together are not supported", what);
  }
  if (ffn_bias && gated_ffn) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: FFN biases are supported with the non-gated FFN only (CodeGen)", what);
  }
  if (final_logit_softcapping < 0.0 || !std::isfinite(final_logit_softcapping)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: final_logit_softcapping is {}, expected 0 (none) or > 0", what,
                  final_logit_softcapping);
  }
  const std::pair<const char*, double> multipliers[] = {
      {"embedding_multiplier", embedding_multiplier},
      {"attention_multiplier", attention_multiplier.value_or(1.0)},
      {"residual_multiplier", residual_multiplier},
      {"logits_scaling", logits_scaling}};
  for (const auto& [key, value] : multipliers) {
    if (!(value > 0.0) || !std::isfinite(value)) {
      return errorf(ErrorKind::kInvalidArgument, "{}: {} is {}, expected a finite value > 0", what,
                    key, value);
    }
  }
  return ok_status();
}

bool LlamaConfig::uses_rope(int64_t layer) const {
  return !std::binary_search(no_rope_layers.begin(), no_rope_layers.end(), layer);
}

bool LlamaConfig::is_sliding(int64_t layer) const {
  return std::binary_search(sliding_window_layers.begin(), sliding_window_layers.end(), layer);
}

double longrope_default_attention_factor(int64_t max_seq_len, int64_t original) {
  const double s = static_cast<double>(max_seq_len) / static_cast<double>(original);
  return s <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(s) / std::log(static_cast<double>(original)));
}

std::string_view ffn_activation_name(FfnActivation act) {
  switch (act) {
    case FfnActivation::kSilu: return "silu";
    case FfnActivation::kGeluTanh: return "gelu_tanh";
    case FfnActivation::kGelu: return "gelu";
  }
  return "unknown";
}

std::vector<NamedWeight> named_weights(const LlamaModel& model) {
  const LlamaWeights& w = model.weights;
  std::vector<NamedWeight> out;
  out.push_back({"tok_embeddings", &w.tok_embeddings});
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::pair<const char*, const Weight*> slots[] = {{"attn_norm", &lw.attn_norm},
                                                           {"wq", &lw.wq},
                                                           {"wk", &lw.wk},
                                                           {"wv", &lw.wv},
                                                           {"wo", &lw.wo},
                                                           {"bq", &lw.bq},
                                                           {"bk", &lw.bk},
                                                           {"bv", &lw.bv},
                                                           {"ffn_norm", &lw.ffn_norm},
                                                           {"w1", &lw.w1},
                                                           {"w2", &lw.w2},
                                                           {"w3", &lw.w3}};
    for (const auto& [name, weight] : slots) {
      out.push_back({fmt::format("layers.{}.{}", l, name), weight});
    }
  }
  out.push_back({"norm", &w.norm});
  out.push_back({"output", &w.output});
  // Appended after the original slots so that random models keep their other values.
  for (size_t l = 0; l < w.layers.size(); ++l) {
    out.push_back({fmt::format("layers.{}.q_norm", l), &w.layers[l].q_norm});
    out.push_back({fmt::format("layers.{}.k_norm", l), &w.layers[l].k_norm});
  }
  for (size_t l = 0; l < w.layers.size(); ++l) {
    out.push_back({fmt::format("layers.{}.post_attn_norm", l), &w.layers[l].post_attn_norm});
    out.push_back({fmt::format("layers.{}.post_ffn_norm", l), &w.layers[l].post_ffn_norm});
  }
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    out.push_back({fmt::format("layers.{}.attn_norm_bias", l), &lw.attn_norm_bias});
    out.push_back({fmt::format("layers.{}.ffn_norm_bias", l), &lw.ffn_norm_bias});
    out.push_back({fmt::format("layers.{}.b1", l), &lw.b1});
    out.push_back({fmt::format("layers.{}.b2", l), &lw.b2});
  }
  out.push_back({"norm_bias", &w.norm_bias});
  out.push_back({"output_bias", &w.output_bias});
  return out;
}

namespace {

// Expected shape of every weight slot, in named_weights order; {} = must be absent.
std::vector<std::vector<int64_t>> expected_shapes(const LlamaConfig& c) {
  const int64_t d = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const int64_t f = c.hidden_dim;
  using Shape = std::vector<int64_t>;
  auto when = [](bool present, Shape shape) { return present ? shape : Shape{}; };
  const bool layer_norm = c.norm == NormKind::kLayer;
  std::vector<std::vector<int64_t>> out;
  out.push_back({c.vocab_size, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    out.push_back({d});
    out.push_back({q, d});
    out.push_back({kv, d});
    out.push_back({kv, d});
    out.push_back({d, q});
    for (int64_t n : {q, kv, kv}) out.push_back(when(c.attention_bias, {n}));
    out.push_back(when(!c.parallel_block, {d}));
    out.push_back({f, d});
    out.push_back({d, f});
    out.push_back(when(c.gated_ffn, {f, d}));
  }
  out.push_back({d});
  out.push_back(c.tied_embeddings ? std::vector<int64_t>{} : std::vector<int64_t>{c.vocab_size, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (int k = 0; k < 2; ++k) {
      out.push_back(c.qk_norm ? std::vector<int64_t>{c.head_dim} : std::vector<int64_t>{});
    }
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (int k = 0; k < 2; ++k) {
      out.push_back(c.post_norms ? std::vector<int64_t>{d} : std::vector<int64_t>{});
    }
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    out.push_back(when(layer_norm, {d}));
    out.push_back(when(layer_norm && !c.parallel_block, {d}));
    out.push_back(when(c.ffn_bias, {f}));
    out.push_back(when(c.ffn_bias, {d}));
  }
  out.push_back(when(layer_norm, {d}));
  out.push_back(when(c.lm_head_bias, {c.vocab_size}));
  return out;
}

// Why the config leaves the slot `name` empty (validation messages).
const char* absent_reason(const std::string& name) {
  if (name == "output") return "tied embeddings";
  if (name.find(".post_") != std::string::npos) return "no post norms";
  if (name.ends_with("ffn_norm") || name.ends_with("ffn_norm_bias")) {
    return "a parallel block (one norm per layer)";
  }
  if (name.ends_with("norm_bias")) return "RMSNorm (no norm bias)";
  if (name.ends_with("_norm")) return "no q/k norm";
  if (name.ends_with(".w3")) return "a non-gated FFN";
  if (name.ends_with(".b1") || name.ends_with(".b2")) return "no FFN bias";
  if (name == "output_bias") return "no LM head bias";
  return "no attention bias";
}

}  // namespace

Status LlamaModel::validate() const {
  const std::string what = source.empty() ? config.name : source;
  HS_TRY(config.validate(what));
  if (static_cast<int64_t>(weights.layers.size()) != config.n_layers) {
    return errorf(ErrorKind::kShape, "{}: model has {} layers, config says {}", what,
                  weights.layers.size(), config.n_layers);
  }
  const std::vector<NamedWeight> named = named_weights(*this);
  const std::vector<std::vector<int64_t>> expected = expected_shapes(config);
  HS_CHECK(named.size() == expected.size(), "weight slot tables disagree");
  for (size_t i = 0; i < named.size(); ++i) {
    const Weight& w = *named[i].weight;
    if (expected[i].empty()) {
      if (!w.empty() || !w.shape.empty()) {
        return errorf(ErrorKind::kShape, "{}: {} is present with shape {} but the config says {}",
                      what, named[i].name, shape_text(w.shape), absent_reason(named[i].name));
      }
      continue;
    }
    if (w.shape != expected[i]) {
      return errorf(ErrorKind::kShape, "{}: {} has shape {}, expected {}", what, named[i].name,
                    shape_text(w.shape), shape_text(expected[i]));
    }
    const size_t bytes = static_cast<size_t>(w.numel()) * 4;
    if (w.data.size != bytes || w.data.buffer == nullptr ||
        w.data.offset + w.data.size > w.data.buffer->size()) {
      return errorf(ErrorKind::kShape, "{}: {} has {} data bytes, expected {}", what, named[i].name,
                    w.data.size, bytes);
    }
  }
  return ok_status();
}

const Weight& LlamaModel::lm_head() const {
  return config.tied_embeddings ? weights.tok_embeddings : weights.output;
}

// ---- Weight helpers ------------------------------------------------------------------------

int64_t Weight::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::span<const float> Weight::f32() const {
  if (data.size == 0) return {};
  return {reinterpret_cast<const float*>(data.bytes().data()), data.size / 4};
}

Weight Weight::from_floats(std::vector<int64_t> shape, std::span<const float> values) {
  auto buffer = HeapBuffer::copy_of(std::as_bytes(values));
  size_t size = buffer->size();
  return Weight{std::move(shape), BufferView{std::move(buffer), 0, size}};
}

Weight Weight::view(std::vector<int64_t> shape, BufferView data) {
  return Weight{std::move(shape), std::move(data)};
}

int64_t stored_dtype_size(StoredDType dtype) { return dtype == StoredDType::kF32 ? 4 : 2; }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf/nan
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in float32.
  const float magnitude = std::ldexp(static_cast<float>(mant), -24);
  return sign != 0 ? -magnitude : magnitude;
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x40);  // keep it a NaN
  const uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;   // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00;  // >= 65520 rounds to inf
  if (abs < 0x38800000) {
    // Subnormal half (or zero): round abs / 2^-24 to nearest even integer.
    const float scaled = std::ldexp(std::bit_cast<float>(abs), 24);  // exact
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t rounded = rebased + 0xfff + ((rebased >> 13) & 1);
  return sign | static_cast<uint16_t>(rounded >> 13);
}

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
#define HS_F16C_CONVERT 1
// out[i] = f16_to_f32(src half i) for i below the returned count (a multiple of 8), with the
// F16C conversion, which is exact for every finite and infinite half (subnormal halves are
// normal floats) as f16_to_f32; groups of 8 holding an infinity or NaN (exponent all ones:
// the instruction sets a NaN's quiet bit, f16_to_f32 keeps its bits) are converted by
// f16_to_f32.
__attribute__((target("avx,f16c"))) size_t f16_to_f32_f16c(const std::byte* src, size_t n,
                                                           float* out) {
  const __m128i exp_mask = _mm_set1_epi16(0x7c00);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask)) != 0) {
      for (size_t k = i; k < i + 8; ++k) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * k, 2);
        out[k] = f16_to_f32(bits);
      }
      continue;
    }
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  return i;
}

bool has_f16c() {
  // clang's __builtin_cpu_supports does not know "f16c": CPUID leaf 1, ECX bit 29 (bit_F16C).
  static const bool f16c = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") != 0 && __get_cpuid(1, &a, &b, &c, &d) != 0 &&
           (c & bit_F16C) != 0;
  }();
  return f16c;
}
#endif

// out[begin, end) from the stored elements src[begin, end) (F32 copy, F16 or BF16 widening).
void convert_stored(const std::byte* src, StoredDType dtype, size_t begin, size_t end, float* out) {
  if (dtype == StoredDType::kF32) {
    std::memcpy(out + begin, src + 4 * begin, (end - begin) * 4);
    return;
  }
  size_t i = begin;
#if defined(HS_F16C_CONVERT)
  if (dtype == StoredDType::kF16 && has_f16c())
    i += f16_to_f32_f16c(src + 2 * begin, end - begin, out + begin);
#endif
  for (; i < end; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    out[i] = dtype == StoredDType::kF16 ? f16_to_f32(bits) : bf16_to_f32(bits);
  }
}

}  // namespace

Weight weight_from_stored(std::vector<int64_t> shape, StoredDType dtype, const BufferView& data) {
  const std::span<const std::byte> src = data.bytes();
  if (dtype == StoredDType::kF32 && reinterpret_cast<uintptr_t>(src.data()) % 4 == 0) {
    return Weight::view(std::move(shape), data);
  }
  const size_t n = src.size() / static_cast<size_t>(stored_dtype_size(dtype));
  auto buffer = std::make_shared<HeapBuffer>(n * 4);
  float* out = reinterpret_cast<float*>(buffer->mutable_bytes().data());
  // Large tensors are converted by several threads, in ranges of whole 4 KiB output pages: the
  // time is mostly first-touch page faults of the new buffer (and of the mapped file), which
  // the kernel serves in parallel. Each element is converted the same way whatever the split.
  constexpr size_t kPerThread = size_t{1} << 21, kPage = 1024;
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t parts = std::min<size_t>({hw, 16, std::max<size_t>(n / kPerThread, 1)});
  if (parts <= 1) {
    convert_stored(src.data(), dtype, 0, n, out);
  } else {
    const size_t step = (n / parts + kPage - 1) / kPage * kPage;
    std::vector<std::thread> workers;
    for (size_t p = 1; p < parts && p * step < n; ++p) {
      workers.emplace_back(convert_stored, src.data(), dtype, p * step, std::min(n, (p + 1) * step), out);
    }
    convert_stored(src.data(), dtype, 0, std::min(n, step), out);
    for (std::thread& t : workers) t.join();
  }
  // The stored bytes are not read again: a mapped checkpoint's pages leave the resident set
  // (an F16 Llama-3.2-1B holds 2.3 GB of them next to its 4.9 GB of F32).
  if (data.buffer != nullptr) data.buffer->release_pages(data.offset, src.size());
  return Weight{std::move(shape), BufferView{std::move(buffer), 0, n * 4}};
}

bool weights_bit_equal(const Weight& a, const Weight& b) {
  if (a.shape != b.shape || a.data.size != b.data.size) return false;
  return a.data.size == 0 ||
         std::memcmp(a.data.bytes().data(), b.data.bytes().data(), a.data.size) == 0;
}

namespace {

// Row h*Dh + j of the result takes row h*Dh + from(j) of `w` (per head).
Weight permute_head_rows(const Weight& w, int64_t n_heads, int64_t head_dim,
                         const std::function<int64_t(int64_t)>& from) {
  const int64_t rows = w.shape[0];
  const size_t row_bytes = static_cast<size_t>(w.numel() / rows) * 4;
  auto buffer = std::make_shared<HeapBuffer>(static_cast<size_t>(rows) * row_bytes);
  const std::byte* src = w.data.bytes().data();
  std::byte* dst = buffer->mutable_bytes().data();
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < head_dim; ++j) {
      std::memcpy(dst + (h * head_dim + j) * row_bytes, src + (h * head_dim + from(j)) * row_bytes,
                  row_bytes);
    }
  }
  return Weight{w.shape, BufferView{std::move(buffer), 0, static_cast<size_t>(rows) * row_bytes}};
}

// The rotary dims R of a per-head row permutation (rotary_dim, or head_dim when 0), checked.
int64_t permuted_rotary_dims(const Weight& w, int64_t n_heads, int64_t head_dim,
                             int64_t rotary_dim) {
  const int64_t r = rotary_dim > 0 ? rotary_dim : head_dim;
  HS_CHECK(!w.shape.empty() && w.shape[0] == n_heads * head_dim && r % 2 == 0 && r <= head_dim,
           "rotate-half / interleaved permutation: rows must be n_heads * head_dim, rotary dims "
           "even and at most head_dim");
  return r;
}

}  // namespace

// Within the first R rows of each head: rotate-half row j < R/2 is interleaved row 2j, row
// R/2 + j is row 2j + 1; rows >= R stay.
Weight permute_interleaved_to_rotate_half(const Weight& w, int64_t n_heads, int64_t head_dim,
                                          int64_t rotary_dim) {
  const int64_t r = permuted_rotary_dims(w, n_heads, head_dim, rotary_dim), half = r / 2;
  return permute_head_rows(w, n_heads, head_dim, [&](int64_t j) {
    return j >= r ? j : j < half ? 2 * j : 2 * (j - half) + 1;
  });
}

Weight permute_rotate_half_to_interleaved(const Weight& w, int64_t n_heads, int64_t head_dim,
                                          int64_t rotary_dim) {
  const int64_t r = permuted_rotary_dims(w, n_heads, head_dim, rotary_dim), half = r / 2;
  return permute_head_rows(w, n_heads, head_dim, [&](int64_t j) {
    return j >= r ? j : j % 2 == 0 ? j / 2 : half + j / 2;
  });
}

// ---- Random models -------------------------------------------------------------------------

namespace {

// splitmix64's output function: a bijective 64-bit mixer.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// Fills out[begin, end) with offset + scale * u, u uniform in [-1, 1) from 24 hash bits; one
// 64-bit hash gives the values of elements 2k and 2k + 1. `begin` is even.
struct FillJob {
  float* out;
  uint64_t key;   // per-weight stream key
  int64_t begin;  // element range [begin, end) of the weight
  int64_t end;
  float offset;
  float scale;
};

void run_fill(const FillJob& job) {
  auto uniform = [](uint64_t bits24) { return static_cast<float>(bits24) * 0x1p-23f - 1.0f; };
  for (int64_t i = job.begin; i < job.end; i += 2) {
    const uint64_t r = mix64(job.key + static_cast<uint64_t>(i / 2 + 1) * kGolden);
    job.out[i] = job.offset + job.scale * uniform(r >> 40);
    if (i + 1 < job.end) job.out[i + 1] = job.offset + job.scale * uniform((r >> 16) & 0xffffff);
  }
}

}  // namespace

LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed) {
  return make_random_llama(config, seed, RandomOptions{});
}

LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed,
                             const RandomOptions& options) {
  LlamaModel model;
  model.config = config;
  model.source = fmt::format("random(seed {})", seed);
  model.weights.layers.resize(static_cast<size_t>(std::max<int64_t>(config.n_layers, 0)));
  const std::vector<std::vector<int64_t>> shapes = expected_shapes(config);
  const std::vector<NamedWeight> named = named_weights(model);

  constexpr int64_t kChunk = int64_t{1} << 20;
  std::vector<FillJob> jobs;
  for (size_t n = 0; n < named.size(); ++n) {
    if (shapes[n].empty()) continue;
    Weight& w = *const_cast<Weight*>(named[n].weight);
    w.shape = shapes[n];
    const int64_t numel = w.numel();
    auto buffer = std::make_shared<HeapBuffer>(static_cast<size_t>(numel) * 4);
    float* out = reinterpret_cast<float*>(buffer->mutable_bytes().data());
    w.data = BufferView{std::move(buffer), 0, static_cast<size_t>(numel) * 4};
    // Norms 1 + 0.1u, biases 0.1u, matrices u / sqrt(in).
    const bool is_norm = named[n].name.ends_with("norm");
    const float offset = is_norm ? 1.0f : 0.0f;
    const float scale =
        w.shape.size() == 2 ? 1.0f / std::sqrt(static_cast<float>(w.shape[1])) : 0.1f;
    const uint64_t key = mix64(seed * kGolden + n);
    for (int64_t begin = 0; begin < numel; begin += kChunk) {
      jobs.push_back({out, key, begin, std::min(numel, begin + kChunk), offset, scale});
    }
  }

  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, static_cast<int>(std::max<size_t>(jobs.size(), 1)));
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t j = next++; j < jobs.size(); j = next++) run_fill(jobs[j]);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return model;
}

}  // namespace hs::frontend

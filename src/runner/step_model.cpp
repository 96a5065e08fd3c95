// StepModelInfo helpers: element sizes, the KV manager shape a model needs, the info of a step
// graph's I/O, and the check of a step's arguments.
#include "headsplit/runner/step_model.h"

#include <fmt/ranges.h>

namespace hs::runner {

int64_t kv_element_size(KvElement element) {
  switch (element) {
    case KvElement::kF32: return 4;
    case KvElement::kU8: return 1;
    case KvElement::kU16: return 2;
  }
  return 4;
}

KvElement kv_element_of(opset::DType cache_dtype) {
  switch (cache_dtype) {
    case opset::DType::kU8: return KvElement::kU8;
    case opset::DType::kU16: return KvElement::kU16;
    default:
      HS_CHECK(cache_dtype == opset::DType::kF32, "kv_element_of: not a step-graph cache type");
      return KvElement::kF32;
  }
}

KvShape StepModelInfo::kv_shape(int64_t min_ar_len, int64_t max_ar_len) const {
  return KvShape{.n_layers = n_layers,
                 .n_kv_heads = n_kv_heads,
                 .head_dim = head_dim,
                 .context_len = context_len,
                 .min_ar_len = min_ar_len,
                 .max_ar_len = max_ar_len,
                 .elem_size = kv_element_size(kv_element)};
}

StepModelInfo step_model_info(const opset::StepIo& io, std::vector<int64_t> ar_lens) {
  const opset::StepDims& d = io.dims;
  StepModelInfo info;
  info.n_layers = d.n_layers;
  info.n_kv_heads = d.n_kv_heads;
  info.head_dim = d.head_dim;
  info.context_len = d.context_len;
  info.vocab_size = d.vocab_size;
  info.ar_lens = std::move(ar_lens);
  info.kv_element = kv_element_of(io.cache_dtype);
  if (info.kv_element == KvElement::kF32) return info;
  // Real value of stored q: scale * (q - zero_point), the per-tensor params of each cache.
  auto zero_point = [](const opset::QuantParams& q) {
    return q.zero_points.empty() ? 0 : q.zero_points[0];
  };
  for (int64_t l = 0; l < d.n_layers; ++l) {
    for (int64_t g = 0; g < d.n_kv_heads; ++g) {
      const auto slot =
          static_cast<size_t>(d.layout == opset::CacheLayout::kPerHead ? l * d.n_kv_heads + g : l);
      const opset::CacheSlot& s = io.slots[slot];
      info.k_head_scales.push_back(s.k_quant.scales[0]);
      info.k_head_zero_points.push_back(zero_point(s.k_quant));
      info.v_head_scales.push_back(s.v_quant.scales[0]);
      info.v_head_zero_points.push_back(zero_point(s.v_quant));
      if (g > 0) continue;
      info.k_scales.push_back(s.k_quant.scales[0]);
      info.k_zero_points.push_back(zero_point(s.k_quant));
      info.v_scales.push_back(s.v_quant.scales[0]);
      info.v_zero_points.push_back(zero_point(s.v_quant));
    }
  }
  return info;
}

Error no_graph_for(int64_t ar_len, std::span<const int64_t> ar_lens) {
  return errorf(ErrorKind::kInvalidArgument, "step: no graph for ar length {} (have {})", ar_len,
                fmt::join(ar_lens, ", "));
}

Status check_step_arguments(const opset::StepIo& io, const KvManager& kv, size_t tokens,
                            size_t positions, size_t mask, size_t logits, std::string_view graph) {
  const opset::StepDims& d = io.dims;
  const KvShape& ks = kv.shape();
  const int64_t elem = kv_element_size(kv_element_of(io.cache_dtype));
  if (kv.ar_len() != d.ar_len || ks.n_layers != d.n_layers || ks.n_kv_heads != d.n_kv_heads ||
      ks.head_dim != d.head_dim || ks.context_len != d.context_len || ks.elem_size != elem) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: kv cache (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element) does not "
                  "match {} (L={}, Hkv={}, Dh={}, C={}, T={}, {} bytes/element)",
                  ks.n_layers, ks.n_kv_heads, ks.head_dim, ks.context_len, kv.ar_len(),
                  ks.elem_size, graph, d.n_layers, d.n_kv_heads, d.head_dim, d.context_len,
                  d.ar_len, elem);
  }
  const auto t = static_cast<size_t>(d.ar_len), c = static_cast<size_t>(d.context_len),
             v = static_cast<size_t>(d.vocab_size);
  const size_t masks = io.has_window_mask ? 2 : 1;  // the causal mask, then the window mask
  if (tokens != t || positions != t || mask != masks * t * c || logits != t * v) {
    return errorf(ErrorKind::kInvalidArgument,
                  "step: got {} tokens, {} positions, {} mask and {} logits elements; {} needs "
                  "{}, {}, {} and {}",
                  tokens, positions, mask, logits, graph, t, t, masks * t * c, t * v);
  }
  return ok_status();
}

Result<int64_t> check_sliding_window(const opset::StepIo& io, int64_t window,
                                     std::string_view what) {
  if (io.has_window_mask && window <= 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: the graph takes {} but the model gives no sliding window (got {})", what,
                  opset::kWindowMaskName, window);
  }
  if (!io.has_window_mask && window > 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: sliding window {} given but the graph has no {} input", what, window,
                  opset::kWindowMaskName);
  }
  return io.has_window_mask ? window : int64_t{0};
}

}  // namespace hs::runner

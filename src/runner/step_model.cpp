// StepModelInfo helpers: element sizes and the KV manager shape a model needs.
#include "headsplit/runner/step_model.h"

namespace hs::runner {

int64_t kv_element_size(KvElement element) {
  switch (element) {
    case KvElement::kF32: return 4;
    case KvElement::kU8: return 1;
    case KvElement::kU16: return 2;
  }
  return 4;
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

}  // namespace hs::runner

// KvManager: per-layer K/V buffers, the SmartMask cache update and the AR-length switch
// (reference §9.1, §9.2, §9.4). Everything is byte copies of elem_size-byte elements.
#include "headsplit/runner/kv_manager.h"

#include <algorithm>
#include <cstring>

namespace hs::runner {

namespace {

size_t to_size(int64_t v) { return static_cast<size_t>(v); }

Status check_positive(int64_t value, std::string_view field) {
  if (value <= 0) {
    return errorf(ErrorKind::kInvalidArgument, "kv cache shape: {} must be positive, got {}", field,
                  value);
  }
  return ok_status();
}

// Moves `rows` blocks of `count` elements from stride `src` to stride `dst` in place.
// dst < src: front-to-back (each block moves left, onto space already vacated).
// dst > src: back-to-front (each block moves right, past blocks not yet moved).
void move_rows(std::byte* base, int64_t rows, int64_t count, int64_t src, int64_t dst,
               int64_t elem_size) {
  if (src == dst || count == 0) return;
  auto move_one = [&](int64_t r) {
    std::memmove(base + to_size(r * dst * elem_size), base + to_size(r * src * elem_size),
                 to_size(count * elem_size));
  };
  if (dst < src) {
    for (int64_t r = 0; r < rows; ++r) move_one(r);
  } else {
    for (int64_t r = rows - 1; r >= 0; --r) move_one(r);
  }
}

}  // namespace

Result<KvManager> KvManager::create(const KvShape& shape) {
  HS_TRY(check_positive(shape.n_layers, "n_layers"));
  HS_TRY(check_positive(shape.n_kv_heads, "n_kv_heads"));
  HS_TRY(check_positive(shape.head_dim, "head_dim"));
  HS_TRY(check_positive(shape.context_len, "context_len"));
  HS_TRY(check_positive(shape.min_ar_len, "min_ar_len"));
  HS_TRY(check_positive(shape.elem_size, "elem_size"));
  if (shape.max_ar_len < shape.min_ar_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache shape: max_ar_len {} is smaller than min_ar_len {}", shape.max_ar_len,
                  shape.min_ar_len);
  }
  if (shape.max_ar_len >= shape.context_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache shape: max_ar_len {} leaves no cache slot in context {}",
                  shape.max_ar_len, shape.context_len);
  }
  return KvManager(shape);
}

KvManager::KvManager(const KvShape& shape)
    : shape_(shape), ar_cur_(shape.max_ar_len), p_max_(shape.context_len - shape.min_ar_len) {
  const int64_t row_bytes = shape.n_kv_heads * shape.head_dim * shape.elem_size;
  const auto cache_bytes = to_size(row_bytes * p_max_);
  const auto out_bytes = to_size(row_bytes * shape.max_ar_len);
  const auto layers = to_size(shape.n_layers);
  k_in_.assign(layers, std::vector<std::byte>(cache_bytes));
  v_in_.assign(layers, std::vector<std::byte>(cache_bytes));
  k_out_.assign(layers, std::vector<std::byte>(out_bytes));
  v_out_.assign(layers, std::vector<std::byte>(out_bytes));
}

size_t KvManager::layer_index(int64_t layer) const {
  HS_CHECK(layer >= 0 && layer < shape_.n_layers, "kv cache layer index out of range");
  return to_size(layer);
}

size_t KvManager::cache_bytes() const {
  return to_size(shape_.n_kv_heads * shape_.head_dim * cache_len() * shape_.elem_size);
}
size_t KvManager::out_bytes() const {
  return to_size(shape_.n_kv_heads * shape_.head_dim * ar_cur_ * shape_.elem_size);
}

std::span<std::byte> KvManager::k_in(int64_t layer) {
  return std::span(k_in_[layer_index(layer)]).first(cache_bytes());
}
std::span<std::byte> KvManager::v_in(int64_t layer) {
  return std::span(v_in_[layer_index(layer)]).first(cache_bytes());
}
std::span<std::byte> KvManager::k_out(int64_t layer) {
  return std::span(k_out_[layer_index(layer)]).first(out_bytes());
}
std::span<std::byte> KvManager::v_out(int64_t layer) {
  return std::span(v_out_[layer_index(layer)]).first(out_bytes());
}
std::span<const std::byte> KvManager::k_in(int64_t layer) const {
  return std::span(k_in_[layer_index(layer)]).first(cache_bytes());
}
std::span<const std::byte> KvManager::v_in(int64_t layer) const {
  return std::span(v_in_[layer_index(layer)]).first(cache_bytes());
}
std::span<const std::byte> KvManager::k_out(int64_t layer) const {
  return std::span(k_out_[layer_index(layer)]).first(out_bytes());
}
std::span<const std::byte> KvManager::v_out(int64_t layer) const {
  return std::span(v_out_[layer_index(layer)]).first(out_bytes());
}

Status KvManager::update(int64_t n_past, int64_t n_update) {
  const int64_t p_cur = cache_len();
  if (n_past < 0 || n_update < 0 || n_update > ar_cur_) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache update: n_past {} / n_update {} invalid for ar length {}", n_past,
                  n_update, ar_cur_);
  }
  if (n_past + n_update > p_cur) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache update: slots [{}, {}) do not fit the {} cache slots of ar length {} "
                  "(context {})",
                  n_past, n_past + n_update, p_cur, ar_cur_, shape_.context_len);
  }
  const int64_t es = shape_.elem_size;
  const int64_t dh = shape_.head_dim;
  const int64_t k_rows = shape_.n_kv_heads * dh;
  for (size_t l = 0; l < k_in_.size(); ++l) {
    // K: row r of k_out [Hkv*Dh, T_cur] -> row r of k_in [Hkv*Dh, P_cur], columns n_past...
    std::byte* k_dst = k_in_[l].data();
    const std::byte* k_src = k_out_[l].data();
    for (int64_t r = 0; r < k_rows; ++r) {
      std::memcpy(k_dst + to_size((r * p_cur + n_past) * es), k_src + to_size(r * ar_cur_ * es),
                  to_size(n_update * es));
    }
    // V: head h of v_out [Hkv, T_cur, Dh] -> head h of v_in [Hkv, P_cur, Dh], rows n_past...
    std::byte* v_dst = v_in_[l].data();
    const std::byte* v_src = v_out_[l].data();
    for (int64_t h = 0; h < shape_.n_kv_heads; ++h) {
      std::memcpy(v_dst + to_size((h * p_cur + n_past) * dh * es),
                  v_src + to_size(h * ar_cur_ * dh * es), to_size(n_update * dh * es));
    }
  }
  return ok_status();
}

Status KvManager::update(int64_t n_past, std::span<const int64_t> rows) {
  const auto n_update = static_cast<int64_t>(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= ar_cur_ || (i > 0 && rows[i] <= rows[i - 1])) {
      return errorf(ErrorKind::kInvalidArgument,
                    "kv cache update: selected row {} at index {} is not ascending within ar "
                    "length {}",
                    rows[i], i, ar_cur_);
    }
  }
  if (n_past < 0 || n_past + n_update > cache_len()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache update: slots [{}, {}) do not fit the {} cache slots of ar length {} "
                  "(context {})",
                  n_past, n_past + n_update, cache_len(), ar_cur_, shape_.context_len);
  }
  const int64_t es = shape_.elem_size;
  const int64_t dh = shape_.head_dim;
  const int64_t p_cur = cache_len();
  const int64_t k_rows = shape_.n_kv_heads * dh;
  for (size_t l = 0; l < k_in_.size(); ++l) {
    // K: column rows[i] of each row r of k_out [Hkv*Dh, T_cur] -> column n_past + i of k_in.
    std::byte* k_dst = k_in_[l].data();
    const std::byte* k_src = k_out_[l].data();
    for (int64_t r = 0; r < k_rows; ++r) {
      for (int64_t i = 0; i < n_update; ++i) {
        std::memcpy(k_dst + to_size((r * p_cur + n_past + i) * es),
                    k_src + to_size((r * ar_cur_ + rows[to_size(i)]) * es), to_size(es));
      }
    }
    // V: row rows[i] of every head h of v_out [Hkv, T_cur, Dh] -> row n_past + i of head h.
    std::byte* v_dst = v_in_[l].data();
    const std::byte* v_src = v_out_[l].data();
    for (int64_t h = 0; h < shape_.n_kv_heads; ++h) {
      for (int64_t i = 0; i < n_update; ++i) {
        std::memcpy(v_dst + to_size(((h * p_cur + n_past + i) * dh) * es),
                    v_src + to_size(((h * ar_cur_ + rows[to_size(i)]) * dh) * es),
                    to_size(dh * es));
      }
    }
  }
  return ok_status();
}

Status KvManager::rearrange(int64_t new_ar_len, int64_t n_past) {
  if (new_ar_len < shape_.min_ar_len || new_ar_len > shape_.max_ar_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache rearrange: ar length {} is outside the allocated range [{}, {}]",
                  new_ar_len, shape_.min_ar_len, shape_.max_ar_len);
  }
  const int64_t src = cache_len();
  const int64_t dst = shape_.context_len - new_ar_len;
  if (n_past < 0 || n_past > std::min(src, dst)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "kv cache rearrange: {} cached slots do not fit the {} cache slots of ar length "
                  "{} (context {})",
                  n_past, n_past > src ? src : dst, n_past > src ? ar_cur_ : new_ar_len,
                  shape_.context_len);
  }
  const int64_t es = shape_.elem_size;
  const int64_t dh = shape_.head_dim;
  for (size_t l = 0; l < k_in_.size(); ++l) {
    // K rows are [Hkv*Dh] blocks of P elements; V heads are [Hkv] blocks of P*Dh elements.
    move_rows(k_in_[l].data(), shape_.n_kv_heads * dh, n_past, src, dst, es);
    move_rows(v_in_[l].data(), shape_.n_kv_heads, n_past * dh, src * dh, dst * dh, es);
  }
  ar_cur_ = new_ar_len;
  return ok_status();
}

int64_t KvManager::bytes() const {
  int64_t total = 0;
  for (size_t l = 0; l < k_in_.size(); ++l) {
    total += static_cast<int64_t>(k_in_[l].size() + v_in_[l].size() + k_out_[l].size() +
                                  v_out_[l].size());
  }
  return total;
}

void KvManager::clear() {
  for (auto* buffers : {&k_in_, &v_in_, &k_out_, &v_out_}) {
    for (auto& b : *buffers) std::fill(b.begin(), b.end(), std::byte{0});
  }
}

}  // namespace hs::runner

// The KV cache manager: one K and one V buffer pair per layer, updated with SmartMask.
//
// Per layer (elements of `elem_size` bytes; float32, or uint8/uint16 for quantized caches):
//   k_in  [Hkv, Dh, P_cur]   pre-transposed keys, row stride P_cur = C - T_cur
//   v_in  [Hkv, P_cur, Dh]
//   k_out [Hkv, Dh, T_cur]   this step's new keys (graph output)
//   v_out [Hkv, T_cur, Dh]
// Buffers are allocated once for the largest P and T (P_max = C - T_min, T_max) and reused
// when the AR length switches (rearrange()). Cache slot j holds position j. See
// docs/kv-cache.md for the full scheme and why there is no ShiftPointer mode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::runner {

struct KvShape {
  int64_t n_layers = 0;     // L
  int64_t n_kv_heads = 0;   // Hkv
  int64_t head_dim = 0;     // Dh
  int64_t context_len = 0;  // C
  int64_t min_ar_len = 1;   // smallest T used (sets P_max = C - T_min)
  int64_t max_ar_len = 1;   // largest T used
  int64_t elem_size = 4;    // bytes per element
};

class KvManager {
 public:
  static Result<KvManager> create(const KvShape& shape);

  const KvShape& shape() const { return shape_; }
  int64_t ar_len() const { return ar_cur_; }
  int64_t cache_len() const { return shape_.context_len - ar_cur_; }  // P_cur

  // Byte views of the four buffers of a layer, sized for the current AR length.
  std::span<std::byte> k_in(int64_t layer);
  std::span<std::byte> v_in(int64_t layer);
  std::span<std::byte> k_out(int64_t layer);
  std::span<std::byte> v_out(int64_t layer);
  std::span<const std::byte> k_in(int64_t layer) const;
  std::span<const std::byte> v_in(int64_t layer) const;

  // Copies the first `n_update` new entries of every layer from the out buffers into cache
  // slots [n_past, n_past + n_update): per K row (Hkv*Dh rows) n_update elements; per V head
  // n_update*Dh contiguous elements. Error if the slots do not fit in P_cur.
  Status update(int64_t n_past, int64_t n_update);

  // Switches the AR length: moves every K row / V head block from stride C - T_cur to
  // C - T_new (front-to-back when shrinking, back-to-front when growing, so nothing is
  // overwritten). Cached slots [0, n_past) keep their values; n_past must fit the new P.
  Status rearrange(int64_t new_ar_len, int64_t n_past);

  // Total bytes held (k_in, v_in, k_out, v_out over all layers).
  int64_t bytes() const;
  // Fills every buffer with zero bytes.
  void clear();

 private:
  explicit KvManager(const KvShape& shape);
  KvShape shape_;
  int64_t ar_cur_ = 0;
  int64_t p_max_ = 0;
  std::vector<std::vector<std::byte>> k_in_, v_in_, k_out_, v_out_;
};

// The SmartMask attention mask, uint16 [T, C]: 65535 = attend, 0 = masked.
// Columns [0, P) are cache slots, [P, C) are this step's T tokens.
class AttentionMask {
 public:
  AttentionMask(int64_t ar_len, int64_t context_len);
  // Causal init: row i sees cache slots [0, n_past) and current tokens 0..i.
  void init_causal(int64_t n_past);
  // Unmasks cache slots [n_past, n_past + n_update) for every row (after KvManager::update).
  void unmask(int64_t n_past, int64_t n_update);
  std::span<const uint16_t> data() const { return data_; }
  int64_t ar_len() const { return ar_len_; }
  int64_t context_len() const { return context_len_; }
  uint16_t at(int64_t row, int64_t col) const { return data_[static_cast<size_t>(row * context_len_ + col)]; }

  static constexpr uint16_t kAttend = 65535;
  static constexpr uint16_t kMasked = 0;

 private:
  int64_t ar_len_;
  int64_t context_len_;
  std::vector<uint16_t> data_;
};

}  // namespace hs::runner

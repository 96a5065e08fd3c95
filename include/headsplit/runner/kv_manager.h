// The KV cache manager: one K and one V buffer pair per layer, updated with SmartMask.
//
// Per layer (elements of `elem_size` bytes; float32, or uint8/uint16 for quantized caches):
//   k_in  [Hkv, Dh, P_cur]   pre-transposed keys, row stride P_cur = C - T_cur
//   v_in  [Hkv, P_cur, Dh]
//   k_out [Hkv, Dh, T_cur]   this step's new keys (graph output)
//   v_out [Hkv, T_cur, Dh]
// Buffers are allocated once for the largest P and T (P_max = C - T_min, T_max) and reused
// when the AR length switches (rearrange()). Cache slot j holds position j. The manager only
// moves bytes: it never looks at the values, so every element type works the same way. See
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
  int64_t max_ar_len = 1;   // largest T used; must be < C (at least one cache slot)
  int64_t elem_size = 4;    // bytes per element
};

class KvManager {
 public:
  // Errors (kInvalidArgument) name the offending field: non-positive sizes, T_min > T_max,
  // T_max >= C.
  static Result<KvManager> create(const KvShape& shape);

  const KvShape& shape() const { return shape_; }
  // The current AR length T_cur; starts at max_ar_len.
  int64_t ar_len() const { return ar_cur_; }
  int64_t cache_len() const { return shape_.context_len - ar_cur_; }  // P_cur
  int64_t max_cache_len() const { return p_max_; }                    // P_max

  // Byte views of the four buffers of a layer, sized for the current AR length.
  std::span<std::byte> k_in(int64_t layer);
  std::span<std::byte> v_in(int64_t layer);
  std::span<std::byte> k_out(int64_t layer);
  std::span<std::byte> v_out(int64_t layer);
  std::span<const std::byte> k_in(int64_t layer) const;
  std::span<const std::byte> v_in(int64_t layer) const;
  std::span<const std::byte> k_out(int64_t layer) const;
  std::span<const std::byte> v_out(int64_t layer) const;

  // Copies the first `n_update` new entries of every layer from the out buffers into cache
  // slots [n_past, n_past + n_update): per K row (Hkv*Dh rows) n_update elements; per V head
  // n_update*Dh contiguous elements. Error (kInvalidArgument) if n_update > T_cur or the
  // slots do not fit in P_cur.
  Status update(int64_t n_past, int64_t n_update);

  // The selected-slot update (lookahead decoding, reference §9.2): copies the step's entries
  // at rows `rows` (ascending, distinct, each < T_cur) of every layer's out buffers into cache
  // slots n_past, n_past + 1, ...: per K row (Hkv*Dh rows) the element of each selected column,
  // per V head (every one of the Hkv heads) the Dh elements of each selected row. Error
  // (kInvalidArgument) naming the row if the rows are not ascending and in [0, T_cur), or if
  // the slots do not fit in P_cur.
  Status update(int64_t n_past, std::span<const int64_t> rows);

  // Switches the AR length: moves the cached slots [0, n_past) of every K row / V head block
  // from stride P_cur = C - T_cur to P_new = C - T_new. When P shrinks (T grows) rows move
  // front-to-back, when P grows (T shrinks) back-to-front, so no row overwrites one that has
  // not moved yet. Slots >= n_past are left stale (the mask hides them). Error
  // (kInvalidArgument) if T_new is outside [min_ar_len, max_ar_len] or n_past > P_new.
  Status rearrange(int64_t new_ar_len, int64_t n_past);

  // Total bytes held (k_in, v_in, k_out, v_out over all layers).
  int64_t bytes() const;
  // Fills every buffer with zero bytes.
  void clear();

 private:
  explicit KvManager(const KvShape& shape);
  size_t layer_index(int64_t layer) const;  // HS_CHECKs 0 <= layer < L
  size_t cache_bytes() const;               // bytes of one k_in / v_in at the current AR length
  size_t out_bytes() const;                 // bytes of one k_out / v_out at the current AR length
  KvShape shape_;
  int64_t ar_cur_ = 0;
  int64_t p_max_ = 0;
  // One entry per layer; k_in/v_in hold Hkv*Dh*P_max elements, k_out/v_out Hkv*Dh*T_max.
  std::vector<std::vector<std::byte>> k_in_, v_in_, k_out_, v_out_;
};

// The SmartMask attention mask, uint16 [T, C]: 65535 = attend, 0 = masked.
// Columns [0, P) are cache slots (slot j = position j), [P, C) are this step's T tokens.
// Arguments out of range are programmer errors (HS_CHECK): the generator validates first.
//
// Sliding window W > 0 (Gemma3's local layers, reference §9.3): row i, at position
// pos_i = n_past + i, also needs pos_i - pos < W for every column it attends to: cache slots
// j <= pos_i - W and current tokens i' <= i - W stay masked. unmask() re-masks, for every row,
// the slots that fall out of the window at the next step's positions (n_past + n_update + i;
// after a tree init, n_past + n_update + depth_i). A tree row i is at position n_past + depth_i
// (depth: 0 for a root, the parent's + 1), and keeps only the ancestors less than W positions
// before it.
class AttentionMask {
 public:
  // Requires 0 < ar_len <= context_len and window >= 0 (0: no window). Starts fully masked.
  AttentionMask(int64_t ar_len, int64_t context_len, int64_t window = 0);
  // Causal init: row i sees cache slots [0, n_past) and current tokens 0..i (within the window).
  void init_causal(int64_t n_past);
  // Tree init (reference §9.3, attention_map): row i with parents[i] < 0 sees cache slots
  // [0, n_past); otherwise it sees what row parents[i] sees (parents[i] < i). Every row also sees
  // itself. parents has T entries. Causal init is parents = {-1, 0, 1, ..., T-2}.
  void init_tree(int64_t n_past, std::span<const int32_t> parents);
  // Unmasks cache slots [n_past, n_past + n_update) for every row (after KvManager::update);
  // with a window, then masks slots [0, n_past + n_update + i + 1 - W) of row i again.
  void unmask(int64_t n_past, int64_t n_update);
  std::span<const uint16_t> data() const { return data_; }
  // Row i's position minus n_past: i after causal init, its tree depth after tree init.
  int64_t row_offset(int64_t row) const { return offsets_[static_cast<size_t>(row)]; }
  int64_t ar_len() const { return ar_len_; }
  int64_t context_len() const { return context_len_; }
  int64_t cache_len() const { return context_len_ - ar_len_; }  // P
  int64_t window() const { return window_; }
  uint16_t at(int64_t row, int64_t col) const {
    return data_[static_cast<size_t>(row * context_len_ + col)];
  }

  static constexpr uint16_t kAttend = 65535;
  static constexpr uint16_t kMasked = 0;

 private:
  // With a window: masks, in row i, the cache slots before position base + i + 1 - W.
  void mask_outside_window(int64_t base);
  int64_t ar_len_;
  int64_t context_len_;
  int64_t window_;
  std::vector<uint16_t> data_;     // [T, C]
  std::vector<int64_t> offsets_;  // [T] row position - n_past
};

// The masks a step of a step model reads: the causal (or tree) mask and, when window > 0 (models
// with sliding-window layers), the windowed one; data() is StepModel::step's mask argument
// ([T, C], or [2, T, C]: causal, then window; the window form copies both per call).
class StepMasks {
 public:
  StepMasks(int64_t ar_len, int64_t context_len, int64_t window);
  void init_causal(int64_t n_past);
  // Tree init of both masks (lookahead); rows at positions n_past + depth.
  void init_tree(int64_t n_past, std::span<const int32_t> parents);
  void unmask(int64_t n_past, int64_t n_update);
  std::span<const uint16_t> data();

 private:
  AttentionMask causal_, window_;
  bool windowed_;
  std::vector<uint16_t> both_;
};

}  // namespace hs::runner

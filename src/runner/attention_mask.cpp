// AttentionMask: the SmartMask uint16 [T, C] mask (reference §9.3), causal and tree init, unmask.
#include <algorithm>

#include "headsplit/runner/kv_manager.h"

namespace hs::runner {

AttentionMask::AttentionMask(int64_t ar_len, int64_t context_len)
    : ar_len_(ar_len), context_len_(context_len) {
  HS_CHECK(ar_len > 0 && ar_len <= context_len, "attention mask needs 0 < T <= C");
  data_.assign(static_cast<size_t>(ar_len * context_len), kMasked);
}

void AttentionMask::init_causal(int64_t n_past) {
  const int64_t p = cache_len();
  HS_CHECK(n_past >= 0 && n_past <= p, "attention mask: n_past outside the cache slots");
  std::fill(data_.begin(), data_.end(), kMasked);
  for (int64_t i = 0; i < ar_len_; ++i) {
    auto row = data_.begin() + i * context_len_;
    std::fill(row, row + n_past, kAttend);         // the whole past
    std::fill(row + p, row + p + i + 1, kAttend);  // current tokens 0..i
  }
}

void AttentionMask::init_tree(int64_t n_past, std::span<const int32_t> parents) {
  const int64_t p = cache_len();
  HS_CHECK(n_past >= 0 && n_past <= p, "attention mask: n_past outside the cache slots");
  HS_CHECK(static_cast<int64_t>(parents.size()) == ar_len_, "attention mask: one parent per row");
  std::fill(data_.begin(), data_.end(), kMasked);
  for (int64_t i = 0; i < ar_len_; ++i) {
    auto row = data_.begin() + i * context_len_;
    const int32_t parent = parents[static_cast<size_t>(i)];
    HS_CHECK(parent < i, "attention mask: a row's parent must come before it");
    if (parent < 0) {
      std::fill(row, row + n_past, kAttend);  // the whole past
    } else {
      auto from = data_.begin() + parent * context_len_;
      std::copy(from, from + context_len_, row);  // what the parent sees
    }
    row[p + i] = kAttend;  // itself
  }
}

void AttentionMask::unmask(int64_t n_past, int64_t n_update) {
  HS_CHECK(n_past >= 0 && n_update >= 0 && n_past + n_update <= cache_len(),
           "attention mask: unmasked slots outside the cache slots");
  for (int64_t i = 0; i < ar_len_; ++i) {
    auto row = data_.begin() + i * context_len_;
    std::fill(row + n_past, row + n_past + n_update, kAttend);
  }
}

}  // namespace hs::runner

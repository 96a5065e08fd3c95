// AttentionMask: the SmartMask uint16 [T, C] mask (reference §9.3), causal and tree init, unmask,
// and the sliding-window variant (columns that fall out of the window are masked again).
#include <algorithm>

#include "headsplit/runner/kv_manager.h"

namespace hs::runner {

AttentionMask::AttentionMask(int64_t ar_len, int64_t context_len, int64_t window)
    : ar_len_(ar_len), context_len_(context_len), window_(window) {
  HS_CHECK(ar_len > 0 && ar_len <= context_len, "attention mask needs 0 < T <= C");
  HS_CHECK(window >= 0, "attention mask: negative window");
  data_.assign(static_cast<size_t>(ar_len * context_len), kMasked);
  offsets_.resize(static_cast<size_t>(ar_len));
  for (int64_t i = 0; i < ar_len; ++i) offsets_[static_cast<size_t>(i)] = i;
}

void AttentionMask::mask_outside_window(int64_t base) {
  if (window_ == 0) return;
  const int64_t p = cache_len();
  for (int64_t i = 0; i < ar_len_; ++i) {
    // Row i at position pos = base + offset_i sees positions (pos - W, pos].
    const int64_t end =
        std::clamp<int64_t>(base + offsets_[static_cast<size_t>(i)] + 1 - window_, 0, p);
    auto row = data_.begin() + i * context_len_;
    std::fill(row, row + end, kMasked);
  }
}

void AttentionMask::init_causal(int64_t n_past) {
  const int64_t p = cache_len();
  HS_CHECK(n_past >= 0 && n_past <= p, "attention mask: n_past outside the cache slots");
  std::fill(data_.begin(), data_.end(), kMasked);
  for (int64_t i = 0; i < ar_len_; ++i) {
    offsets_[static_cast<size_t>(i)] = i;
    auto row = data_.begin() + i * context_len_;
    std::fill(row, row + n_past, kAttend);  // the whole past
    // Current tokens 0..i; with a window only those within W - 1 rows before i.
    const int64_t first = window_ > 0 ? std::max<int64_t>(0, i + 1 - window_) : 0;
    std::fill(row + p + first, row + p + i + 1, kAttend);
  }
  mask_outside_window(n_past);
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
      offsets_[static_cast<size_t>(i)] = 0;
    } else {
      auto from = data_.begin() + parent * context_len_;
      std::copy(from, from + context_len_, row);  // what the parent sees
      offsets_[static_cast<size_t>(i)] = offsets_[static_cast<size_t>(parent)] + 1;  // depth
    }
    row[p + i] = kAttend;  // itself
  }
  if (window_ == 0) return;
  // Row i (position n_past + depth_i) keeps the ancestors i' less than W positions before it.
  for (int64_t i = 0; i < ar_len_; ++i) {
    auto row = data_.begin() + i * context_len_;
    for (int64_t a = 0; a < i; ++a) {
      if (offsets_[static_cast<size_t>(i)] - offsets_[static_cast<size_t>(a)] >= window_) {
        row[p + a] = kMasked;
      }
    }
  }
  mask_outside_window(n_past);
}

void AttentionMask::unmask(int64_t n_past, int64_t n_update) {
  HS_CHECK(n_past >= 0 && n_update >= 0 && n_past + n_update <= cache_len(),
           "attention mask: unmasked slots outside the cache slots");
  for (int64_t i = 0; i < ar_len_; ++i) {
    auto row = data_.begin() + i * context_len_;
    std::fill(row + n_past, row + n_past + n_update, kAttend);
  }
  mask_outside_window(n_past + n_update);
}

StepMasks::StepMasks(int64_t ar_len, int64_t context_len, int64_t window)
    : causal_(ar_len, context_len), window_(ar_len, context_len, window), windowed_(window > 0) {}

void StepMasks::init_causal(int64_t n_past) {
  causal_.init_causal(n_past);
  if (windowed_) window_.init_causal(n_past);
}

void StepMasks::init_tree(int64_t n_past, std::span<const int32_t> parents) {
  causal_.init_tree(n_past, parents);
  if (windowed_) window_.init_tree(n_past, parents);
}

void StepMasks::unmask(int64_t n_past, int64_t n_update) {
  causal_.unmask(n_past, n_update);
  if (windowed_) window_.unmask(n_past, n_update);
}

std::span<const uint16_t> StepMasks::data() {
  if (!windowed_) return causal_.data();
  both_.assign(causal_.data().begin(), causal_.data().end());
  both_.insert(both_.end(), window_.data().begin(), window_.data().end());
  return both_;
}

}  // namespace hs::runner

// Decoder: one growing token sequence on a StepModel — the KV manager, the SmartMask mask and
// the step buffers — so that generation can continue where it stopped (multi-turn chat keeps
// its cache between turns; positions continue).
//
// Cache slot j holds the entry of position j; n_past() tokens are stored (positions
// [0, n_past)). Every way of appending runs graph steps at positions n_past, n_past + 1, ...:
//   prefill(tokens)   the prefill graph (AR-N), ceil(n / N) chunks, causal mask; stores all n
//   decode(token)     the decode graph (AR-T_d), one token (padding rows past it); stores it
//   run_tree + commit a step with caller-built tokens, positions and mask rows (a tree given as
//                     parents, reference §9.3 attention_map), then stores the selected rows
//                     (lookahead decoding, runner/lookahead.h)
// Switching between AR lengths moves the cache rows to the new stride (KvManager::rearrange)
// and re-initializes the mask for n_past; between steps of the same kind only the new slots are
// unmasked (SmartMask). Context bounds: a step of AR length T has P = C - T slots, so every
// stored position must be < C - T of the graph that stores it. Models with sliding-window
// layers (StepModelInfo::sliding_window > 0) get a second, windowed mask kept the same way
// (AttentionMask with a window); lookahead has no window form (refused at create).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "headsplit/runner/kv_manager.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/support/result.h"

namespace hs::runner {

struct DecoderOptions {
  int64_t prefill_ar_len = 0;    // N; 0: the largest AR length of the model
  int64_t decode_ar_len = 0;     // T_d; 0: the smallest AR length of the model (<= N)
  int64_t lookahead_ar_len = 0;  // T_la for run_tree steps; 0: none
  int32_t pad_token = 0;         // fills rows past the real tokens of a step
};

class Decoder {
 public:
  // Errors (kInvalidArgument): AR lengths the model has no graph for (the message lists the
  // model's), N < T_d, and KvManager errors.
  static Result<Decoder> create(StepModel& model, const DecoderOptions& options);

  const StepModelInfo& info() const { return model_->info(); }
  int64_t context_len() const { return info().context_len; }
  int64_t n_past() const { return n_past_; }
  int64_t prefill_ar_len() const { return prefill_; }
  int64_t decode_ar_len() const { return decode_; }
  int64_t lookahead_ar_len() const { return lookahead_; }
  // The most tokens prefill() can take now: C - N - n_past.
  int64_t prefill_room() const { return context_len() - prefill_ - n_past_; }

  // Stores `tokens` (ids in [0, V)) at positions n_past... with the prefill graph.
  // kInvalidArgument naming the sizes if n_past + n > C - N; step errors name the position.
  Status prefill(std::span<const int32_t> tokens);
  // Stores `token` at position n_past with the decode graph (kInvalidArgument if
  // n_past >= C - T_d).
  Status decode(int32_t token);
  // Runs one step of the lookahead graph: tokens and positions [T_la], mask row i built from
  // parents[i] (AttentionMask::init_tree over the stored slots). Stores nothing.
  Status run_tree(std::span<const int32_t> parents, std::span<const int32_t> tokens,
                  std::span<const int32_t> positions);
  // After run_tree: stores the entries of `rows` (ascending) at slots n_past... and unmasks them.
  Status commit(std::span<const int64_t> rows);

  // Logits row r [V] of the last step (after prefill(), only the last stored token's row is
  // computed: last_logits()).
  std::span<const float> logits_row(int64_t r) const;
  // The logits of the last token stored by prefill() or decode() (the next token's
  // distribution).
  std::span<const float> last_logits() const { return logits_row(last_row_); }

  // Forgets the sequence: n_past = 0 (stale cache bytes stay, masked).
  void reset();

 private:
  Decoder(StepModel& model, KvManager kv, int64_t prefill, int64_t decode, int64_t lookahead,
          int32_t pad_token);
  // Makes AR length t current with mask rows from `parents` (empty: causal).
  Status use(int64_t t, std::span<const int32_t> parents);
  Status run(int64_t t, std::string_view phase);  // tokens_/positions_ filled, mask current

  StepModel* model_;
  KvManager kv_;
  int64_t prefill_, decode_, lookahead_;
  int32_t pad_token_;
  int64_t n_past_ = 0;
  int64_t last_row_ = 0;
  StepMasks masks_;                          // causal (or tree), and the window's if any
  bool mask_valid_ = false;                  // masks_ match (kv_.ar_len(), parents_, n_past_)
  std::vector<int32_t> parents_;             // [T] of the current mask; empty: causal
  std::vector<float> logits_;                // [T_max, V]
  std::vector<int32_t> tokens_, positions_;  // [T]
};

}  // namespace hs::runner

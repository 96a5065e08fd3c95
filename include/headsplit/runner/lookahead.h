// Lookahead decoding (reference §9.5, the LhdTokenGenerator; Fu et al. 2024, "Break the
// Sequential Dependency of LLM Inference Using Lookahead Decoding"): one step of an AR-T graph
// both guesses future tokens (Jacobi iteration over a window) and verifies earlier guesses, so a
// step can produce up to N tokens while greedy output stays exactly that of one-token decoding.
//
// Parameters: N (ngram) n-gram size, W (window) Jacobi columns, G (guesses) verification
// branches per step (also the n-grams kept per first token). A step at position pos, current
// token c (sampled, not yet stored), uses rows = (W + G)(N - 1) of the graph (T >= rows):
//
//   lookahead branch  rows [0, W(N-1)): level i (0..N-2), entry j (0..W-1) at row i*W + j,
//                     position pos + i + j; row 0 holds c. Parent (mask row it inherits):
//                     level 0: j - 1 (a chain; row 0 sees the stored past), level i: row
//                     (i-1)*W + j. So entry (i, j) sees level 0 entries 0..j, then its own
//                     column up to level i: the tokens of positions pos .. pos + i + j in order.
//   verification      rows W(N-1) + g(N-1) + k - 1 for branch g (0..G-1), guess k (1..N-1):
//                     position pos + k, parent row 0 for k = 1, else the branch's previous row.
//   padding           rows past (W + G)(N - 1): parent -1, never used.
//
// After the step: c's next token t1 is sampled from row 0. A branch whose guess 1 equals t1 is
// accepted: t2 is sampled from that guess's row, and so on while guesses match (first matching
// branch wins): 1..N tokens per step. The K/V of c and of every accepted guess whose row was
// sampled are stored (KvManager::update with the selected rows, every head of every layer).
// The window moves by one level: the last level's rows give (greedy argmax) new guesses, and
// each column's N tokens (positions pos + j .. pos + j + N - 1) become an n-gram in the pool,
// keyed by its first token. Verification branches for the next step are the pool's n-grams
// that start with the new current token.
//
// Sampling: every emitted token is drawn by the caller's Sampler from the row whose context is
// exactly the emitted prefix, one draw per token in order, so with the same seed lookahead emits
// what one-token decoding emits; the window's guesses use argmax and draw nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "headsplit/runner/decoder.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/support/result.h"

namespace hs::runner {

struct LookaheadOptions {
  int64_t ngram = 0;    // N >= 2; 0: lookahead off
  int64_t window = 0;   // W >= 1
  int64_t guesses = 0;  // G >= 1
  int64_t ar_len = 0;   // graph to run; 0: the smallest AR length of the model >= rows
  uint64_t seed = 0;    // the first window is drawn from the prompt with this seed
  bool enabled() const { return ngram > 0; }
};

// Rows a step uses: (W + G)(N - 1).
int64_t lookahead_rows(const LookaheadOptions& options);
// The reference's export choice: the next power of two >= lookahead_rows.
int64_t lookahead_export_ar_len(const LookaheadOptions& options);
// kInvalidArgument naming the field: N < 2, W < 1, G < 1, or a negative ar_len.
Status validate_lookahead(const LookaheadOptions& options);
// Parses "N,W,G" (e.g. "3,8,8"); kInvalidArgument quoting the text.
Result<LookaheadOptions> parse_lookahead(std::string_view text);
// options.ar_len if the model has it and it is large enough, else the smallest AR length of the
// model >= rows. kInvalidArgument naming the rows and the model's AR lengths when none fits.
Result<int64_t> lookahead_ar_len(const StepModelInfo& info, const LookaheadOptions& options);
// Mask parents of the T = ar_len rows (layout above); ar_len >= rows.
std::vector<int32_t> lookahead_parents(const LookaheadOptions& options, int64_t ar_len);

// N-gram pool: for each first token up to G continuations of N - 1 tokens, in a ring (the
// oldest is replaced); a continuation already stored for that token is not added again.
class NgramPool {
 public:
  NgramPool(int64_t ngram, int64_t capacity);
  void add(int32_t first, std::span<const int32_t> rest);  // rest: N - 1 tokens
  // Number of continuations stored for `first`, and continuation k (N - 1 tokens).
  int64_t count(int32_t first) const;
  std::span<const int32_t> get(int32_t first, int64_t k) const;
  int64_t size() const { return total_; }  // continuations stored

 private:
  struct Slots {
    std::vector<int32_t> tokens;  // [G, N-1]
    int64_t count = 0, head = 0;
  };
  int64_t rest_len_, capacity_;
  int64_t total_ = 0;
  std::unordered_map<int32_t, Slots> slots_;
};

struct LookaheadStats {
  int64_t steps = 0;   // lookahead steps run
  int64_t tokens = 0;  // tokens those steps stored (1 + accepted guesses each)
};

// Called with each token sampled by a step, in order; returns false to stop generating.
using EmitToken = std::function<bool(int32_t token)>;

// Runs lookahead steps on `decoder` (which has a lookahead graph) from `current` (sampled, not
// yet stored) while a whole step fits: n_past + N <= C - T_la. `context` (the prompt) seeds the
// window. On return `current` is the last token sampled; the result says whether generation
// should go on (true: out of room, continue with one-token decoding).
class LookaheadDecoder {
 public:
  LookaheadDecoder(const LookaheadOptions& options, std::span<const int32_t> context);
  Result<bool> run(Decoder& decoder, Sampler& sampler, int32_t& current, const EmitToken& emit);
  const LookaheadStats& stats() const { return stats_; }
  const NgramPool& pool() const { return pool_; }

 private:
  void fill_step(int32_t current, int64_t pos, int64_t ar_len);
  void advance_window(const Decoder& decoder);

  LookaheadOptions options_;
  std::vector<std::vector<int32_t>> levels_;  // [N-1][W]: the window's guesses
  std::vector<int32_t> level0_prev_;          // [W]: level 0 before the last advance
  NgramPool pool_;
  LookaheadStats stats_;
  std::vector<int32_t> parents_, tokens_, positions_;  // [T_la]
  std::vector<int64_t> selected_;                      // rows sampled in the current step
};

}  // namespace hs::runner

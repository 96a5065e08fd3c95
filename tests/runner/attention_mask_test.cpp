// AttentionMask: causal and tree init and unmask against hand-written grids ('#' attend, '.'
// masked), with and without a sliding window (columns that fall out of the window are masked
// again; tree rows sit at n_past + depth).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "headsplit/runner/kv_manager.h"

namespace hs::runner {
namespace {

std::vector<std::string> grid(const AttentionMask& mask) {
  std::vector<std::string> rows;
  for (int64_t i = 0; i < mask.ar_len(); ++i) {
    std::string row;
    for (int64_t j = 0; j < mask.context_len(); ++j) {
      const uint16_t x = mask.at(i, j);
      EXPECT_TRUE(x == AttentionMask::kAttend || x == AttentionMask::kMasked);
      row += x == AttentionMask::kAttend ? '#' : '.';
    }
    rows.push_back(row);
  }
  return rows;
}

TEST(AttentionMask, StartsMasked) {
  AttentionMask mask(2, 8);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"........", "........"}));
  EXPECT_EQ(mask.data().size(), 16u);
  EXPECT_EQ(mask.cache_len(), 6);
}

TEST(AttentionMask, CausalInitAndUnmask) {
  // C = 8, T = 2: columns 0..5 are cache slots, 6..7 this step's tokens.
  AttentionMask mask(2, 8);
  mask.init_causal(0);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"......#.",  //
                                                  "......##"}));
  mask.unmask(0, 2);  // after the first step stored positions 0, 1
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"##....#.",  //
                                                  "##....##"}));
  mask.unmask(2, 1);                                           // a last chunk with n_update = 1
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"###...#.",  //
                                                  "###...##"}));
  mask.init_causal(3);                                         // re-init gives the same grid
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"###...#.",  //
                                                  "###...##"}));
}

TEST(AttentionMask, CausalLowerTriangle) {
  // C = 7, T = 4: P = 3; with 2 cached slots.
  AttentionMask mask(4, 7);
  mask.init_causal(2);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"##.#...",  //
                                                  "##.##..",  //
                                                  "##.###.",  //
                                                  "##.####"}));
  mask.unmask(2, 1);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"####...",  //
                                                  "#####..",  //
                                                  "######.",  //
                                                  "#######"}));
}

TEST(AttentionMask, DecodeRow) {
  // C = 6, T = 1: P = 5.
  AttentionMask mask(1, 6);
  mask.init_causal(4);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"####.#"}));
  mask.unmask(4, 1);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"######"}));
}

// ---- Sliding window (W): row i at position pos_i sees positions (pos_i - W, pos_i] ----------

TEST(AttentionMaskWindow, PrefillChunksSlideOverCacheAndCurrentTokens) {
  // W = 3, C = 10, T = 4: P = 6 cache columns, then 4 current-token columns.
  AttentionMask mask(4, 10, 3);
  mask.init_causal(0);
  // Positions 0..3: row 3 (position 3) sees 1..3 only, so current token 0 is out.
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"......#...",  //
                                                  "......##..",  //
                                                  "......###.",  //
                                                  ".......###"}));
  mask.unmask(0, 4);  // positions 0..3 stored; next rows at positions 4..7
  // Row 0 (position 4) sees slots 2, 3 (positions > 4 - 3 = 1); row 1 (5) sees 3; rows 2, 3
  // (6, 7) see no cache slot.
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"..##..#...",  //
                                                  "...#..##..",  //
                                                  "......###.",  //
                                                  ".......###"}));
  // The same state from scratch: init at n_past = 4.
  AttentionMask fresh(4, 10, 3);
  fresh.init_causal(4);
  EXPECT_EQ(grid(fresh), grid(mask));
}

TEST(AttentionMaskWindow, DecodeRowDropsTheOldestSlot) {
  // W = 3, C = 8, T = 1: P = 7. At position 5 the row sees slots 3, 4 and itself.
  AttentionMask mask(1, 8, 3);
  mask.init_causal(5);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"...##..#"}));
  mask.unmask(5, 1);  // position 5 stored; the next row is at 6: slot 3 falls out
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"....##.#"}));
  mask.unmask(6, 1);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{".....###"}));
  // Early positions: nothing to drop yet.
  AttentionMask early(1, 8, 3);
  early.init_causal(1);
  EXPECT_EQ(grid(early), (std::vector<std::string>{"#......#"}));
  early.unmask(1, 1);
  EXPECT_EQ(grid(early), (std::vector<std::string>{"##.....#"}));
}

TEST(AttentionMaskWindow, TreeRowsSitAtTheirDepth) {
  // W = 3, T = 5, C = 11: P = 6. parents {-1, 0, 1, 2, 0}: depths 0 1 2 3 1, so with n_past 4
  // the rows are at positions 4 5 6 7 5. Row 3 (position 7) loses its root (position 4) as well
  // as every cache slot; row 4 (a second child of the root) sees slot 3, the root and itself.
  AttentionMask mask(5, 11, 3);
  mask.init_tree(4, std::vector<int32_t>{-1, 0, 1, 2, 0});
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"..##..#....", "...#..##...", "......###..",
                                                  ".......###.", "...#..#...#"}));
  EXPECT_EQ(mask.row_offset(3), 3);
  // The root's entry stored at slot 4: the next tree is at positions 5 6 7 8 6.
  mask.unmask(4, 1);
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"...##.#....", "....#.##...", "......###..",
                                                  ".......###.", "....#.#...#"}));
}

TEST(AttentionMaskWindow, ArLengthSwitchReinitializesTheWindow) {
  // Hybrid: a T = 4 prefill of 5 tokens (chunks of 4 and 1), then T = 1 decode at position 5.
  AttentionMask prefill(4, 12, 4);
  prefill.init_causal(0);
  prefill.unmask(0, 4);
  prefill.unmask(4, 1);  // the last chunk stored one token
  // The prefill mask would now serve positions 5..8; the decode graph re-inits at n_past 5.
  AttentionMask decode(1, 12, 4);
  decode.init_causal(5);
  // Position 5 sees positions 2..5: slots 2, 3, 4 and itself.
  EXPECT_EQ(grid(decode), (std::vector<std::string>{"..###......#"}));
  EXPECT_EQ(grid(prefill)[0], "..###...#...");  // row 0 (position 5) agrees on the slots
}

TEST(AttentionMaskWindow, WindowWiderThanTheContextIsTheCausalMask) {
  AttentionMask plain(3, 9), wide(3, 9, 100);
  plain.init_causal(2);
  wide.init_causal(2);
  EXPECT_EQ(grid(wide), grid(plain));
  plain.unmask(2, 3);
  wide.unmask(2, 3);
  EXPECT_EQ(grid(wide), grid(plain));
}

TEST(StepMasks, HoldsTheCausalThenTheWindowMask) {
  StepMasks both(1, 6, 2);
  both.init_causal(3);
  // C = 6, T = 1: P = 5. Causal: slots 0..2 and itself; window 2: slot 2 and itself.
  const std::vector<uint16_t> want_causal = {65535, 65535, 65535, 0, 0, 65535};
  const std::vector<uint16_t> want_window = {0, 0, 65535, 0, 0, 65535};
  std::vector<uint16_t> want = want_causal;
  want.insert(want.end(), want_window.begin(), want_window.end());
  const std::span<const uint16_t> got = both.data();
  EXPECT_EQ(std::vector<uint16_t>(got.begin(), got.end()), want);
  StepMasks plain(1, 6, 0);
  plain.init_causal(3);
  EXPECT_EQ(plain.data().size(), 6u);
}

}  // namespace
}  // namespace hs::runner

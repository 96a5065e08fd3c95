// AttentionMask: causal init and unmask against hand-written grids ('#' attend, '.' masked).
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

}  // namespace
}  // namespace hs::runner

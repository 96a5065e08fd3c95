// The selected-slot cache update of lookahead decoding (KvManager::update with rows) on small
// hand-checked buffers: every K row and every V head of every layer receives the selected
// entries in order (the reference once copied V for head 0 only), nothing else changes; errors;
// equivalence with the contiguous update and a seeded property test against a slot model.
// Also the tree mask (AttentionMask::init_tree) of the lookahead layout, by hand.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "headsplit/runner/kv_manager.h"
#include "headsplit/runner/lookahead.h"
#include "runner_testing.h"
#include "testing/testing.h"

namespace hs::runner {
namespace {

using testing::read;
using testing::write;

template <typename E>
class KvSelectedTyped : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, uint16_t, uint8_t>;
TYPED_TEST_SUITE(KvSelectedTyped, ElementTypes);

// L=2, Hkv=2, Dh=2, C=8, T=4 only: P = 4.
KvShape shape(int64_t elem_size) {
  return KvShape{.n_layers = 2,
                 .n_kv_heads = 2,
                 .head_dim = 2,
                 .context_len = 8,
                 .min_ar_len = 4,
                 .max_ar_len = 4,
                 .elem_size = elem_size};
}

TYPED_TEST(KvSelectedTyped, CopiesSelectedColumnsOfEveryHeadOfEveryLayer) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(shape(sizeof(E))));
  for (int64_t l = 0; l < 2; ++l) {
    const E base = static_cast<E>(100 * l);
    write<E>(kv.k_in(l), std::vector<E>(16, E(7)));
    write<E>(kv.v_in(l), std::vector<E>(16, E(7)));
    // k_out [Hkv=2, Dh=2, T=4]: row r = h*Dh + d, column t holds base + 10r + t.
    std::vector<E> k;
    for (int r = 0; r < 4; ++r) {
      for (int t = 0; t < 4; ++t) k.push_back(static_cast<E>(base + 10 * r + t));
    }
    write<E>(kv.k_out(l), k);
    // v_out [Hkv=2, T=4, Dh=2]: head h, token t, dim d = base + 50 + 10h + 2t + d.
    std::vector<E> v;
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < 4; ++t) {
        for (int d = 0; d < 2; ++d) v.push_back(static_cast<E>(base + 50 + 10 * h + 2 * t + d));
      }
    }
    write<E>(kv.v_out(l), v);
  }
  // Rows 0, 2, 3 (the current token and two accepted guesses) to slots 1, 2, 3.
  const std::vector<int64_t> rows = {0, 2, 3};
  HS_ASSERT_OK(kv.update(1, rows));
  // Layer 0. k_in [2, 2, P=4]: slot 0 untouched, slots 1..3 = columns 0, 2, 3 of each row.
  EXPECT_EQ(read<E>(kv.k_in(0)), (std::vector<E>{7, 0, 2, 3,     //
                                                 7, 10, 12, 13,  //
                                                 7, 20, 22, 23,  //
                                                 7, 30, 32, 33}));
  // v_in [2, P=4, 2]: both heads (head 1 too) get tokens 0, 2, 3 in slots 1..3.
  EXPECT_EQ(read<E>(kv.v_in(0)), (std::vector<E>{7, 7, 50, 51, 54, 55, 56, 57,  //
                                                 7, 7, 60, 61, 64, 65, 66, 67}));
  // Layer 1: the same with +100.
  EXPECT_EQ(read<E>(kv.k_in(1)), (std::vector<E>{7, 100, 102, 103,  //
                                                 7, 110, 112, 113,  //
                                                 7, 120, 122, 123,  //
                                                 7, 130, 132, 133}));
  EXPECT_EQ(read<E>(kv.v_in(1)), (std::vector<E>{7, 7, 150, 151, 154, 155, 156, 157,  //
                                                 7, 7, 160, 161, 164, 165, 166, 167}));
}

TYPED_TEST(KvSelectedTyped, ErrorsNameTheRow) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(shape(sizeof(E))));
  const std::vector<int64_t> unordered = {0, 3, 2};
  Status s = kv.update(0, unordered);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "kv cache update: selected row 2 at index 2 is not ascending within ar length 4");
  const std::vector<int64_t> duplicate = {1, 1};
  EXPECT_FALSE(kv.update(0, duplicate).ok());
  const std::vector<int64_t> outside = {0, 4};
  EXPECT_FALSE(kv.update(0, outside).ok());
  const std::vector<int64_t> three = {0, 1, 2};
  Status full = kv.update(2, three);  // slots [2, 5), P = 4
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message(),
            "kv cache update: slots [2, 5) do not fit the 4 cache slots of ar length 4 "
            "(context 8)");
  HS_EXPECT_OK(kv.update(4, std::span<const int64_t>()));  // nothing selected: nothing to do
}

// Seeded: random out buffers and row selections; the result equals a slot-by-slot model, and
// selecting rows 0..k-1 equals the contiguous update(n_past, k).
TEST(KvSelected, MatchesASlotModelAndTheContiguousUpdate) {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t hkv = 1 + static_cast<int64_t>(rng() % 3),
                  dh = 1 + static_cast<int64_t>(rng() % 4);
    const int64_t t = 2 + static_cast<int64_t>(rng() % 6),
                  c = t + 4 + static_cast<int64_t>(rng() % 8);
    const KvShape s{.n_layers = 2,
                    .n_kv_heads = hkv,
                    .head_dim = dh,
                    .context_len = c,
                    .min_ar_len = t,
                    .max_ar_len = t,
                    .elem_size = 4};
    HS_ASSERT_OK_AND_ASSIGN(KvManager a, KvManager::create(s));
    HS_ASSERT_OK_AND_ASSIGN(KvManager b, KvManager::create(s));
    const int64_t p = c - t;
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < t; ++r) {
      if (rng() % 2 == 0) rows.push_back(r);
    }
    const int64_t n_past = static_cast<int64_t>(
        rng() % static_cast<uint32_t>(p - static_cast<int64_t>(rows.size()) + 1));
    std::vector<std::vector<float>> k_out(2), v_out(2);
    for (int64_t l = 0; l < 2; ++l) {
      for (int64_t i = 0; i < hkv * dh * t; ++i) {
        k_out[l].push_back(static_cast<float>(rng() % 1000));
        v_out[l].push_back(static_cast<float>(rng() % 1000));
      }
      write<float>(a.k_out(l), k_out[l]);
      write<float>(a.v_out(l), v_out[l]);
      write<float>(b.k_out(l), k_out[l]);
      write<float>(b.v_out(l), v_out[l]);
    }
    HS_ASSERT_OK(a.update(n_past, rows));
    for (int64_t l = 0; l < 2; ++l) {
      const std::vector<float> k = read<float>(a.k_in(l)), v = read<float>(a.v_in(l));
      for (size_t i = 0; i < rows.size(); ++i) {
        const int64_t slot = n_past + static_cast<int64_t>(i), row = rows[i];
        for (int64_t h = 0; h < hkv; ++h) {
          for (int64_t d = 0; d < dh; ++d) {
            const int64_t kr = h * dh + d;
            ASSERT_EQ(k[static_cast<size_t>(kr * p + slot)],
                      k_out[l][static_cast<size_t>(kr * t + row)])
                << "trial " << trial << " layer " << l << " head " << h;
            ASSERT_EQ(v[static_cast<size_t>((h * p + slot) * dh + d)],
                      v_out[l][static_cast<size_t>((h * t + row) * dh + d)])
                << "trial " << trial << " layer " << l << " head " << h;
          }
        }
      }
    }
    // Rows 0..k-1 selected == the contiguous update.
    const auto k = static_cast<int64_t>(rows.size());
    std::vector<int64_t> first(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) first[static_cast<size_t>(i)] = i;
    HS_ASSERT_OK(a.update(n_past, first));
    HS_ASSERT_OK(b.update(n_past, k));
    for (int64_t l = 0; l < 2; ++l) {
      // Compare only the slots both wrote (the rest of a holds the first update).
      const std::vector<float> ka = read<float>(a.k_in(l)), kb = read<float>(b.k_in(l));
      const std::vector<float> va = read<float>(a.v_in(l)), vb = read<float>(b.v_in(l));
      for (int64_t r = 0; r < hkv * dh; ++r) {
        for (int64_t i = 0; i < k; ++i) {
          ASSERT_EQ(ka[static_cast<size_t>(r * p + n_past + i)],
                    kb[static_cast<size_t>(r * p + n_past + i)]);
        }
      }
      for (int64_t h = 0; h < hkv; ++h) {
        for (int64_t i = 0; i < k * dh; ++i) {
          const auto at = static_cast<size_t>((h * p + n_past) * dh + i);
          ASSERT_EQ(va[at], vb[at]);
        }
      }
    }
  }
}

std::vector<std::string> grid(const AttentionMask& mask) {
  std::vector<std::string> rows;
  for (int64_t i = 0; i < mask.ar_len(); ++i) {
    std::string row;
    for (int64_t j = 0; j < mask.context_len(); ++j) {
      row += mask.at(i, j) == AttentionMask::kAttend ? '#' : '.';
    }
    rows.push_back(row);
  }
  return rows;
}

TEST(TreeMask, CausalParentsGiveTheCausalMask) {
  AttentionMask a(4, 10), b(4, 10);
  a.init_causal(3);
  const std::vector<int32_t> chain = {-1, 0, 1, 2};
  b.init_tree(3, chain);
  EXPECT_EQ(grid(a), grid(b));
}

// N = 3, W = 2, G = 2: 8 rows in a T = 9 graph (one padding row), C = 14 (P = 5), 3 stored.
//   rows 0, 1: level 0 (the current token at pos, a guess at pos + 1), a chain
//   rows 2, 3: level 1, column 0 (pos + 1) and column 1 (pos + 2)
//   rows 4, 5: verification branch 0 (guesses at pos + 1, pos + 2); rows 6, 7: branch 1
//   row 8: padding
TEST(TreeMask, LookaheadLayoutByHand) {
  const LookaheadOptions o{.ngram = 3, .window = 2, .guesses = 2};
  EXPECT_EQ(lookahead_rows(o), 8);
  const std::vector<int32_t> parents = lookahead_parents(o, 9);
  EXPECT_EQ(parents, (std::vector<int32_t>{-1, 0, 0, 1, 0, 4, 0, 6, -1}));
  AttentionMask mask(9, 14);
  mask.init_tree(3, parents);
  //                     slots   this step (rows 0..8)
  EXPECT_EQ(grid(mask), (std::vector<std::string>{"###..#........",     // 0: c
                                                  "###..##.......",     // 1: c, guess
                                                  "###..#.#......",     // 2: c, level 1 col 0
                                                  "###..##.#.....",     // 3: c, g, level 1 col 1
                                                  "###..#...#....",     // 4: c, branch 0 #1
                                                  "###..#...##...",     // 5: c, branch 0 #1, #2
                                                  "###..#.....#..",     // 6: c, branch 1 #1
                                                  "###..#.....##.",     // 7: c, branch 1 #1, #2
                                                  "###..........#"}));  // 8: padding
  mask.unmask(3, 2);  // two entries stored after the step: slots 3, 4 open in every row
  EXPECT_EQ(grid(mask)[3], "#######.#.....");
  EXPECT_EQ(grid(mask)[7], "######.....##.");
}

}  // namespace
}  // namespace hs::runner

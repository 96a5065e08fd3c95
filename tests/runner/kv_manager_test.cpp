// KvManager: exact bytes written by update(), rows moved by rearrange() in both directions,
// errors when slots do not fit; float32, uint16 and uint8 elements; a seeded property test
// against a slot-by-slot model of the cache.
#include "headsplit/runner/kv_manager.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "runner_testing.h"
#include "testing/testing.h"

namespace hs::runner {
namespace {

using testing::read;
using testing::write;

template <typename E>
void fill(std::span<std::byte> bytes, E value) {
  write(bytes, std::vector<E>(bytes.size() / sizeof(E), value));
}

template <typename E>
class KvManagerTyped : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, uint16_t, uint8_t>;
TYPED_TEST_SUITE(KvManagerTyped, ElementTypes);

// L=1, Hkv=2, Dh=2, C=6; T in {1, 2}: P_max = 5, T_max = 2.
KvShape small_shape(int64_t elem_size) {
  return KvShape{.n_layers = 1,
                 .n_kv_heads = 2,
                 .head_dim = 2,
                 .context_len = 6,
                 .min_ar_len = 1,
                 .max_ar_len = 2,
                 .elem_size = elem_size};
}

TYPED_TEST(KvManagerTyped, SizesFollowTheArLength) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(sizeof(E))));
  EXPECT_EQ(kv.ar_len(), 2);  // starts at T_max
  EXPECT_EQ(kv.cache_len(), 4);
  EXPECT_EQ(kv.max_cache_len(), 5);
  EXPECT_EQ(kv.k_in(0).size(), 2 * 2 * 4 * sizeof(E));  // [Hkv, Dh, P]
  EXPECT_EQ(kv.v_in(0).size(), 2 * 4 * 2 * sizeof(E));  // [Hkv, P, Dh]
  EXPECT_EQ(kv.k_out(0).size(), 2 * 2 * 2 * sizeof(E));
  // 2 * L * Hkv * Dh * (P_max + T_max) elements.
  EXPECT_EQ(kv.bytes(), static_cast<int64_t>(2 * 1 * 2 * 2 * (5 + 2) * sizeof(E)));
  HS_ASSERT_OK(kv.rearrange(1, 0));
  EXPECT_EQ(kv.cache_len(), 5);
  EXPECT_EQ(kv.k_in(0).size(), 2 * 2 * 5 * sizeof(E));
  EXPECT_EQ(kv.v_out(0).size(), 2 * 1 * 2 * sizeof(E));
}

TYPED_TEST(KvManagerTyped, UpdateWritesExactlyTheNewSlots) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(sizeof(E))));
  fill<E>(kv.k_in(0), E(7));
  fill<E>(kv.v_in(0), E(7));
  // k_out [Hkv=2, Dh=2, T=2]: row r = h*Dh + d holds (100+10r, 101+10r).
  write<E>(kv.k_out(0), {100, 101, 110, 111, 120, 121, 130, 131});
  // v_out [Hkv=2, T=2, Dh=2]: head h, token t, dim d = 200 + 10h + 2t + d.
  write<E>(kv.v_out(0), {200, 201, 202, 203, 210, 211, 212, 213});
  HS_ASSERT_OK(kv.update(1, 2));
  // k_in [2, 2, P=4]: columns 1 and 2 of every row.
  EXPECT_EQ(read<E>(kv.k_in(0)), (std::vector<E>{7, 100, 101, 7,  //
                                                 7, 110, 111, 7,  //
                                                 7, 120, 121, 7,  //
                                                 7, 130, 131, 7}));
  // v_in [2, P=4, 2]: slots 1 and 2 of every head.
  EXPECT_EQ(read<E>(kv.v_in(0)), (std::vector<E>{7, 7, 200, 201, 202, 203, 7, 7,  //
                                                 7, 7, 210, 211, 212, 213, 7, 7}));
  // n_update = 1: only token 0 of each row / head, into slot 3.
  HS_ASSERT_OK(kv.update(3, 1));
  EXPECT_EQ(read<E>(kv.k_in(0)), (std::vector<E>{7, 100, 101, 100,  //
                                                 7, 110, 111, 110,  //
                                                 7, 120, 121, 120,  //
                                                 7, 130, 131, 130}));
  EXPECT_EQ(read<E>(kv.v_in(0)), (std::vector<E>{7, 7, 200, 201, 202, 203, 200, 201,  //
                                                 7, 7, 210, 211, 212, 213, 210, 211}));
  // The out buffers are untouched.
  EXPECT_EQ(read<E>(kv.k_out(0)), (std::vector<E>{100, 101, 110, 111, 120, 121, 130, 131}));
}

TYPED_TEST(KvManagerTyped, UpdateErrorsWhenSlotsDoNotFit) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(sizeof(E))));
  Status s = kv.update(3, 2);  // slots [3, 5) but P = 4
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "kv cache update: slots [3, 5) do not fit the 4 cache slots of ar length 2 "
            "(context 6)");
  Status too_many = kv.update(0, 3);  // more entries than T = 2
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(too_many.error().message().find("n_update 3"), std::string::npos);
  EXPECT_FALSE(kv.update(-1, 1).ok());
  HS_EXPECT_OK(kv.update(2, 2));  // exactly fills P
}

// Cache contents with distinct values: K(row r, slot s) = 1 + 8r + s,
// V(head h, slot s, dim d) = 100 + 20h + 2s + d (all fit in uint8).
template <typename E>
E k_val(int64_t r, int64_t s) {
  return static_cast<E>(1 + 8 * r + s);
}
template <typename E>
E v_val(int64_t h, int64_t s, int64_t d) {
  return static_cast<E>(100 + 20 * h + 2 * s + d);
}

// Writes positions [pos, pos+n) through the out buffers and update().
template <typename E>
void store_slots(KvManager& kv, int64_t pos, int64_t n) {
  const int64_t t = kv.ar_len();
  std::vector<E> k(static_cast<size_t>(4 * t), E(0)), v(static_cast<size_t>(4 * t), E(0));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < 4; ++r) k[static_cast<size_t>(r * t + i)] = k_val<E>(r, pos + i);
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t d = 0; d < 2; ++d) {
        v[static_cast<size_t>((h * t + i) * 2 + d)] = v_val<E>(h, pos + i, d);
      }
    }
  }
  write<E>(kv.k_out(0), k);
  write<E>(kv.v_out(0), v);
  ASSERT_TRUE(kv.update(pos, n).ok());
}

template <typename E>
void expect_slots(const KvManager& kv, int64_t n_past) {
  const int64_t p = kv.cache_len();
  std::vector<E> k = read<E>(kv.k_in(0)), v = read<E>(kv.v_in(0));
  for (int64_t s = 0; s < n_past; ++s) {
    for (int64_t r = 0; r < 4; ++r) {
      EXPECT_EQ(k[static_cast<size_t>(r * p + s)], k_val<E>(r, s))
          << "k row " << r << " slot " << s;
    }
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t d = 0; d < 2; ++d) {
        EXPECT_EQ(v[static_cast<size_t>((h * p + s) * 2 + d)], v_val<E>(h, s, d))
            << "v head " << h << " slot " << s << " dim " << d;
      }
    }
  }
}

TYPED_TEST(KvManagerTyped, RearrangeMovesRowsBothWays) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(sizeof(E))));
  fill<E>(kv.k_in(0), E(0xEE));
  fill<E>(kv.v_in(0), E(0xEE));
  store_slots<E>(kv, 0, 2);  // T = 2: slots 0, 1
  store_slots<E>(kv, 2, 1);  // slot 2 (a last chunk with n_update = 1)
  expect_slots<E>(kv, 3);
  // T 2 -> 1: P grows 4 -> 5, rows move back-to-front.
  HS_ASSERT_OK(kv.rearrange(1, 3));
  EXPECT_EQ(kv.cache_len(), 5);
  expect_slots<E>(kv, 3);
  // Hand-checked K row 1 (values 9, 10, 11) now starts at element 5.
  EXPECT_EQ(read<E>(kv.k_in(0))[5], E(9));
  EXPECT_EQ(read<E>(kv.k_in(0))[7], E(11));
  store_slots<E>(kv, 3, 1);  // T = 1: slot 3
  expect_slots<E>(kv, 4);
  // T 1 -> 2: P shrinks 5 -> 4, rows move front-to-back; 4 slots still fit.
  HS_ASSERT_OK(kv.rearrange(2, 4));
  EXPECT_EQ(kv.cache_len(), 4);
  expect_slots<E>(kv, 4);
}

TYPED_TEST(KvManagerTyped, RearrangeErrors) {
  using E = TypeParam;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(sizeof(E))));
  HS_ASSERT_OK(kv.rearrange(1, 0));
  HS_ASSERT_OK(kv.update(0, 1));
  Status s = kv.rearrange(2, 5);  // 5 cached slots, but T = 2 leaves P = 4
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "kv cache rearrange: 5 cached slots do not fit the 4 cache slots of ar length 2 "
            "(context 6)");
  Status bad_t = kv.rearrange(3, 0);
  ASSERT_FALSE(bad_t.ok());
  EXPECT_EQ(bad_t.error().message(),
            "kv cache rearrange: ar length 3 is outside the allocated range [1, 2]");
  EXPECT_EQ(kv.ar_len(), 1);  // a failed rearrange changes nothing
}

TEST(KvManager, CreateErrorsNameTheField) {
  KvShape shape = small_shape(4);
  shape.head_dim = 0;
  auto r = KvManager::create(shape);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "kv cache shape: head_dim must be positive, got 0");
  shape = small_shape(4);
  shape.max_ar_len = 6;
  EXPECT_EQ(KvManager::create(shape).error().message(),
            "kv cache shape: max_ar_len 6 leaves no cache slot in context 6");
  shape = small_shape(4);
  shape.min_ar_len = 3;
  EXPECT_EQ(KvManager::create(shape).error().message(),
            "kv cache shape: max_ar_len 2 is smaller than min_ar_len 3");
}

TEST(KvManager, ClearZeroesEverything) {
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(small_shape(2)));
  fill<uint16_t>(kv.k_in(0), 5);
  fill<uint16_t>(kv.v_out(0), 5);
  kv.clear();
  for (auto b : kv.k_in(0)) EXPECT_EQ(b, std::byte{0});
  for (auto b : kv.v_out(0)) EXPECT_EQ(b, std::byte{0});
}

// Seeded property test: random shapes and random sequences of updates and AR switches; every
// cached slot of every layer always holds what was stored for its position.
TEST(KvManager, PropertyRandomUpdatesAndSwitches) {
  std::mt19937 rng(20240611);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);  // test-only randomness
  };
  for (int trial = 0; trial < 200; ++trial) {
    KvShape shape{.n_layers = uniform(1, 3),
                  .n_kv_heads = uniform(1, 4),
                  .head_dim = uniform(1, 5),
                  .context_len = uniform(4, 24),
                  .min_ar_len = 1,
                  .max_ar_len = 1,
                  .elem_size = 2};
    shape.min_ar_len = uniform(1, 3);
    shape.max_ar_len = uniform(shape.min_ar_len, std::min<int64_t>(8, shape.context_len - 1));
    if (shape.min_ar_len > shape.max_ar_len) continue;
    HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(shape));
    const int64_t rows = shape.n_kv_heads * shape.head_dim;
    // Value of (layer, K row or V element within the head block, slot): a unique counter.
    std::map<std::tuple<int64_t, int64_t, int64_t>, uint16_t> k_model, v_model;
    uint16_t counter = 1;
    int64_t n_past = 0;
    for (int step = 0; step < 12; ++step) {
      const int64_t t = uniform(shape.min_ar_len, shape.max_ar_len);
      if (n_past > shape.context_len - t) break;
      HS_ASSERT_OK(kv.rearrange(t, n_past));
      const int64_t p = kv.cache_len();
      const int64_t room = std::min(t, p - n_past);
      if (room == 0) break;
      const int64_t n = uniform(1, room);
      for (int64_t l = 0; l < shape.n_layers; ++l) {
        std::vector<uint16_t> k(static_cast<size_t>(rows * t)), v(static_cast<size_t>(rows * t));
        for (auto& x : k) x = counter++;
        for (auto& x : v) x = counter++;
        write<uint16_t>(kv.k_out(l), k);
        write<uint16_t>(kv.v_out(l), v);
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t r = 0; r < rows; ++r) {
            k_model[{l, r, n_past + i}] = k[static_cast<size_t>(r * t + i)];
          }
          for (int64_t h = 0; h < shape.n_kv_heads; ++h) {
            for (int64_t d = 0; d < shape.head_dim; ++d) {
              v_model[{l, h * shape.head_dim + d, n_past + i}] =
                  v[static_cast<size_t>((h * t + i) * shape.head_dim + d)];
            }
          }
        }
      }
      HS_ASSERT_OK(kv.update(n_past, n));
      n_past += n;
      for (int64_t l = 0; l < shape.n_layers; ++l) {
        std::vector<uint16_t> k = read<uint16_t>(kv.k_in(l)), v = read<uint16_t>(kv.v_in(l));
        for (int64_t s = 0; s < n_past; ++s) {
          for (int64_t r = 0; r < rows; ++r) {
            ASSERT_EQ(k[static_cast<size_t>(r * p + s)], (k_model[{l, r, s}]))
                << "trial " << trial << " layer " << l << " row " << r << " slot " << s;
          }
          for (int64_t h = 0; h < shape.n_kv_heads; ++h) {
            for (int64_t d = 0; d < shape.head_dim; ++d) {
              ASSERT_EQ(v[static_cast<size_t>((h * p + s) * shape.head_dim + d)],
                        (v_model[{l, h * shape.head_dim + d, s}]))
                  << "trial " << trial << " layer " << l << " head " << h << " slot " << s;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace hs::runner

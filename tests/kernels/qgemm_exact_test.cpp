// matmul_quantized's exact integer path (qgemm.h, "Activation grid"): x on a 16-bit grid gives
// bit-identical results on every SIMD target (AVX-512 VNNI, AVX2 or portable), for every M (a row
// computed alone equals the same row inside a larger M: the dot and panel paths no longer
// differ), both layouts, any thread count; the values equal an independent int64/double
// evaluation of the documented formula; x off the grid falls back to the float path.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <random>
#include <tuple>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/kernels/qgemm.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::kernels {
namespace {

using Floats = std::vector<float>;

struct Case {
  WeightBits bits;
  int64_t block;  // 0: per channel
  int64_t m, n, k;
};

struct Problem {
  Case cs;
  std::vector<int8_t> wq;       // [N,K] values
  std::vector<std::byte> data;  // storage
  Floats scales, bias;
  float act_scale = 0.f;
  int32_t zp = 0;             // u16 zero point: n = u - zp
  std::vector<int32_t> ints;  // [M,K] n
  Floats x;                   // token-major [M,K] = act_scale * n
};

int64_t blocks_of(const Case& c) { return c.block == 0 ? 1 : (c.k + c.block - 1) / c.block; }

Problem make(std::mt19937& rng, const Case& cs, bool extremes) {
  Problem p;
  p.cs = cs;
  const bool i8 = cs.bits == WeightBits::kInt8;
  std::uniform_int_distribution<int> wd(i8 ? -128 : -8, i8 ? 127 : 7);
  p.wq.resize(cs.n * cs.k);
  for (int8_t& v : p.wq) v = static_cast<int8_t>(extremes ? (i8 ? -128 : -8) : wd(rng));
  if (i8) {
    p.data.resize(p.wq.size());
    std::memcpy(p.data.data(), p.wq.data(), p.wq.size());
  } else {
    p.data.resize(cs.n * int4_row_bytes(cs.k));
    EXPECT_TRUE(pack_int4(p.wq, cs.n, cs.k, p.data).ok());
  }
  std::uniform_real_distribution<float> sd(1e-3f, 3e-2f);
  p.scales.resize(cs.n * blocks_of(cs));
  for (float& s : p.scales) s = sd(rng);
  p.bias.resize(cs.n);
  for (float& b : p.bias) b = sd(rng) - 0.015f;
  p.act_scale = std::ldexp(sd(rng), -3);
  p.zp = std::uniform_int_distribution<int32_t>(0, 65535)(rng);
  std::uniform_int_distribution<int32_t> ud(0, 65535);
  p.ints.resize(cs.m * cs.k);
  p.x.resize(p.ints.size());
  for (size_t i = 0; i < p.ints.size(); ++i) {
    const int32_t u = extremes ? 65535 : ud(rng);
    p.ints[i] = u - (extremes ? 0 : p.zp);
    p.x[i] = p.act_scale * static_cast<float>(p.ints[i]);
  }
  if (extremes) p.zp = 0;
  return p;
}

// The documented formula, evaluated directly.
Floats expected(const Problem& p, bool with_bias) {
  const Case& c = p.cs;
  const int64_t nb = blocks_of(c);
  Floats y(c.m * c.n);
  for (int64_t m = 0; m < c.m; ++m) {
    for (int64_t n = 0; n < c.n; ++n) {
      const double bias = with_bias ? p.bias[n] : 0.0;
      double total = 0.0;
      if (c.block == 0) {
        int64_t d = 0;
        for (int64_t k = 0; k < c.k; ++k) d += int64_t{p.ints[m * c.k + k]} * p.wq[n * c.k + k];
        total = static_cast<double>(p.scales[n]) * static_cast<double>(d);
      } else {
        double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < nb; ++b) {
          int64_t d = 0;
          for (int64_t k = b * c.block; k < std::min(c.k, (b + 1) * c.block); ++k) {
            d += int64_t{p.ints[m * c.k + k]} * p.wq[n * c.k + k];
          }
          a[b % 8] += static_cast<double>(p.scales[n * nb + b]) * static_cast<double>(d);
        }
        total = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      }
      y[m * c.n + n] = static_cast<float>(total * static_cast<double>(p.act_scale) + bias);
    }
  }
  return y;
}

// LPBQ factors passed with the weights (QuantizedWeights::lpbq_*), or none.
struct Lpbq {
  std::vector<float> c;
  std::vector<uint8_t> m;
  std::vector<int32_t> sums;  // lpbq_row_sums, or empty
};

// Runs rows [m0, m0 + rows) of x; returns token-major y[rows, N].
Floats run(const Problem& p, int64_t m0, int64_t rows, ActLayout layout, bool with_bias,
           float act_scale, ThreadPool* pool, const Lpbq* lpbq = nullptr) {
  const Case& c = p.cs;
  Floats x(p.x.begin() + m0 * c.k, p.x.begin() + (m0 + rows) * c.k);
  if (layout == ActLayout::kChannelMajor) {
    Floats t(x.size());
    for (int64_t m = 0; m < rows; ++m) {
      for (int64_t k = 0; k < c.k; ++k) t[k * rows + m] = x[m * c.k + k];
    }
    x = t;
  }
  QuantizedWeights w{c.bits, p.data, p.scales, c.block, {}};
  if (with_bias) w.bias = p.bias;
  w.act_scale = act_scale;
  w.act_offset = p.zp;
  if (lpbq != nullptr) {
    w.lpbq_row_scales = lpbq->c;
    w.lpbq_mult = lpbq->m;
    w.lpbq_row_sums = lpbq->sums;
  }
  Floats y(rows * c.n, -7.f);
  const Status s = matmul_quantized({rows, c.n, c.k, layout}, x, w, y, pool);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  if (layout == ActLayout::kChannelMajor) {
    Floats t(y.size());
    for (int64_t n = 0; n < c.n; ++n) {
      for (int64_t m = 0; m < rows; ++m) t[m * c.n + n] = y[n * rows + m];
    }
    y = t;
  }
  return y;
}

bool same_bits(const Floats& a, const Floats& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The runnable target named `name` ("AVX2"), or null.
const SimdTarget* find_target(const std::vector<SimdTarget>& targets, std::string_view name) {
  for (const SimdTarget& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// How many random cases an AVX2 test draws: `fallback`, or `per_unit` times HS_QGEMM_AVX2_CASES
// when set (longer runs).
int avx2_cases(int per_unit, int fallback) {
  const char* env = std::getenv("HS_QGEMM_AVX2_CASES");
  return env != nullptr ? std::atoi(env) * per_unit : fallback;
}

// Sets the exact path's x86 implementation (ExactIsa) until destroyed.
class ScopedExactIsa {
 public:
  explicit ScopedExactIsa(ExactIsa isa) : old_(exact_isa()) { set_exact_isa(isa); }
  ~ScopedExactIsa() { set_exact_isa(old_); }
  ScopedExactIsa(const ScopedExactIsa&) = delete;
  ScopedExactIsa& operator=(const ScopedExactIsa&) = delete;

 private:
  ExactIsa old_;
};

// Every implementation of the exact path this CPU runs: each runnable SIMD target with the
// default ISA, and the AVX-512 targets once more with the VNNI kernels.
struct ExactPath {
  SimdTarget target;
  ExactIsa isa;
  std::string name;
};
std::vector<ExactPath> exact_paths() {
  std::vector<ExactPath> out;
  for (const SimdTarget& t : runnable_simd_targets()) {
    out.push_back({t, ExactIsa::kAvx2, t.name});
    if (t.name.rfind("AVX3", 0) == 0) out.push_back({t, ExactIsa::kVnni, t.name + " VNNI"});
  }
  return out;
}

// The reference the SIMD paths must equal: p on `portable` (no SIMD exact path), M tokens
// token-major, on the calling thread.
Floats portable_run(const SimdTarget& portable, const Problem& p, int64_t m, bool with_bias) {
  ScopedSimdTarget scope(portable);
  return run(p, 0, m, ActLayout::kTokenMajor, with_bias, p.act_scale, nullptr);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::pair<WeightBits, int64_t> schemes[] = {
      {WeightBits::kInt8, 0},  {WeightBits::kInt8, 32}, {WeightBits::kInt4, 0},
      {WeightBits::kInt4, 32}, {WeightBits::kInt4, 64}, {WeightBits::kInt4, 20}};
  for (const auto& [bits, block] : schemes) {
    for (int64_t k : {1, 5, 63, 64, 129, 576, 1000}) {
      for (int64_t m : {1, 3, 9}) out.push_back({bits, block, m, 7, k});
    }
  }
  return out;
}

TEST(QgemmExact, EveryTargetEqualsTheFormulaBitExactly) {
  std::mt19937 rng(14);
  ThreadPool pool(2);
  for (const Case& c : cases()) {
    SCOPED_TRACE(::testing::Message() << "int" << static_cast<int>(c.bits) << " block " << c.block
                                      << " M=" << c.m << " N=" << c.n << " K=" << c.k);
    for (bool extremes : {false, true}) {
      const Problem p = make(rng, c, extremes);
      for (bool bias : {false, true}) {
        const Floats want = expected(p, bias);
        for (const ExactPath& t : exact_paths()) {
          ScopedSimdTarget scope(t.target);
          ScopedExactIsa isa(t.isa);
          SCOPED_TRACE("target " + t.name);
          for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
            EXPECT_TRUE(same_bits(run(p, 0, c.m, layout, bias, p.act_scale, nullptr), want));
            EXPECT_TRUE(same_bits(run(p, 0, c.m, layout, bias, p.act_scale, &pool), want));
          }
        }
      }
    }
  }
}

// The bug this path fixes: M < 8 (dot path) and M >= 8 (panels) used to round differently, so an
// AR-N step and N AR-1 steps over the same tokens disagreed. Every row alone equals its row in a
// 40-token call, on the SmolLM2 shapes.
TEST(QgemmExact, RowsAreIndependentOfTheRowCount) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (const auto& [bits, block] :
       {std::pair{WeightBits::kInt8, int64_t{0}}, std::pair{WeightBits::kInt4, int64_t{32}},
        std::pair{WeightBits::kInt4, int64_t{0}}}) {
    const Case c{bits, block, 40, 24, 576};
    const Problem p = make(rng, c, false);
    for (const ExactPath& t : exact_paths()) {
      ScopedSimdTarget scope(t.target);
      ScopedExactIsa isa(t.isa);
      SCOPED_TRACE("target " + t.name);
      const Floats all = run(p, 0, c.m, ActLayout::kTokenMajor, true, p.act_scale, &pool);
      for (int64_t m = 0; m < c.m; ++m) {
        const Floats one = run(p, m, 1, ActLayout::kTokenMajor, true, p.act_scale, nullptr);
        EXPECT_TRUE(same_bits(one, Floats(all.begin() + m * c.n, all.begin() + (m + 1) * c.n)))
            << "row " << m;
      }
    }
  }
}

// One x off the grid: the float path runs (same bits as without activation params).
TEST(QgemmExact, OffGridFallsBackToTheFloatPath) {
  std::mt19937 rng(3);
  for (const auto& [bits, block] :
       {std::pair{WeightBits::kInt8, int64_t{0}}, std::pair{WeightBits::kInt4, int64_t{32}}}) {
    const Case c{bits, block, 2, 9, 200};
    Problem p = make(rng, c, false);
    p.x[123] = std::nextafter(p.x[123], 1e9f);
    for (const ExactPath& t : exact_paths()) {
      ScopedSimdTarget scope(t.target);
      ScopedExactIsa isa(t.isa);
      const Floats fl = run(p, 0, c.m, ActLayout::kTokenMajor, true, 0.f, nullptr);
      EXPECT_TRUE(
          same_bits(run(p, 0, c.m, ActLayout::kTokenMajor, true, p.act_scale, nullptr), fl));
    }
    Problem q = make(rng, c, false);  // u out of [0, 65535] for the offset
    q.zp = 131071;
    for (const ExactPath& t : exact_paths()) {
      ScopedSimdTarget scope(t.target);
      ScopedExactIsa isa(t.isa);
      const Floats fl = run(q, 0, c.m, ActLayout::kTokenMajor, false, 0.f, nullptr);
      EXPECT_TRUE(
          same_bits(run(q, 0, c.m, ActLayout::kTokenMajor, false, q.act_scale, nullptr), fl));
    }
  }
}

// x on the grid with u = n + offset drawn from [u_lo, u_hi], plus both extremes u = 0 and 65535
// at random positions when `extremes`.
Problem make_offset(std::mt19937& rng, const Case& cs, int32_t offset, int32_t u_lo, int32_t u_hi,
                    bool extremes) {
  Problem p = make(rng, cs, false);
  p.zp = offset;
  std::uniform_int_distribution<int32_t> ud(u_lo, u_hi), pick(0, 15);
  for (size_t i = 0; i < p.ints.size(); ++i) {
    int32_t u = ud(rng);
    if (extremes && pick(rng) == 0) u = pick(rng) < 8 ? 0 : 65535;
    p.ints[i] = u - offset;
    p.x[i] = p.act_scale * static_cast<float>(p.ints[i]);
  }
  return p;
}

// The AVX2 implementation (x86-64 CPUs with AVX2) against the formula and the portable path:
// random shapes (M 1..40, N not multiples of 4, K odd / not multiples of 16, 32 or 64, block
// 32 with a partial last block), offsets 0, 32768 and odd ones, u over the whole grid (n beyond
// int16: the shifted activations) or a narrow range (n within int16), u = 0 and 65535, both
// layouts, 1 and 2 threads. HS_QGEMM_AVX2_CASES=N for a longer sweep.
TEST(QgemmExact, Avx2EqualsThePortablePathBitExactly) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget& portable = targets.back();  // the least capable: no SIMD exact path
  ASSERT_NE(portable.name, "AVX2");
  {
    ScopedSimdTarget scope(portable);
    EXPECT_FALSE(quantized_exact_is_fast(WeightBits::kInt8, 0, 576));
  }
  {
    ScopedSimdTarget scope(*avx2);
    EXPECT_TRUE(quantized_exact_is_fast(WeightBits::kInt8, 0, 576));
    EXPECT_TRUE(quantized_exact_is_fast(WeightBits::kInt4, 0, 32768));
    EXPECT_TRUE(quantized_exact_is_fast(WeightBits::kInt4, 32, 1536));
    EXPECT_FALSE(quantized_exact_is_fast(WeightBits::kInt8, 32, 576));
    EXPECT_FALSE(quantized_exact_is_fast(WeightBits::kInt4, 64, 576));
    EXPECT_FALSE(quantized_exact_is_fast(WeightBits::kInt8, 0, 32769));
  }
  const int count = avx2_cases(1, 48);
  std::mt19937 rng(2014);
  ThreadPool pool(2);
  const std::pair<WeightBits, int64_t> schemes[] = {
      {WeightBits::kInt8, 0}, {WeightBits::kInt4, 0}, {WeightBits::kInt4, 32}};
  const int32_t offsets[] = {0, 32768, 12345, 65535};
  for (int i = 0; i < count; ++i) {
    const auto [bits, block] = schemes[i % 3];
    const int64_t m = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 37)(rng);
    const int64_t k = i < 6 ? int64_t{1} + i * 64 : std::uniform_int_distribution<int64_t>(1, 700)(rng);
    const int32_t offset = offsets[(i / 3) % 4];
    const bool narrow = i % 5 == 0;  // u within offset +- 30000: n fits int16, no shift
    const int32_t lo = narrow ? std::max(0, offset - 30000) : 0;
    const int32_t hi = narrow ? std::min(65535, offset + 30000) : 65535;
    const Case c{bits, block, m, n, k};
    const Problem p = make_offset(rng, c, offset, lo, hi, !narrow);
    SCOPED_TRACE(::testing::Message() << "case " << i << ": int" << static_cast<int>(bits)
                                      << " block " << block << " M=" << m << " N=" << n
                                      << " K=" << k << " offset " << offset);
    const Floats want = expected(p, true);
    const Floats ref = portable_run(portable, p, m, true);
    EXPECT_TRUE(same_bits(ref, want));
    ScopedSimdTarget scope(*avx2);
    const ActLayout layout = i % 2 == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
    EXPECT_TRUE(same_bits(run(p, 0, m, layout, true, p.act_scale, nullptr), ref));
    EXPECT_TRUE(same_bits(run(p, 0, m, layout, true, p.act_scale, &pool), ref));
  }
}

// The AVX2 tiles chosen by M (decode M = 1: 4-row tiles with the rows in lanes; M = 2..9:
// token tiles plus single tokens) against the portable path, for every format: N = 1..13 (row
// tiles plus 1..3 leftover rows), K around group and block sizes (a partial last block, an odd
// number of blocks, fewer than 8 blocks, 1..4 groups past the last 4-group chunk read in place,
// a partial last group), both activation encodings
// (the shift), bias or none, 1 and 2 threads. HS_QGEMM_AVX2_CASES scales it too.
TEST(QgemmExact, Avx2EveryTileEqualsThePortablePath) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget& portable = targets.back();
  const int count = avx2_cases(2, 96);
  const int64_t ks[] = {1, 31, 32, 33, 64, 65, 96, 255, 256, 257, 320, 576, 600, 1000, 1536};
  std::mt19937 rng(1414);
  ThreadPool pool(2);
  const std::pair<WeightBits, int64_t> schemes[] = {
      {WeightBits::kInt4, 32}, {WeightBits::kInt8, 0}, {WeightBits::kInt4, 0}};
  for (int i = 0; i < count; ++i) {
    const auto [bits, block] = schemes[i % 4 == 3 ? (i / 4) % 3 : 0];  // mostly int4 block 32
    const int64_t m = i % 3 == 0 ? std::uniform_int_distribution<int64_t>(2, 9)(rng) : 1;
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 13)(rng);
    const int64_t k = ks[std::uniform_int_distribution<size_t>(0, std::size(ks) - 1)(rng)];
    const int32_t offset = (i / 2) % 2 == 0 ? 32768 : 12345;
    const bool narrow = i % 5 == 0;  // n within int16: no shift
    const int32_t lo = narrow ? std::max(0, offset - 30000) : 0;
    const int32_t hi = narrow ? std::min(65535, offset + 30000) : 65535;
    const bool with_bias = i % 7 != 0;
    const Case c{bits, block, m, n, k};
    const Problem p = make_offset(rng, c, offset, lo, hi, !narrow);
    SCOPED_TRACE(::testing::Message() << "case " << i << ": int" << static_cast<int>(bits)
                                      << " block " << block << " M=" << m << " N=" << n
                                      << " K=" << k << " offset " << offset);
    const Floats ref = portable_run(portable, p, m, with_bias);
    EXPECT_TRUE(same_bits(ref, expected(p, with_bias)));
    ScopedSimdTarget scope(*avx2);
    const ActLayout layout = i % 2 == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
    EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr), ref));
    EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, &pool), ref));
  }
}

// Decode (M = 1) of int4 block 32 on AVX2 (the rows-in-lanes tile) at the edges of the
// activation encodings: n over exactly int16 (no shift, v at both ends), one past either end
// (the shift s = n_min + 32768), n over 0..65535 and -65535..0, the window [-32896, 32639] of a
// byte split v = 256 h + l and one past its ends, a narrow range, constant tokens at the
// extremes, and weights all -8 or all 7 against them, for K around the block and group sizes
// and N = 1..9 (tiles plus leftover rows), against the portable path and the formula.
TEST(QgemmExact, Avx2DecodeActivationWindowEdges) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget& portable = targets.back();
  struct Range {
    int32_t offset, n_lo, n_hi;
  };
  const Range ranges[] = {{32768, -32768, 32767}, {32769, -32769, 32766},  {32767, -32767, 32768},
                          {32896, -32896, 32639}, {32895, -32895, 32640},  {32897, -32897, 32638},
                          {0, 0, 65535},          {65535, -65535, 0},      {30000, -100, 100},
                          {32768, 32639, 32767},  {32768, -32768, -32768}, {0, 65535, 65535}};
  const int64_t ks[] = {1, 17, 32, 33, 63, 64, 65, 255, 257, 576};
  std::mt19937 rng(1415);
  int i = 0;
  for (const Range& r : ranges) {
    for (const int64_t k : ks) {
      const int64_t n = 1 + i % 9;
      const Case c{WeightBits::kInt4, 32, 1, n, k};
      Problem p = make_offset(rng, c, r.offset, r.n_lo + r.offset, r.n_hi + r.offset, false);
      p.ints[0] = r.n_lo;  // both ends present
      p.ints[k - 1] = r.n_hi;
      for (size_t j = 0; j < p.ints.size(); ++j) {
        p.x[j] = p.act_scale * static_cast<float>(p.ints[j]);
      }
      if (i % 3 != 0) {  // weights all -8 or all 7
        std::fill(p.wq.begin(), p.wq.end(), static_cast<int8_t>(i % 3 == 1 ? -8 : 7));
        EXPECT_TRUE(pack_int4(p.wq, c.n, c.k, p.data).ok());
      }
      SCOPED_TRACE(::testing::Message() << "n in [" << r.n_lo << ", " << r.n_hi << "] offset "
                                        << r.offset << " N=" << n << " K=" << k);
      const bool with_bias = i % 2 == 0;
      const Floats ref = portable_run(portable, p, 1, with_bias);
      EXPECT_TRUE(same_bits(ref, expected(p, with_bias)));
      ScopedSimdTarget scope(*avx2);
      EXPECT_TRUE(
          same_bits(run(p, 0, 1, ActLayout::kTokenMajor, with_bias, p.act_scale, nullptr), ref));
      ++i;
    }
  }
}

// Prefill on AVX2 (M >= 6 for int8, M >= 13 for int4: the int16 panels of qgemm_avx2_panel.cpp,
// 6-row x 16-token tiles) against the portable path and the formula, for int8 per channel and
// int4 per channel or block 32: M at and around the thresholds and the 8- and 16-token panels
// (a last panel of 1..16 tokens), N = 1..20 (6-row tiles plus 1..5 padded rows; 2 threads
// split the rows), K odd, below, at and around multiples of 32 (a partial last block, one
// block, 172 = 5 blocks + 12, 7, 8 and 9 blocks: block 32's first visit of each of its 8 slots)
// and around int8's flush of the int32 lanes to double every 15 blocks (480, 481, 511, 512: n =
// -32768 against w = -128 reaches 2^31 in a lane at 512 k without it), n at both ends of int16
// at k = 0 and k = K - 1 of every token and as constant tokens, a narrow range, and n one past
// int16 or over 0..65535 (the panels hold v = n - s and add s * sum w: per channel once, block
// 32 per block), weights random or all at the minimum (-128, -8) or the maximum (127, 7), bias
// or none, both layouts. Cases 4..7: block 32 with every block sum D_b near its largest, n =
// 65535 (s = 98303) or n = -32769 (s = -1) in every k against w = -8 or 7 in every k. Every
// case on the AVX2 target and, where it runs, AVX3 (with AVX-512 VNNI the per-channel blocks
// are vpdpwssd instead of vpmaddwd + vpaddd). HS_QGEMM_AVX2_CASES=N runs 3N cases.
TEST(QgemmExact, Avx2PrefillPanelsEqualThePortablePath) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget* avx3 = find_target(targets, "AVX3");
  const SimdTarget& portable = targets.back();
  struct Range {
    int32_t offset, n_lo, n_hi;
  };
  const Range ranges[] = {{32768, -32768, 32767}, {32768, -32768, -32768}, {0, 32767, 32767},
                          {30000, -100, 100},     {32769, -32769, 32766},  {0, 0, 65535}};
  const int64_t ms[] = {5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 23, 24, 31, 32, 33, 40, 47, 64};
  const int64_t ks[] = {1,   2,   31,  32,  33,  63,  64,  65,  95,  172,
                        224, 256, 257, 288, 480, 481, 511, 512, 576, 1001};
  const Range block_largest[] = {{0, 65535, 65535}, {32769, -32769, -32769}};
  const std::pair<WeightBits, int64_t> formats[] = {
      {WeightBits::kInt8, 0}, {WeightBits::kInt4, 0}, {WeightBits::kInt4, 32}};
  const int count = avx2_cases(3, 108);
  std::mt19937 rng(1416);
  ThreadPool pool(2);
  auto pick = [&rng](size_t count) { return std::uniform_int_distribution<size_t>(0, count - 1)(rng); };
  for (int i = 0; i < count; ++i) {
    // Independent draws: the range (2/3 of the cases within int16), the format, weights
    // (random, all at the minimum, all at the maximum), bias, layout.
    // The first 4 cases: int8 with every lane at its largest, n = -32768 against w = -128, at K
    // = 480 (one flush), 512 (2^31 without the flush), 576 and 1001.
    const bool largest = i < 4, block_edge = i >= 4 && i < 8;
    const Range& r = largest      ? ranges[1]
                     : block_edge ? block_largest[(i - 4) / 2]
                                  : ranges[i % 3 == 2 ? 4 + pick(2) : pick(4)];
    const auto [bits, block] = formats[largest ? 0 : block_edge ? 2 : pick(3)];
    const bool i8 = bits == WeightBits::kInt8;
    const int64_t m = block_edge ? std::array<int64_t, 4>{16, 17, 33, 40}[i - 4] : ms[pick(std::size(ms))];
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    const int64_t k = largest      ? std::array<int64_t, 4>{480, 512, 576, 1001}[i]
                      : block_edge ? std::array<int64_t, 4>{172, 288, 1001, 256}[i - 4]
                                   : ks[pick(std::size(ks))];
    const Case c{bits, block, m, n, k};
    Problem p = make_offset(rng, c, r.offset, r.n_lo + r.offset, r.n_hi + r.offset, false);
    for (int64_t t = 0; t < m; ++t) {  // both ends in every token
      p.ints[t * k] = r.n_lo;
      p.ints[t * k + k - 1] = r.n_hi;
    }
    for (size_t j = 0; j < p.ints.size(); ++j) p.x[j] = p.act_scale * static_cast<float>(p.ints[j]);
    // Weights all at the minimum or the maximum in half of the cases.
    if (const size_t wmode = largest ? 2 : block_edge ? 2 + i % 2 : pick(4); wmode >= 2) {
      const int8_t w = wmode == 2 ? (i8 ? -128 : -8) : (i8 ? 127 : 7);
      std::fill(p.wq.begin(), p.wq.end(), w);
      if (i8) {
        std::memcpy(p.data.data(), p.wq.data(), p.wq.size());
      } else {
        EXPECT_TRUE(pack_int4(p.wq, c.n, c.k, p.data).ok());
      }
    }
    if (!i8 && k % 2 == 1) {  // int4, odd K: a nonzero padding nibble (to be ignored) per row
      for (int64_t row = 0; row < n; ++row) {
        p.data[(row + 1) * int4_row_bytes(k) - 1] |= std::byte{0x90};
      }
    }
    const bool with_bias = pick(3) != 0;
    SCOPED_TRACE(::testing::Message() << "case " << i << ": int" << static_cast<int>(bits)
                                      << " block " << block << " n in ["
                                      << r.n_lo << ", " << r.n_hi << "] M=" << m << " N=" << n
                                      << " K=" << k);
    const Floats ref = portable_run(portable, p, m, with_bias);
    EXPECT_TRUE(same_bits(ref, expected(p, with_bias)));
    const ActLayout layout = pick(2) == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
    for (const SimdTarget* t : {avx2, avx3}) {  // AVX3 with VNNI: the vpdpwssd blocks
      if (t == nullptr) continue;
      ScopedSimdTarget scope(*t);
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr), ref)) << t->name;
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, &pool), ref)) << t->name;
    }
  }
}

// The 32-bit lane bounds of the AVX2 path at K = 32768 (the largest K it takes): every product
// at its largest magnitude, n = -32768 or 65535 times w = -128 (int8) or -8 (int4), for both
// activation encodings (n within int16, and n shifted), and K = 32769 (the portable path).
TEST(QgemmExact, Avx2LargestKIsExact) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  ScopedSimdTarget scope(*avx2);
  std::mt19937 rng(32768);
  // (bits, block, M): per channel, and int4 block 32 for decode (M = 1) and token tiles; M = 17:
  // prefill through the int16 panels (n = -32768; n = 65535: the panels with the shift s =
  // 98303, v = -32768).
  const std::tuple<WeightBits, int64_t, int64_t> formats[] = {
      {WeightBits::kInt8, 0, 2},   {WeightBits::kInt4, 0, 2},   {WeightBits::kInt4, 32, 1},
      {WeightBits::kInt4, 32, 5},  {WeightBits::kInt4, 32, 17}, {WeightBits::kInt4, 0, 17},
      {WeightBits::kInt8, 0, 17}};
  for (const auto& [bits, block, m] : formats) {
    for (const int64_t k : {int64_t{32768}, int64_t{32767}, int64_t{32769}}) {
      for (const int32_t offset : {32768, 0}) {
        const Case c{bits, block, m, 5, k};
        Problem p = make(rng, c, true);  // w at its minimum
        p.zp = offset;
        for (size_t i = 0; i < p.ints.size(); ++i) {
          p.ints[i] = (offset == 0 ? 65535 : 0) - offset;  // -32768 or 65535
          p.x[i] = p.act_scale * static_cast<float>(p.ints[i]);
        }
        SCOPED_TRACE(::testing::Message() << "int" << static_cast<int>(bits) << " block "
                                          << block << " M=" << m << " K=" << k << " offset "
                                          << offset);
        EXPECT_TRUE(same_bits(run(p, 0, c.m, ActLayout::kTokenMajor, true, p.act_scale, nullptr),
                              expected(p, true)));
      }
    }
  }
}

// Off the grid on AVX2: x not a multiple of the scale, u below 0 or above 65535, NaN and an
// infinity each fall back to the float path, in both layouts (channel-major x is checked in its
// own order and transposed in 8 x 8 blocks: M = 17, K = 77), at the last k of the last token,
// inside a full 8 x 8 block, in the token past the blocks and in the k past them.
TEST(QgemmExact, Avx2OffGridFallsBack) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  ScopedSimdTarget scope(*avx2);
  std::mt19937 rng(5);
  constexpr int64_t kM = 17, kK = 77;
  const std::pair<int64_t, int64_t> spots[] = {{kM - 1, kK - 1}, {9, 13}, {16, 40}, {3, 75}};
  for (const auto& [bits, block] :
       {std::pair{WeightBits::kInt8, int64_t{0}}, std::pair{WeightBits::kInt4, int64_t{32}},
        std::pair{WeightBits::kInt4, int64_t{0}}}) {
    const Case c{bits, block, kM, 6, kK};
    const Problem base = make_offset(rng, c, 32768, 0, 65535, true);
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
      for (const auto& [tm, tk] : spots) {
        for (int variant = 0; variant < 5; ++variant) {
          Problem p = base;
          const size_t at = tm * kK + tk;
          if (variant == 0) p.x[at] = std::nextafter(p.x[at], inf);
          if (variant == 1) p.x[at] = p.act_scale * -32769.f;  // u = -1
          if (variant == 2) p.x[at] = p.act_scale * 32768.f;   // u = 65536
          if (variant == 3) p.x[at] = nan;
          if (variant == 4) p.x[at] = -inf;
          SCOPED_TRACE(::testing::Message()
                       << "int" << static_cast<int>(bits) << " block " << block << " variant "
                       << variant << " at token " << tm << " k " << tk << " layout "
                       << (layout == ActLayout::kTokenMajor ? "token" : "channel") << "-major");
          const Floats fl = run(p, 0, c.m, layout, true, 0.f, nullptr);
          const Floats ex = run(p, 0, c.m, layout, true, p.act_scale, nullptr);
          EXPECT_EQ(std::memcmp(fl.data(), ex.data(), fl.size() * sizeof(float)), 0);
        }
      }
      // On the grid (u = 0 and 65535 included) it does run: the formula's bits.
      EXPECT_TRUE(same_bits(run(base, 0, c.m, layout, true, base.act_scale, nullptr),
                            expected(base, true)));
    }
  }
}

// The activation scale at the ends of AVX2's grid check (n = x * (1 / scale) for scale in
// [2^-60, 2^60], else x / scale): a subnormal scale (its reciprocal overflows), 2^-61, 2^-60,
// 2^60 and scales far beyond, with n over all of 0..65535 (offset 0: the largest |n|) and over
// int16, both layouts, decode and prefill, against the formula and the portable path.
TEST(QgemmExact, Avx2ActivationScalesAtTheEnds) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget& portable = targets.back();
  std::mt19937 rng(60);
  const float scales[] = {0x1.8p-140f, 0x1.3p-61f, 0x1p-60f, 0x1.fffffep-61f, 0x1p60f,
                          0x1.7p59f,   0x1.3p61f,  0x1.5p100f};
  int i = 0;
  for (const float scale : scales) {
    for (const auto& [bits, block, m] :
         {std::tuple{WeightBits::kInt4, int64_t{32}, int64_t{17}},
          std::tuple{WeightBits::kInt8, int64_t{0}, int64_t{9}},
          std::tuple{WeightBits::kInt4, int64_t{32}, int64_t{1}}}) {
      const Case c{bits, block, m, 7, 100};
      const int32_t offset = i % 2 == 0 ? 0 : 32768;
      Problem p = make_offset(rng, c, offset, 0, 65535, true);
      p.act_scale = scale;
      for (size_t j = 0; j < p.ints.size(); ++j) {
        p.x[j] = p.act_scale * static_cast<float>(p.ints[j]);
        ASSERT_EQ(p.x[j] / p.act_scale, static_cast<float>(p.ints[j]));  // on the grid
      }
      const ActLayout layout = i % 3 == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
      SCOPED_TRACE(::testing::Message() << "scale " << scale << " int" << static_cast<int>(bits)
                                        << " M=" << m << " offset " << offset);
      const Floats ref = portable_run(portable, p, m, false);
      EXPECT_TRUE(same_bits(ref, expected(p, false)));
      ScopedSimdTarget scope(*avx2);
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, false, p.act_scale, nullptr), ref));
      ++i;
    }
  }
}

}  // namespace
}  // namespace hs::kernels

namespace hs::kernels {
namespace {

// Scales in LPBQ form (quant::lpbq_scales): per row c with a 16-bit significand and
// multipliers m in 1..16, one of them 16; s = c * m exactly.
void make_lpbq(std::mt19937& rng, Problem& p) {
  const int64_t nb = blocks_of(p.cs);
  std::uniform_int_distribution<int> md(1, 16), sig(32768, 65535), ex(-40, -20);
  for (int64_t r = 0; r < p.cs.n; ++r) {
    const float c = std::ldexp(static_cast<float>(sig(rng)), ex(rng));
    const int64_t top = std::uniform_int_distribution<int64_t>(0, nb - 1)(rng);
    for (int64_t b = 0; b < nb; ++b) {
      p.scales[r * nb + b] = c * static_cast<float>(b == top ? 16 : md(rng));
    }
  }
}

// The AVX3 target where the CPU has AVX-512 VNNI (the VNNI decode tile runs there), or null.
const SimdTarget* vnni_avx3(const std::vector<SimdTarget>& targets) {
  const SimdTarget* avx3 = find_target(targets, "AVX3");
  if (avx3 == nullptr) return nullptr;
  ScopedSimdTarget scope(*avx3);
  return lpbq_row_sums_used(1) ? avx3 : nullptr;
}

// An LPBQ test's problem: u over the whole grid (n beyond int16: the shifted activations, u = 0
// and 65535 included) or, when narrow, within 30000 of the offset (n an int16: no shift).
Problem lpbq_problem(std::mt19937& rng, const Case& c, int32_t offset, bool narrow) {
  const int32_t lo = narrow ? std::max(0, offset - 30000) : 0;
  const int32_t hi = narrow ? std::min(65535, offset + 30000) : 65535;
  return make_offset(rng, c, offset, lo, hi, !narrow);
}

// sum_k m[n, k / 32] * q[n, k] from the unpacked weights (lpbq_row_sums' definition).
std::vector<int32_t> row_sums(const Problem& p, const std::vector<uint8_t>& m) {
  const int64_t nb = blocks_of(p.cs);
  std::vector<int32_t> out(static_cast<size_t>(p.cs.n));
  for (int64_t r = 0; r < p.cs.n; ++r) {
    for (int64_t k = 0; k < p.cs.k; ++k) {
      out[r] += int32_t{m[r * nb + k / 32]} * p.wq[r * p.cs.k + k];
    }
  }
  return out;
}

// lpbq_factor recovers c and m from LPBQ-form scales, and refuses what is not of that form or
// would break the exactness bound (C * K < 2^30 for the odd significand C of c).
TEST(QgemmExact, LpbqFactorAcceptsOnlyTheExactForm) {
  std::mt19937 rng(1517);
  const Case cs{WeightBits::kInt4, 32, 1, 5, 172};
  Problem p = make(rng, cs, false);
  make_lpbq(rng, p);
  std::vector<float> c;
  std::vector<uint8_t> m;
  ASSERT_TRUE(lpbq_factor(p.scales, cs.n, cs.k, 32, c, m));
  ASSERT_EQ(c.size(), 5u);
  ASSERT_EQ(m.size(), 5u * 6u);
  for (int64_t r = 0; r < cs.n; ++r) {
    for (int64_t b = 0; b < 6; ++b) {
      EXPECT_EQ(static_cast<double>(c[r]) * m[r * 6 + b], static_cast<double>(p.scales[r * 6 + b]));
      EXPECT_GE(m[r * 6 + b], 1);
      EXPECT_LE(m[r * 6 + b], 16);
    }
  }
  Problem free = make(rng, cs, false);  // the observer's free scales
  EXPECT_FALSE(lpbq_factor(free.scales, cs.n, cs.k, 32, c, m));
  std::vector<float> s = p.scales;
  s[7] = std::nextafter(s[7], 1.f);  // not c times an integer
  EXPECT_FALSE(lpbq_factor(s, cs.n, cs.k, 32, c, m));
  s = p.scales;
  s[15] = 0.f;  // a zero scale
  EXPECT_FALSE(lpbq_factor(s, cs.n, cs.k, 32, c, m));
  // Multiplier 0.5 (below 1): c = max / 16, one block at c / 2.
  s = {16.f, 0.5f};
  EXPECT_FALSE(lpbq_factor(s, 1, 64, 32, c, m));
  s = {16.f, 1.f};
  EXPECT_TRUE(lpbq_factor(s, 1, 64, 32, c, m));
  EXPECT_EQ(c[0], 1.f);
  EXPECT_EQ(m[1], 1);
  // The bound: c with a 24-bit odd significand fits K = 64 (2^23 * 64 < 2^30) but not K = 256.
  const float c24 = std::ldexp(static_cast<float>((1 << 24) - 1), -30);
  s = {c24 * 16.f, c24 * 4.f};  // c * m exact in float: m a power of two here
  EXPECT_TRUE(lpbq_factor(s, 1, 64, 32, c, m));
  s.resize(8, c24);
  s[0] = c24 * 16.f;
  EXPECT_FALSE(lpbq_factor(s, 1, 256, 32, c, m));
  EXPECT_FALSE(lpbq_factor(p.scales, cs.n, cs.k + 64, 32, c, m));  // wrong count
}

// The decode tiles through LPBQ factors (1-byte multipliers, the float scales unread) against
// the portable path without them and the formula: the same bits. On AVX2 the int16 tile; on
// AVX-512 VNNI CPUs (target AVX3) also the vpdpbusd tile of qgemm_vnni_i4.cpp, which needs the
// row sums (without them AVX3 runs the int16 tile). M = 1..5 (single
// tokens take the 4-row decode tile; leftover rows take the generic tiles), N = 1..13, K around
// the block and 4-group chunk sizes (partial last block, odd block count, 1..3 groups past the
// chunks, the tail copy), both activation encodings (the shift), bias or none, 1 and 2
// threads, weights random or at -8 / 7. HS_QGEMM_AVX2_CASES scales it.
TEST(QgemmExact, Avx2LpbqDecodeEqualsThePortablePath) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget& portable = targets.back();
  const SimdTarget* avx3 = vnni_avx3(targets);
  int vnni_cases = 0;
  const int count = avx2_cases(2, 96);
  const int64_t ks[] = {1,   31,  32,  33,  64,  65,  96,  172, 255, 256,
                        257, 320, 511, 512, 513, 576, 600, 1000, 1536, 4096};
  std::mt19937 rng(1516);
  ThreadPool pool(2);
  for (int i = 0; i < count; ++i) {
    const int64_t m = i % 4 == 0 ? std::uniform_int_distribution<int64_t>(2, 5)(rng) : 1;
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 13)(rng);
    const int64_t k = ks[static_cast<size_t>(i) % std::size(ks)];
    const int32_t offset = (i / 2) % 2 == 0 ? 32768 : 12345;
    const bool narrow = i % 5 == 0;
    const bool with_bias = i % 3 != 0;
    const Case c{WeightBits::kInt4, 32, m, n, k};
    Problem p = lpbq_problem(rng, c, offset, narrow);
    if (i % 7 == 1 || i % 7 == 2) {
      std::fill(p.wq.begin(), p.wq.end(), static_cast<int8_t>(i % 7 == 1 ? -8 : 7));
      EXPECT_TRUE(pack_int4(p.wq, c.n, c.k, p.data).ok());
    }
    make_lpbq(rng, p);
    Lpbq f;
    ASSERT_TRUE(lpbq_factor(p.scales, n, k, 32, f.c, f.m));
    SCOPED_TRACE(::testing::Message() << "case " << i << ": M=" << m << " N=" << n << " K=" << k
                                      << " offset " << offset << (narrow ? " narrow" : ""));
    const Floats ref = portable_run(portable, p, m, with_bias);
    EXPECT_TRUE(same_bits(ref, expected(p, with_bias)));
    {
      ScopedSimdTarget scope(portable);  // the portable path ignores the factors
      EXPECT_TRUE(same_bits(run(p, 0, m, ActLayout::kTokenMajor, with_bias, p.act_scale, nullptr, &f), ref));
    }
    const ActLayout layout = i % 2 == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
    {
      ScopedSimdTarget scope(*avx2);
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr, &f), ref));
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, &pool, &f), ref));
    }
    if (avx3 != nullptr) {
      ScopedSimdTarget scope(*avx3);
      vnni_cases += lpbq_row_sums_used(m) ? 1 : 0;  // M >= 4: the int16 tiles read no sums
      f.sums = lpbq_row_sums(p.data, f.m, n, k, 32);
      ASSERT_EQ(f.sums, row_sums(p, f.m));
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr, &f), ref));
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, &pool, &f), ref));
      f.sums.clear();
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr, &f), ref));
    }
  }
  if (avx3 != nullptr) {
    EXPECT_GE(vnni_cases, count * 3 / 4);
  } else {
    std::printf("no AVX3 target with AVX-512 VNNI here: the VNNI decode tile was not run\n");
  }
}

// The prefill panels through LPBQ factors (qgemm_avx2_panel.cpp runs them as per channel with
// weights m_b q, flushed every 15 blocks like int8): the same bits as the portable path without
// factors and the formula. M from the panels' threshold (13..40), K around blocks and the flush
// interval (480 = 15 blocks, 481, 512), and the overflow extreme: every n = -32768 against
// every m_b q = -128, where a lane reaches 240 * 2^23 = 2013265920 just before its flush (a
// 128-block flush, int4's, would wrap there).
TEST(QgemmExact, Avx2LpbqPrefillEqualsThePortablePath) {
  const std::vector<SimdTarget> targets = runnable_simd_targets();
  const SimdTarget* avx2 = find_target(targets, "AVX2");
  if (avx2 == nullptr) GTEST_SKIP() << "AVX2 is not a runnable target here";
  const SimdTarget* avx3 = find_target(targets, "AVX3");
  const SimdTarget& portable = targets.back();
  const int count = avx2_cases(1, 36);
  const int64_t ks[] = {32, 33, 172, 480, 481, 512, 576, 1000, 1536};
  std::mt19937 rng(1519);
  ThreadPool pool(2);
  int extremes = 0;
  for (int i = 0; i < count; ++i) {
    const int64_t m = std::uniform_int_distribution<int64_t>(13, 40)(rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 13)(rng);
    const int64_t k = ks[static_cast<size_t>(i) % std::size(ks)];
    const bool extreme = i % 4 == 3;
    const int32_t offset = extreme || (i / 2) % 2 == 0 ? 32768 : 12345;
    const bool narrow = i % 5 == 0;
    const bool with_bias = i % 3 != 0;
    const Case c{WeightBits::kInt4, 32, m, n, k};
    Problem p = lpbq_problem(rng, c, offset, narrow);
    make_lpbq(rng, p);
    if (extreme) {  // q = -8, m_b = 16 (equal scales), n = -32768 (u = 0)
      std::fill(p.wq.begin(), p.wq.end(), static_cast<int8_t>(-8));
      ASSERT_TRUE(pack_int4(p.wq, c.n, c.k, p.data).ok());
      std::fill(p.scales.begin(), p.scales.end(), std::ldexp(1.f, -20));
      for (size_t j = 0; j < p.ints.size(); ++j) {
        p.ints[j] = -offset;
        p.x[j] = p.act_scale * static_cast<float>(p.ints[j]);
      }
      extremes += k >= 480 ? 1 : 0;
    }
    Lpbq f;
    ASSERT_TRUE(lpbq_factor(p.scales, n, k, 32, f.c, f.m));
    SCOPED_TRACE(::testing::Message() << "case " << i << ": M=" << m << " N=" << n << " K=" << k
                                      << " offset " << offset << (narrow ? " narrow" : "")
                                      << (extreme ? " extreme" : ""));
    const Floats ref = portable_run(portable, p, m, with_bias);
    EXPECT_TRUE(same_bits(ref, expected(p, with_bias)));
    const ActLayout layout = i % 2 == 0 ? ActLayout::kTokenMajor : ActLayout::kChannelMajor;
    for (const SimdTarget* t : {avx2, avx3}) {
      if (t == nullptr) continue;
      ScopedSimdTarget scope(*t);
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, nullptr, &f), ref))
          << t->name;
      EXPECT_TRUE(same_bits(run(p, 0, m, layout, with_bias, p.act_scale, &pool, &f), ref))
          << t->name;
    }
  }
  EXPECT_GE(extremes, count / 8);
}

// Factors whose sizes do not match the call: kShape naming them, y untouched.
TEST(QgemmExact, LpbqFactorsOfTheWrongSizeAreAnError) {
  std::mt19937 rng(1518);
  const Case cs{WeightBits::kInt4, 32, 1, 4, 64};
  Problem p = make(rng, cs, false);
  make_lpbq(rng, p);
  Lpbq f;
  ASSERT_TRUE(lpbq_factor(p.scales, 4, 64, 32, f.c, f.m));
  f.m.pop_back();
  QuantizedWeights w{cs.bits, p.data, p.scales, cs.block, {}};
  w.act_scale = p.act_scale;
  w.act_offset = p.zp;
  w.lpbq_row_scales = f.c;
  w.lpbq_mult = f.m;
  Floats y(4, -7.f);
  const Status s = matmul_quantized({1, 4, 64, ActLayout::kTokenMajor}, p.x, w, y, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kShape);
  EXPECT_NE(s.error().message().find("LPBQ factors of 4 row scales and 7 multipliers"),
            std::string::npos)
      << s.error().message();
  EXPECT_EQ(y, Floats(4, -7.f));
  // Row sums without factors, or of the wrong count.
  f.m.push_back(1);
  w.lpbq_mult = f.m;
  const std::vector<int32_t> sums = lpbq_row_sums(p.data, f.m, 4, 64, 32);
  ASSERT_EQ(sums.size(), 4u);
  w.lpbq_row_sums = std::span<const int32_t>(sums).first(3);
  const Status s3 = matmul_quantized({1, 4, 64, ActLayout::kTokenMajor}, p.x, w, y, nullptr);
  ASSERT_FALSE(s3.ok());
  EXPECT_NE(s3.error().message().find("3 LPBQ row sums with 8 multipliers: expected N = 4"),
            std::string::npos)
      << s3.error().message();
  w.lpbq_row_scales = {};
  w.lpbq_mult = {};
  w.lpbq_row_sums = sums;
  EXPECT_FALSE(matmul_quantized({1, 4, 64, ActLayout::kTokenMajor}, p.x, w, y, nullptr).ok());
  EXPECT_EQ(y, Floats(4, -7.f));
  // lpbq_row_sums refuses sizes that do not fit.
  EXPECT_TRUE(lpbq_row_sums(p.data, f.m, 4, 65, 32).empty());
  EXPECT_TRUE(lpbq_row_sums(std::span<const std::byte>(p.data).first(10), f.m, 4, 64, 32).empty());
}

}  // namespace
}  // namespace hs::kernels

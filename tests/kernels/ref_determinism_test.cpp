// The determinism contract: an output element's value does not depend on how many other
// heads, channels or rows the same call computes. The MHA -> SHA split relies on this, so
// these seeded property tests compare whole-tensor calls with per-head calls bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref {
namespace {

using Floats = std::vector<float>;
using Dims64 = std::vector<int64_t>;

Floats random_floats(std::mt19937& rng, int64_t n, float lo = -2.f, float hi = 2.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Floats v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

TEST(RefDeterminism, Conv2dPerHeadEqualsAllHeads) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t H = 1 + seed % 4, Dh = 2 + seed % 5, Ci = 3 + seed % 17, S = 1 + seed % 6;
    const int64_t Co = H * Dh;
    const Floats x = random_floats(rng, Ci * S);   // x[1,Ci,S]
    const Floats w = random_floats(rng, Co * Ci);  // w[Co,Ci]: head h owns rows h*Dh..
    const Floats b = random_floats(rng, Co);       // b[Co]
    Floats y(static_cast<size_t>(Co * S));         // y[1,Co,S]
    conv2d_1x1({1, Ci, Co, S}, x.data(), w.data(), b.data(), y.data());
    for (int64_t h = 0; h < H; ++h) {
      Floats yh(static_cast<size_t>(Dh * S));  // yh[1,Dh,S]
      conv2d_1x1({1, Ci, Dh, S}, x.data(), w.data() + h * Dh * Ci, b.data() + h * Dh, yh.data());
      EXPECT_TRUE(same_bits(yh.data(), y.data() + h * Dh * S, Dh * S))
          << "seed " << seed << " head " << h;
    }
  }
}

TEST(RefDeterminism, LinearPerHeadAndPerRowEqualsAll) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t H = 1 + seed % 3, Dh = 1 + seed % 7, I = 1 + seed % 23, M = 1 + seed % 5;
    const Floats x = random_floats(rng, M * I);       // x[M,I]
    const Floats w = random_floats(rng, H * Dh * I);  // w[H*Dh,I]
    Floats y(static_cast<size_t>(M * H * Dh));        // y[M,H*Dh]
    linear({M, I, H * Dh}, x.data(), w.data(), nullptr, y.data());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t h = 0; h < H; ++h) {
        Floats yh(static_cast<size_t>(Dh));  // one row, one head: yh[1,Dh]
        linear({1, I, Dh}, x.data() + m * I, w.data() + h * Dh * I, nullptr, yh.data());
        EXPECT_TRUE(same_bits(yh.data(), y.data() + m * H * Dh + h * Dh, Dh))
            << "seed " << seed << " row " << m << " head " << h;
      }
    }
  }
}

TEST(RefDeterminism, MatMulBatchedOverHeadsEqualsOneHeadAtATime) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t Hkv = 1 + seed % 3, G = 1 + seed % 2, T = 1 + seed % 4, Dh = 2 + seed % 6;
    const int64_t C = 1 + seed % 9, H = Hkv * G;
    // Scores of GQA attention: q[Hkv,G,T,Dh] @ k[Hkv,1,Dh,C] (k broadcast over the G queries
    // of its kv head) -> s[Hkv,G,T,C]. Per head h: q_h[T,Dh] @ k_{h/G}[Dh,C].
    const Floats q = random_floats(rng, H * T * Dh), k = random_floats(rng, Hkv * Dh * C);
    const Dims64 qs = {Hkv, G, T, Dh}, ks = {Hkv, 1, Dh, C}, ss = {Hkv, G, T, C};
    Floats s(static_cast<size_t>(H * T * C));
    matmul({q.data(), qs}, {k.data(), ks}, s.data(), ss);
    const Dims64 qh = {T, Dh}, kh = {Dh, C}, sh = {T, C};
    for (int64_t h = 0; h < H; ++h) {
      Floats one(static_cast<size_t>(T * C));
      matmul({q.data() + h * T * Dh, qh}, {k.data() + (h / G) * Dh * C, kh}, one.data(), sh);
      EXPECT_TRUE(same_bits(one.data(), s.data() + h * T * C, T * C))
          << "seed " << seed << " head " << h;
    }
  }
}

TEST(RefDeterminism, SoftmaxOverHeadsEqualsPerHead) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t H = 1 + seed % 5, T = 1 + seed % 4, C = 1 + seed % 11;
    Floats x = random_floats(rng, H * T * C, -8.f, 8.f);     // x[H,T,C]
    for (size_t i = 0; i < x.size(); i += 3) x[i] = -255.f;  // some masked entries
    Floats y(x.size());
    const Dims64 shape = {H, T, C};
    softmax(axis_dims(shape, 2), x.data(), y.data());
    for (int64_t h = 0; h < H; ++h) {
      Floats yh(static_cast<size_t>(T * C));  // one head: [T,C]
      softmax({T, C, 1}, x.data() + h * T * C, yh.data());
      EXPECT_TRUE(same_bits(yh.data(), y.data() + h * T * C, T * C))
          << "seed " << seed << " head " << h;
    }
  }
}

TEST(RefDeterminism, RmsNormPerRowEqualsAllRows) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t rows = 1 + seed % 6, n = 1 + seed % 33;
    const Floats x = random_floats(rng, rows * n), w = random_floats(rng, n);
    Floats y(x.size());
    rms_norm(rows, n, x.data(), w.data(), 1e-5f, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      Floats yr(static_cast<size_t>(n));
      rms_norm(1, n, x.data() + r * n, w.data(), 1e-5f, yr.data());
      EXPECT_TRUE(same_bits(yr.data(), y.data() + r * n, n)) << "seed " << seed << " row " << r;
    }
  }
}

}  // namespace
}  // namespace hs::kernels::ref

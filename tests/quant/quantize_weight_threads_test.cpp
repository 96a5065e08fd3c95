// quantize_weight on weights big enough to be spread over the thread pool (>= 2^16
// elements): scales are exactly max|w| / qmax per row (block), the storage equals one
// whole-tensor ref::quantize with those params, and the first non-finite element is named
// even when later chunks hold others.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "headsplit/kernels/reference.h"
#include "headsplit/quant/params.h"
#include "testing/testing.h"

namespace hs::quant {
namespace {

struct Case {
  ir::Shape shape;
  WeightSpec spec;
};

TEST(QuantizeWeightThreads, RowChunksEqualWholeTensorQuantization) {
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const std::vector<Case> cases = {{{301, 576}, {8, 0}},
                                   {{257, 300, 1, 1}, {4, 0}},
                                   // Free scales (the integers' own; LPBQ: params_test.cpp)
                                   {{129, 576, 1, 1}, {4, 32, false}},
                                   {{67, 1000, 1, 1}, {4, 48, false}},  // partial last block
                                   {{97, 9, 80}, {8, 0}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(ir::shape_str(c.shape));
    const int64_t n = ir::num_elements(c.shape);
    ASSERT_GE(n, int64_t{1} << 16);
    std::vector<float> w(static_cast<size_t>(n));
    for (float& x : w) x = normal(rng);
    w[static_cast<size_t>(n / 3)] = 2.5f;  // an outlier in one row
    HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q, quantize_weight(w, c.shape, c.spec, "w"));
    const int64_t rows = c.shape[0], cols = n / rows;
    const int64_t in = c.shape[1], rest = cols / in;
    const int64_t block = c.spec.block > 0 ? c.spec.block : in;
    const int64_t blocks = (in + block - 1) / block;
    const float qmax = c.spec.bits == 8 ? 127.0f : 7.0f;
    ASSERT_EQ(q.type.quant.scales.size(), static_cast<size_t>(rows * blocks));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        float amax = 0;
        for (int64_t j = b * block * rest; j < std::min(in, (b + 1) * block) * rest; ++j) {
          amax = std::max(amax, std::fabs(w[static_cast<size_t>(r * cols + j)]));
        }
        ASSERT_EQ(q.type.quant.scales[static_cast<size_t>(r * blocks + b)],
                  std::max(amax / qmax, kEpsWeight))
            << "row " << r << " block " << b;
      }
    }
    // The whole tensor quantized in one call with the weight's own type.
    EXPECT_EQ(q.type.quant.kind,
              c.spec.block > 0 ? ir::QuantKind::kPerBlock : ir::QuantKind::kPerAxis);
    EXPECT_EQ(q.type.dtype,
              c.spec.bits == 8 && c.spec.block == 0 ? ir::DType::kI8 : ir::DType::kI4);
    std::vector<std::byte> want(static_cast<size_t>(n));
    kernels::ref::quantize(w.data(), c.shape, q.type.quant, q.type.dtype, want.data());
    ASSERT_EQ(q.data.size, want.size());
    EXPECT_EQ(0, std::memcmp(q.data.bytes().data(), want.data(), want.size()));
  }
}

TEST(QuantizeWeightThreads, FirstNonFiniteElementIsNamed) {
  const ir::Shape shape = {512, 256};
  std::vector<float> w(512 * 256, 0.5f);
  w[200 * 256 + 7] = std::numeric_limits<float>::infinity();  // a later row chunk
  w[3 * 256 + 1] = std::nanf("");                             // the first one
  w[500 * 256] = -std::numeric_limits<float>::infinity();
  auto q = quantize_weight(w, shape, {8, 0}, "weight 'big'");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(q.error().message().find("weight 'big'"), std::string::npos);
  EXPECT_NE(q.error().message().find("element 769 "), std::string::npos) << q.error().message();
  w[3 * 256 + 1] = 0.5f;
  auto q2 = quantize_weight(w, shape, {4, 32}, "weight 'big'");
  ASSERT_FALSE(q2.ok());
  EXPECT_NE(q2.error().message().find("element 51207 "), std::string::npos) << q2.error().message();
}

}  // namespace
}  // namespace hs::quant

// The interpreter's KernelSet::kFast element ops (broadcast add/sub/mul/div by rows, expand
// by block copies, softmax with underflowing exponents flushed) against kReference, and the
// storage shortcuts of both kernel sets (float constants read in place, copy ops taking over a
// dying input): hand-computed cases and seeded bit-exact comparisons.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "headsplit/ir/interpreter.h"
#include "headsplit/kernels/gemm.h"
#include "testing/testing.h"

namespace hs::ir {
namespace {

using Floats = std::vector<float>;

ValueId add_const(Graph& g, std::string name, TensorType type, const Floats& data) {
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span<const float>(data)));
  auto id = g.add_constant(std::move(name), std::move(type), BufferView{buf, 0, buf->size()});
  HS_CHECK(id.ok(), "test constant");
  return *id;
}

ValueId input(Graph& g, std::string name, TensorType type) {
  auto id = g.add_input(std::move(name), std::move(type));
  HS_CHECK(id.ok(), "test input");
  return *id;
}

ValueId emit(Graph& g, OpKind op, std::vector<ValueId> in, Attrs attrs, std::string name) {
  auto id = g.emit(op, std::move(in), std::move(attrs), std::move(name));
  HS_CHECK(id.ok(), id.ok() ? "" : id.error().message());
  return *id;
}

Floats random_floats(std::mt19937& rng, int64_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  Floats v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<Tensor> run(const Graph& g, const std::vector<NamedTensor>& in, KernelSet k) {
  auto out = run_graph(g, in, {.kernels = k});
  HS_CHECK(out.ok(), out.ok() ? "" : out.error().message());
  return std::move(out).value();
}

TEST(InterpreterFastOps, BroadcastBinaryAndExpandHandComputed) {
  // a[2,1,3] = {{0,1,2}},{{3,4,5}}; b[2,1] = {10, 20} (broadcast to [2,2,3]);
  // s = a + b: {{10,11,12},{20,21,22}}, {{13,14,15},{23,24,25}};
  // e = expand(a, [2,2,3]) repeats each row of a twice.
  Graph g;
  ValueId a = input(g, "a", TensorType::f32({2, 1, 3}));
  ValueId b = add_const(g, "b", TensorType::f32({2, 1}), Floats{10, 20});
  ValueId s = emit(g, OpKind::kAdd, {a, b}, {}, "s");
  ValueId e = emit(g, OpKind::kExpand, {a}, {{"shape", std::vector<int64_t>{2, 2, 3}}}, "e");
  g.set_outputs({s, e});
  const std::vector<NamedTensor> in = {{"a", Tensor::from_f32({2, 1, 3}, {0, 1, 2, 3, 4, 5})}};
  for (KernelSet k : {KernelSet::kReference, KernelSet::kFast}) {
    const auto out = run(g, in, k);
    EXPECT_EQ(out[0].f, (Floats{10, 11, 12, 20, 21, 22, 13, 14, 15, 23, 24, 25}));
    EXPECT_EQ(out[1].f, (Floats{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
  }
}

// Seeded: random broadcast patterns of rank 4 for every binary op and expand, bit-identical.
TEST(InterpreterFastOps, BinaryAndExpandAreBitIdenticalToReference) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    Shape y(4), a(4), b(4);
    for (size_t k = 0; k < 4; ++k) {
      // The last axis up to 40: rows of the SIMD path (>= 16) with tails, and short ones.
      y[k] = 1 + static_cast<int64_t>(rng() % (k == 3 ? 40 : 4));
      a[k] = rng() % 3 == 0 ? 1 : y[k];
      b[k] = rng() % 3 == 0 ? 1 : y[k];
    }
    a[0] = y[0];  // keep y's shape the broadcast of a and b
    SCOPED_TRACE(fmt::format("y {} a {} b {}", shape_str(y), shape_str(a), shape_str(b)));
    Graph g;
    ValueId va = input(g, "a", TensorType::f32(a));
    ValueId vb = add_const(g, "b", TensorType::f32(b), random_floats(rng, num_elements(b), 3));
    std::vector<ValueId> outs;
    for (OpKind op : {OpKind::kAdd, OpKind::kSub, OpKind::kMul, OpKind::kDiv}) {
      outs.push_back(emit(g, op, {va, vb}, {}, fmt::format("op{}", outs.size())));
    }
    outs.push_back(emit(g, OpKind::kExpand, {va}, {{"shape", std::vector<int64_t>(y)}}, "e"));
    g.set_outputs(outs);
    const std::vector<NamedTensor> in = {
        {"a", Tensor::from_f32(a, random_floats(rng, num_elements(a), 2))}};
    const auto ref = run(g, in, KernelSet::kReference);
    const auto fast = run(g, in, KernelSet::kFast);
    ASSERT_EQ(ref.size(), fast.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(ref[i].shape, fast[i].shape);
      ASSERT_EQ(0, std::memcmp(ref[i].f.data(), fast[i].f.data(), ref[i].f.size() * 4))
          << "output " << i;
    }
  }
}

// Masked scores as in attention (-255 added to masked slots): every exponent is either
// ordinary or underflows to 0 in both kernel sets, so the results are bit-identical; the rows
// sum to 1 and masked slots get exactly 0.
TEST(InterpreterFastOps, SoftmaxOfMaskedScoresMatchesReference) {
  // n = 43: the fast kernel's groups of 4 and a tail of 3; rows mask from different offsets.
  std::mt19937 rng(11);
  for (const int64_t n : {int64_t{40}, int64_t{43}}) {
    const int64_t rows = 6;
    Floats x = random_floats(rng, rows * n, 4);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = r + 3; j < n; ++j) x[static_cast<size_t>(r * n + j)] -= 255.f;
    }
    Graph g;
    ValueId vx = input(g, "x", TensorType::f32({rows, n}));
    g.set_outputs({emit(g, OpKind::kSoftmax, {vx}, {{"axis", int64_t{-1}}}, "p")});
    const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({rows, n}, x)}};
    const auto ref = run(g, in, KernelSet::kReference);
    const auto fast = run(g, in, KernelSet::kFast);
    EXPECT_EQ(ref[0].f, fast[0].f);
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += fast[0].f[static_cast<size_t>(r * n + j)];
      EXPECT_NEAR(sum, 1.0, 1e-5);  // float rounding of n terms
      EXPECT_EQ(fast[0].f[static_cast<size_t>(r * n + n - 1)], 0.f);
    }
  }
}

// Rows laid out as attention over a long cache: live columns [0, past), masked ones up to
// n - t, live ones again at the end (the fast kernel divides only the runs of groups it did
// not flush), plus a row with a NaN (divided whole) and a row with a single live column.
// Bit-identical to the reference, NaN rows NaN in both.
TEST(InterpreterFastOps, SoftmaxWithMaskedMiddleColumnsMatchesReference) {
  std::mt19937 rng(5);
  const int64_t n = 203, rows = 8;
  Floats x = random_floats(rng, rows * n, 4);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t past = 5 * r + 1, t = r + 2;
    for (int64_t j = past; j < n - t; ++j) x[static_cast<size_t>(r * n + j)] -= 255.f;
  }
  x[static_cast<size_t>(3 * n + 17)] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 1; j < n; ++j) x[static_cast<size_t>(5 * n + j)] = -300.f;
  Graph g;
  ValueId vx = input(g, "x", TensorType::f32({rows, n}));
  g.set_outputs({emit(g, OpKind::kSoftmax, {vx}, {{"axis", int64_t{-1}}}, "p")});
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({rows, n}, x)}};
  const auto ref = run(g, in, KernelSet::kReference);
  const auto fast = run(g, in, KernelSet::kFast);
  for (size_t i = 0; i < ref[0].f.size(); ++i) {
    const float a = ref[0].f[i], b = fast[0].f[i];
    ASSERT_EQ(std::isnan(a), std::isnan(b)) << "element " << i;
    if (!std::isnan(a)) {
      ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << i;
    }
  }
  EXPECT_TRUE(std::isnan(fast[0].f[static_cast<size_t>(3 * n)]));
  EXPECT_EQ(fast[0].f[static_cast<size_t>(5 * n)], 1.f);
}

// Exponents in (-104, -87) give denormals in the reference and 0 in the fast kernel: the
// difference is below 1.2e-38 per element.
TEST(InterpreterFastOps, SoftmaxFlushesOnlyNegligibleExponents) {
  Graph g;
  ValueId vx = input(g, "x", TensorType::f32({1, 3}));
  g.set_outputs({emit(g, OpKind::kSoftmax, {vx}, {{"axis", int64_t{1}}}, "p")});
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({1, 3}, {0.f, -90.f, 0.f})}};
  const auto ref = run(g, in, KernelSet::kReference);
  const auto fast = run(g, in, KernelSet::kFast);
  EXPECT_EQ(fast[0].f, (Floats{0.5f, 0.f, 0.5f}));
  EXPECT_GT(ref[0].f[1], 0.f);
  EXPECT_LT(ref[0].f[1], 1.2e-38f);
  EXPECT_EQ(ref[0].f[0], 0.5f);
  // The same inside the 4-lane groups and 64-column chunks of a long row: columns alternate
  // 0 and -90 (and one -100) over 70 columns, so 35 live ones of exp(0) = 1 each.
  Graph g2;
  ValueId v2 = input(g2, "x", TensorType::f32({1, 70}));
  g2.set_outputs({emit(g2, OpKind::kSoftmax, {v2}, {{"axis", int64_t{1}}}, "p")});
  Floats x2(70);
  for (size_t j = 0; j < x2.size(); ++j) x2[j] = j % 2 == 0 ? 0.f : -90.f;
  x2[65] = -100.f;
  const auto fast2 = run(g2, {{"x", Tensor::from_f32({1, 70}, x2)}}, KernelSet::kFast);
  for (size_t j = 0; j < x2.size(); ++j)
    EXPECT_EQ(fast2[0].f[j], j % 2 == 0 ? 1.f / 35.f : 0.f) << "column " << j;
}

// Reshape chains take over their input's storage; a value that is also a graph output (or
// read again later) must not be taken. Both kernel sets, hand-computed.
TEST(InterpreterFastOps, CopyOpsKeepValuesThatAreStillNeeded) {
  Graph g;
  ValueId x = input(g, "x", TensorType::f32({2, 2}));
  ValueId w = add_const(g, "w", TensorType::f32({2, 2}), Floats{1, 2, 3, 4});
  ValueId y = emit(g, OpKind::kMul, {x, w}, {}, "y");  // {1,4,9,16}
  ValueId r1 = emit(g, OpKind::kReshape, {y}, {{"shape", std::vector<int64_t>{4}}}, "r1");
  ValueId r2 = emit(g, OpKind::kReshape, {r1}, {{"shape", std::vector<int64_t>{1, 4}}}, "r2");
  ValueId z = emit(g, OpKind::kNeg, {y}, {}, "z");  // reads y after r1 did
  ValueId u = emit(g, OpKind::kUnsqueeze, {z}, {{"axis", int64_t{0}}}, "u");
  g.set_outputs({r2, u, z, w});
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({2, 2}, {1, 2, 3, 4})}};
  for (KernelSet k : {KernelSet::kReference, KernelSet::kFast}) {
    const auto out = run(g, in, k);
    EXPECT_EQ(out[0].shape, (Shape{1, 4}));
    EXPECT_EQ(out[0].f, (Floats{1, 4, 9, 16}));
    EXPECT_EQ(out[1].shape, (Shape{1, 2, 2}));
    EXPECT_EQ(out[1].f, (Floats{-1, -4, -9, -16}));
    EXPECT_EQ(out[2].f, (Floats{-1, -4, -9, -16}));
    EXPECT_EQ(out[3].f, (Floats{1, 2, 3, 4}));  // a constant output, read in place
  }
}

// kFast matmul y[B,M,N] = a[B,M,K] b[B,K,N] with the exact shortcuts of the interpreter (all-zero
// inputs k of a dropped, all-zero columns of b not multiplied) against matmul_f32 called on
// each whole matrix: bit-identical, +-0 zeros included, and a non-finite b row at a zero input
// of a (0 * inf = NaN) still taken into account.
TEST(InterpreterFastOps, MatmulZeroShortcutsAreBitIdenticalToTheWholeCall) {
  constexpr int64_t B = 2, M = 5, K = 40, N = 100;
  std::mt19937 rng(7);
  // Cases 0-2: the kept columns / inputs are two runs (gathered one by one); 3-6: one run (the
  // live cache slots: copied or read in place), at the start or the end of the matrix.
  for (int c = 0; c < 7; ++c) {
    Floats a = random_floats(rng, B * M * K, 1.f), b = random_floats(rng, B * K * N, 1.f);
    const auto zero_column = [&](int64_t j) {
      switch (c) {
        case 0: return (j >= 10 && j < 60) || j >= 70;  // all but 10 of the first 60, last 30
        case 3: return j >= 20;                         // live columns [0, 20)
        default: return j < 80;                         // live columns [80, 100)
      }
    };
    const auto zero_input = [&](int64_t k) {
      switch (c) {
        case 1:
        case 2: return k >= 5 && k < 35;  // kept inputs [0, 5) and [35, 40)
        case 4: return k >= 8;            // kept [0, 8)
        default: return k < 30;           // kept [30, 40)
      }
    };
    for (int64_t i = 0; i < B; ++i) {
      if (c == 0 || c == 3 || c == 6) {  // zero columns of b
        for (int64_t k = 0; k < K; ++k) {
          for (int64_t j = 0; j < N; ++j) {
            if (zero_column(j))
              b[static_cast<size_t>((i * K + k) * N + j)] = (j + k) % 2 == 0 ? 0.f : -0.f;
          }
        }
      } else {  // zero inputs of a
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t k = 0; k < K; ++k) {
            if (zero_input(k))
              a[static_cast<size_t>((i * M + m) * K + k)] = (m + k) % 2 == 0 ? 0.f : -0.f;
          }
        }
        if (c == 2) b[static_cast<size_t>((i * K + 20) * N + 3)] = INFINITY;
      }
    }
    Graph g;
    ValueId va = input(g, "a", TensorType::f32({B, M, K}));
    ValueId vb = input(g, "b", TensorType::f32({B, K, N}));
    g.set_outputs({emit(g, OpKind::kMatMul, {va, vb}, {}, "y")});
    const std::vector<NamedTensor> in = {{"a", Tensor::from_f32({B, M, K}, a)},
                                         {"b", Tensor::from_f32({B, K, N}, b)}};
    const Floats y = run(g, in, KernelSet::kFast)[0].f;
    Floats expected(static_cast<size_t>(B * M * N));
    for (int64_t i = 0; i < B; ++i) {
      // The plain fast call: channel-major x = b [K, N positions], W = a [M, K].
      const kernels::MatmulShape shape{N, M, K, kernels::ActLayout::kChannelMajor};
      const std::span<const float> bi(b.data() + i * K * N, static_cast<size_t>(K * N));
      const std::span<const float> ai(a.data() + i * M * K, static_cast<size_t>(M * K));
      ASSERT_TRUE(kernels::matmul_f32(shape, bi, {ai, {}},
                                      {expected.data() + i * M * N, static_cast<size_t>(M * N)},
                                      nullptr)
                      .ok());
    }
    ASSERT_EQ(y.size(), expected.size());
    EXPECT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0) << "case " << c;
    if (c == 0) {
      EXPECT_EQ(std::bit_cast<uint32_t>(y[20]), 0u) << "a zero column gives +0";
    }
    if (c == 2) {
      EXPECT_TRUE(std::isnan(y[3])) << "0 * inf at a zero input of a";
    }
  }
}

}  // namespace
}  // namespace hs::ir

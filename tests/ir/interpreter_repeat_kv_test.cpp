// The interpreter's KernelSet::kFast GQA repeat-KV fusion (interpreter_fusion.h): matmuls
// reading unsqueeze -> expand -> reshape of a KV value run on the unexpanded value, skip the
// three layout ops, and give bit-identical results to the unfused kFast path (the same
// graph with the repeated values made graph outputs, which blocks the fusion).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "headsplit/ir/interpreter.h"
#include "testing/testing.h"

namespace hs::ir {
namespace {

using Floats = std::vector<float>;

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

struct Dims {
  int64_t Hkv, G, T, C0, Dh;
};

// [1,Hkv,a,b] -> [1,H,a,b] as builder_attention.cpp's repeat_kv.
ValueId repeat(Graph& g, ValueId x, const Dims& d, const std::string& name) {
  const Shape s = g.type(x).shape;
  ValueId u = emit(g, OpKind::kUnsqueeze, {x}, {{"axis", int64_t{2}}}, name + ".unsq");
  ValueId e = emit(g, OpKind::kExpand, {u},
                   {{"shape", std::vector<int64_t>{1, d.Hkv, d.G, s[2], s[3]}}}, name + ".expand");
  return emit(g, OpKind::kReshape, {e},
              {{"shape", std::vector<int64_t>{1, d.Hkv * d.G, s[2], s[3]}}}, name + ".rep");
}

// MHA attention core with the caches concatenated and repeated: outputs y [1,H,T,Dh] and
// scores [1,H,T,C], and the repeated K and V when `expose_repeats` (which blocks the fusion).
Graph attention(const Dims& d, bool expose_repeats) {
  const int64_t H = d.Hkv * d.G;
  Graph g;
  ValueId q = input(g, "q", TensorType::f32({1, H, d.T, d.Dh}));
  ValueId kc = input(g, "kc", TensorType::f32({1, d.Hkv, d.Dh, d.C0}));
  ValueId kn = input(g, "kn", TensorType::f32({1, d.Hkv, d.Dh, d.T}));
  ValueId vc = input(g, "vc", TensorType::f32({1, d.Hkv, d.C0, d.Dh}));
  ValueId vn = input(g, "vn", TensorType::f32({1, d.Hkv, d.T, d.Dh}));
  ValueId kh = emit(g, OpKind::kConcat, {kc, kn}, {{"axis", int64_t{3}}}, "k_all");
  ValueId vh = emit(g, OpKind::kConcat, {vc, vn}, {{"axis", int64_t{2}}}, "v_all");
  ValueId kr = repeat(g, kh, d, "k_all");
  ValueId vr = repeat(g, vh, d, "v_all");
  ValueId s = emit(g, OpKind::kMatMul, {q, kr}, {}, "scores");
  ValueId p = emit(g, OpKind::kSoftmax, {s}, {{"axis", int64_t{3}}}, "probs");
  ValueId y = emit(g, OpKind::kMatMul, {p, vr}, {}, "y");
  std::vector<ValueId> outs = {y, s};
  if (expose_repeats) outs.insert(outs.end(), {kr, vr});
  g.set_outputs(outs);
  return g;
}

Floats random_floats(std::mt19937& rng, int64_t n) {
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  Floats v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<NamedTensor> random_inputs(const Graph& g, std::mt19937& rng) {
  std::vector<NamedTensor> in;
  for (ValueId v : g.inputs()) {
    const Shape& s = g.type(v).shape;
    in.push_back({g.value(v).name, Tensor::from_f32(s, random_floats(rng, num_elements(s)))});
  }
  return in;
}

// Runs g and returns its outputs and the names of the values the observer saw.
std::pair<std::vector<Tensor>, std::vector<std::string>> run_observed(
    const Graph& g, const std::vector<NamedTensor>& in, KernelSet k) {
  std::vector<std::string> seen;
  auto interp = Interpreter::create(g, {.kernels = k});
  HS_CHECK(interp.ok(), "test interpreter");
  auto out = interp->run(in, [&](ValueId v, const Tensor&) { seen.push_back(g.value(v).name); });
  HS_CHECK(out.ok(), out.ok() ? "" : out.error().message());
  return {std::move(out).value(), seen};
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(InterpreterRepeatKv, HandComputed) {
  // Hkv=1, G=2, T=1, C0=1, Dh=2: both keys are (1, 2), both values (3, 4).
  // q [1,2,1,2] = {1,0}, {0,1}: scores = {1,1}, {2,2}; softmax = {1/2, 1/2}; y = {3,4} twice.
  const Dims d{1, 2, 1, 1, 2};
  const Graph g = attention(d, false);
  const std::vector<NamedTensor> in = {{"q", Tensor::from_f32({1, 2, 1, 2}, {1, 0, 0, 1})},
                                       {"kc", Tensor::from_f32({1, 1, 2, 1}, {1, 2})},
                                       {"kn", Tensor::from_f32({1, 1, 2, 1}, {1, 2})},
                                       {"vc", Tensor::from_f32({1, 1, 1, 2}, {3, 4})},
                                       {"vn", Tensor::from_f32({1, 1, 1, 2}, {3, 4})}};
  for (KernelSet k : {KernelSet::kReference, KernelSet::kFast}) {
    const auto [out, seen] = run_observed(g, in, k);
    EXPECT_EQ(out[0].shape, (Shape{1, 2, 1, 2}));
    EXPECT_EQ(out[0].f, (Floats{3, 4, 3, 4}));
    EXPECT_EQ(out[1].f, (Floats{1, 1, 2, 2}));
    // kFast skips the repeat chains: their values are never produced nor observed.
    EXPECT_EQ(contains(seen, "k_all.expand"), k == KernelSet::kReference);
    EXPECT_EQ(contains(seen, "v_all.rep"), k == KernelSet::kReference);
    EXPECT_TRUE(contains(seen, "k_all"));
    EXPECT_TRUE(contains(seen, "y"));
  }
}

// Seeded random GQA shapes (G = 1, G = H and in between): the fused kFast path is
// bit-identical to the unfused one, and the unfused one does run the repeat chain.
TEST(InterpreterRepeatKv, FusedIsBitIdenticalToUnfused) {
  std::mt19937 rng(11);
  std::vector<Dims> cases = {{1, 1, 3, 5, 4}, {1, 6, 2, 7, 8}, {4, 1, 1, 9, 16}, {2, 3, 4, 1, 8}};
  for (int trial = 0; trial < 16; ++trial) {
    cases.push_back({1 + static_cast<int64_t>(rng() % 4), 1 + static_cast<int64_t>(rng() % 4),
                     1 + static_cast<int64_t>(rng() % 5), 1 + static_cast<int64_t>(rng() % 40),
                     1 + static_cast<int64_t>(rng() % 33)});
  }
  for (const Dims& d : cases) {
    SCOPED_TRACE(fmt::format("Hkv {} G {} T {} C0 {} Dh {}", d.Hkv, d.G, d.T, d.C0, d.Dh));
    const Graph fused = attention(d, false);
    const Graph unfused = attention(d, true);
    const std::vector<NamedTensor> in = random_inputs(fused, rng);
    const auto [a, seen_a] = run_observed(fused, in, KernelSet::kFast);
    const auto [b, seen_b] = run_observed(unfused, in, KernelSet::kFast);
    EXPECT_FALSE(contains(seen_a, "k_all.rep"));
    EXPECT_TRUE(contains(seen_b, "k_all.rep"));
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_EQ(a[i].shape, b[i].shape);
      ASSERT_EQ(a[i].f.size(), b[i].f.size());
      EXPECT_EQ(0, std::memcmp(a[i].f.data(), b[i].f.data(), a[i].f.size() * sizeof(float)))
          << "output " << i;
    }
  }
}

// A repeat whose expand is also read elsewhere is not fused (and still correct).
TEST(InterpreterRepeatKv, SharedExpandIsNotFused) {
  const Dims d{2, 2, 1, 3, 4};
  Graph g = attention(d, false);
  const ValueId e = *g.find_value("k_all.expand");
  ValueId extra = emit(g, OpKind::kNeg, {e}, {}, "neg");
  std::vector<ValueId> outs = g.outputs();
  outs.push_back(extra);
  g.set_outputs(outs);
  std::mt19937 rng(3);
  const auto in = random_inputs(g, rng);
  const auto [out, seen] = run_observed(g, in, KernelSet::kFast);
  EXPECT_TRUE(contains(seen, "k_all.rep"));
  EXPECT_FALSE(contains(seen, "v_all.rep"));  // the V chain is still fused
  const auto [ref, seen_ref] = run_observed(g, in, KernelSet::kReference);
  EXPECT_EQ(out[2].f, ref[2].f);
}

}  // namespace
}  // namespace hs::ir

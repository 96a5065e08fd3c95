// The reference interpreter on small hand-built graphs: hand-computed outputs, quantized
// graphs with fake quantization, input validation, the observer, gather range errors and
// a seeded transpose round-trip property.
#include "headsplit/ir/interpreter.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>

#include "testing/testing.h"

namespace hs::ir {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;

// Adds a constant whose bytes are `data` (row-major, `type.dtype` elements).
template <typename T>
ValueId add_const(Graph& g, std::string name, TensorType type, const std::vector<T>& data) {
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span<const T>(data)));
  auto id = g.add_constant(std::move(name), std::move(type), BufferView{buf, 0, buf->size()});
  HS_CHECK(id.ok(), "test constant");
  return *id;
}

// A single named input tensor.
std::vector<NamedTensor> one(std::string name, Tensor t) {
  std::vector<NamedTensor> v;
  v.push_back({std::move(name), std::move(t)});
  return v;
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

// x[2,3] -> y = linear(x, w, b) [2,2] -> z = neg(y); outputs (z, y).
Graph linear_graph() {
  Graph g("lin");
  ValueId x = input(g, "x", TensorType::f32({2, 3}));
  ValueId w = add_const(g, "w", TensorType::f32({2, 3}), Floats{1, 0, -1, 0.5f, 0.5f, 0.5f});
  ValueId b = add_const(g, "b", TensorType::f32({2}), Floats{1, 2});
  ValueId y = emit(g, OpKind::kLinear, {x, w, b}, {}, "y");
  ValueId z = emit(g, OpKind::kNeg, {y}, {}, "z");
  g.set_outputs({z, y});
  return g;
}

TEST(Interpreter, LinearAndNegHandComputed) {
  // y = {{1 - 3 + 1, 0.5*6 + 2}, {4 - 6 + 1, 0.5*15 + 2}} = {{-1, 5}, {-1, 9.5}}; z = -y.
  const Graph g = linear_graph();
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, in));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape, (Shape{2, 2}));
  EXPECT_EQ(out[0].f, (Floats{1, -5, 1, -9.5f}));
  EXPECT_EQ(out[1].f, (Floats{-1, 5, -1, 9.5f}));
}

TEST(Interpreter, MaskedScoresWithWhereAndSoftmax) {
  // s = {1, 5, 1}, mask = {1, 0, 1}: c = (mask == 0) = {0, 1, 0}; rowmin(s) = 1;
  // fill = 1 - 255 = -254; w = where(c, fill, s) = {1, -254, 1};
  // softmax: e = {1, exp(-255) = 0, 1} -> {0.5, 0, 0.5}.
  Graph g;
  ValueId s = input(g, "s", TensorType::f32({1, 3}));
  ValueId mask = input(g, "mask", TensorType::f32({1, 3}));
  ValueId zero = add_const(g, "zero", TensorType::f32({1}), Floats{0});
  ValueId k255 = add_const(g, "k255", TensorType::f32({1}), Floats{255});
  ValueId c = emit(g, OpKind::kEq, {mask, zero}, {}, "c");
  ValueId mn =
      emit(g, OpKind::kReduceMin, {s}, {{"axis", int64_t{-1}}, {"keepdim", int64_t{1}}}, "rowmin");
  ValueId fill = emit(g, OpKind::kSub, {mn, k255}, {}, "fill");
  ValueId w = emit(g, OpKind::kWhere, {c, fill, s}, {}, "masked");
  ValueId p = emit(g, OpKind::kSoftmax, {w}, {{"axis", int64_t{-1}}}, "probs");
  g.set_outputs({c, w, p});
  const std::vector<NamedTensor> in = {{"s", Tensor::from_f32({1, 3}, {1, 5, 1})},
                                       {"mask", Tensor::from_f32({1, 3}, {1, 0, 1})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, in));
  EXPECT_EQ(out[0].dtype, DType::kBool);
  EXPECT_EQ(out[0].i, (Ints{0, 1, 0}));
  EXPECT_EQ(out[1].f, (Floats{1, -254, 1}));
  EXPECT_EQ(out[2].f, (Floats{0.5f, 0, 0.5f}));
}

TEST(Interpreter, LayoutOpsOnFloatAndIntTensors) {
  // x[2,3] = {{0,1,2},{3,4,5}}; t = x^T [3,2] = {{0,3},{1,4},{2,5}};
  // sl = t[1:3] = {{1,4},{2,5}}; u = unsqueeze(sl, 0) [1,2,2]; cat = concat(u, u, axis 0)
  // [2,2,2]; flat = reshape(cat, [8]); e = expand(reshape(x, [2,1,3]), [2,2,3]).
  // pos i32[1,2] = {5,7}: pt = transpose(pos) [2,1] = {5,7}; sq = squeeze(pt, 1) = {5,7}.
  Graph g;
  ValueId x = input(g, "x", TensorType::f32({2, 3}));
  ValueId pos = input(g, "pos", TensorType::i32({1, 2}));
  ValueId t = emit(g, OpKind::kTranspose, {x}, {{"perm", std::vector<int64_t>{1, 0}}}, "t");
  ValueId sl = emit(g, OpKind::kSlice, {t},
                    {{"axis", int64_t{0}}, {"start", int64_t{1}}, {"end", int64_t{3}}}, "sl");
  ValueId u = emit(g, OpKind::kUnsqueeze, {sl}, {{"axis", int64_t{0}}}, "u");
  ValueId cat = emit(g, OpKind::kConcat, {u, u}, {{"axis", int64_t{0}}}, "cat");
  ValueId flat = emit(g, OpKind::kReshape, {cat}, {{"shape", std::vector<int64_t>{8}}}, "flat");
  ValueId x3 = emit(g, OpKind::kReshape, {x}, {{"shape", std::vector<int64_t>{2, 1, 3}}}, "x3");
  ValueId e = emit(g, OpKind::kExpand, {x3}, {{"shape", std::vector<int64_t>{2, 2, 3}}}, "e");
  ValueId pt = emit(g, OpKind::kTranspose, {pos}, {{"perm", std::vector<int64_t>{1, 0}}}, "pt");
  ValueId sq = emit(g, OpKind::kSqueeze, {pt}, {{"axis", int64_t{1}}}, "sq");
  g.set_outputs({flat, e, sq});
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({2, 3}, {0, 1, 2, 3, 4, 5})},
                                       {"pos", Tensor::from_i32({1, 2}, {5, 7})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, in));
  EXPECT_EQ(out[0].f, (Floats{1, 4, 2, 5, 1, 4, 2, 5}));
  EXPECT_EQ(out[1].shape, (Shape{2, 2, 3}));
  EXPECT_EQ(out[1].f, (Floats{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
  EXPECT_EQ(out[2].dtype, DType::kI32);
  EXPECT_EQ(out[2].shape, (Shape{2}));
  EXPECT_EQ(out[2].i, (Ints{5, 7}));
}

Graph embedding_graph() {
  // table[4,2] = {{0,1},{10,11},{20,21},{30,31}}; tokens i32[1,2] -> emb [1,2,2]
  Graph g;
  ValueId tokens = input(g, "tokens", TensorType::i32({1, 2}));
  ValueId table =
      add_const(g, "table", TensorType::f32({4, 2}), Floats{0, 1, 10, 11, 20, 21, 30, 31});
  g.set_outputs({emit(g, OpKind::kGather, {table, tokens}, {}, "emb")});
  return g;
}

TEST(Interpreter, GatherRows) {
  const Graph g = embedding_graph();
  const std::vector<NamedTensor> in = {{"tokens", Tensor::from_i32({1, 2}, {3, 1})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, in));
  EXPECT_EQ(out[0].shape, (Shape{1, 2, 2}));
  EXPECT_EQ(out[0].f, (Floats{30, 31, 10, 11}));
}

TEST(Interpreter, GatherOutOfRangeNamesNodeAndIndex) {
  const Graph g = embedding_graph();
  const std::vector<NamedTensor> in = {{"tokens", Tensor::from_i32({1, 2}, {1, 9})}};
  auto out = run_graph(g, in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.kind(), ErrorKind::kOutOfRange);
  const std::string& msg = out.error().message();
  EXPECT_NE(msg.find("node 'emb' (gather)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("index 9 at position 1"), std::string::npos) << msg;
}

// x f32[1,3,1,2] -> y = conv2d(x, w) with w i8[2,3,1,1] per-axis (axis 0, scales {0.5, 0.25},
// q = {{2,-4,1},{4,8,-1}}, real {{1,-2,0.5},{1,2,-0.25}}), y typed u8 per-tensor (scale 0.5,
// zero point 128) -> z = add(y, y) f32.
Graph quantized_graph() {
  Graph g("q");
  ValueId x = input(g, "x", TensorType::f32({1, 3, 1, 2}));
  TensorType wt{
      DType::kI8, {2, 3, 1, 1}, QuantParams::per_axis(0, {0.5f, 0.25f}, {0, 0}, 8, -127, 127)};
  ValueId w = add_const(g, "w", wt, std::vector<int8_t>{2, -4, 1, 4, 8, -1});
  ValueId y = emit(g, OpKind::kConv2d, {x, w}, {}, "y");
  g.value(y).type.dtype = DType::kU8;
  g.value(y).type.quant = QuantParams::per_tensor(0.5f, 128, 8, 0, 255);
  ValueId z = emit(g, OpKind::kAdd, {y, y}, {}, "z");
  g.set_outputs({z});
  return g;
}

// x channels: {1,2}, {1,0}, {1,-2}.
//   y[0] = {1 - 2 + 0.5, 2 + 0 - 1} = {-0.5, 1};  y[1] = {1 + 2 - 0.25, 2 + 0 + 0.5} = {2.75, 2.5}
// Fake-quantized with scale 0.5: y/0.5 = {-1, 2, 5.5 -> 6, 5} -> {-0.5, 1, 3, 2.5}; z = 2y.
const std::vector<NamedTensor> kQuantInputs = {
    {"x", Tensor::from_f32({1, 3, 1, 2}, {1, 2, 1, 0, 1, -2})}};

TEST(Interpreter, QuantizedGraphFakeQuantizesIntermediates) {
  const Graph g = quantized_graph();
  HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g));
  Floats seen_y;
  auto observer = [&](ValueId v, const Tensor& t) {
    if (g.value(v).name == "y") seen_y = t.f;
  };
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, interp.run(kQuantInputs, observer));
  EXPECT_EQ(seen_y, (Floats{-0.5f, 1, 3, 2.5f}));
  EXPECT_EQ(out[0].f, (Floats{-1, 2, 6, 5}));
}

TEST(Interpreter, FakeQuantOffRunsTheGraphAsFloat) {
  // Constants are still dequantized from their integer storage; y keeps 2.75.
  const Graph g = quantized_graph();
  InterpreterOptions options;
  options.fake_quant = false;
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, kQuantInputs, options));
  EXPECT_EQ(out[0].f, (Floats{-1, 2, 5.5f, 5}));
}

TEST(Interpreter, QuantizedInputsAndQuantizeDequantizeOps) {
  // a u16 per-tensor (scale 0.25, zp 0): given {0.3, 1.125, -1} -> fake-quantized on entry
  // {0.25, 1 (4.5 -> 4), 0 (clamped)}; na = neg(a) = {-0.25, -1, -0}.
  // b f32 -> qb = quantize(b) typed u8 (scale 0.5, zp 10) -> db = dequantize(qb):
  // {1.25 -> 2.5 -> 2 -> 1, -6 -> -12 + 10 -> 0 (clamped) -> -5, 0.75 -> 1.5 -> 2 -> 1}.
  Graph g;
  TensorType at{DType::kU16, {1, 3}, QuantParams::per_tensor(0.25f, 0, 16, 0, 65535)};
  ValueId a = input(g, "a", at);
  ValueId b = input(g, "b", TensorType::f32({3}));
  ValueId na = emit(g, OpKind::kNeg, {a}, {}, "na");
  ValueId qb = emit(g, OpKind::kQuantize, {b}, {}, "qb");
  g.value(qb).type.dtype = DType::kU8;
  g.value(qb).type.quant = QuantParams::per_tensor(0.5f, 10, 8, 0, 255);
  ValueId db = emit(g, OpKind::kDequantize, {qb}, {}, "db");
  g.set_outputs({na, db});
  const std::vector<NamedTensor> in = {{"a", Tensor::from_f32({1, 3}, {0.3f, 1.125f, -1})},
                                       {"b", Tensor::from_f32({3}, {1.25f, -6, 0.75f})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, run_graph(g, in));
  EXPECT_EQ(out[0].f, (Floats{-0.25f, -1, -0.f}));
  EXPECT_EQ(out[1].f, (Floats{1, -5, 1}));
}

TEST(Interpreter, ObserverSeesEveryNodeOutputInOrder) {
  const Graph g = linear_graph();
  HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g));
  std::vector<std::string> names;
  std::vector<Floats> values;
  auto observer = [&](ValueId v, const Tensor& t) {
    names.push_back(g.value(v).name);
    values.push_back(t.f);
  };
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6})}};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, interp.run(in, observer));
  EXPECT_EQ(names, (std::vector<std::string>{"y", "z"}));
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0], out[1].f);
  EXPECT_EQ(values[1], out[0].f);
  // A second run on the same interpreter gives the same outputs (nothing leaks between runs).
  HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> again, interp.run(in));
  EXPECT_EQ(again[0].f, out[0].f);
  EXPECT_EQ(again[1].f, out[1].f);
}

TEST(Interpreter, ErasedNodesAreSkipped) {
  Graph g = linear_graph();
  ValueId y = *g.find_value("y");
  ValueId dead = emit(g, OpKind::kSilu, {y}, {}, "dead");
  g.erase_node(g.value(dead).producer);
  HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g));
  int calls = 0;
  const std::vector<NamedTensor> in = {{"x", Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6})}};
  HS_ASSERT_OK(interp.run(in, [&](ValueId, const Tensor&) { ++calls; }));
  EXPECT_EQ(calls, 2);
}

struct BadInput {
  std::string what;
  std::vector<NamedTensor> inputs;
  ErrorKind kind;
  std::vector<std::string> message_parts;
};

TEST(Interpreter, RejectsBadInputs) {
  const Graph g = linear_graph();
  const Tensor ok = Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::vector<BadInput> cases = {
      {"missing", {}, ErrorKind::kInvalidArgument, {"missing input 'x'", "f32[2,3]"}},
      {"wrong shape",
       {{"x", Tensor::from_f32({3, 2}, {1, 2, 3, 4, 5, 6})}},
       ErrorKind::kShape,
       {"input 'x'", "[3,2]", "[2,3]"}},
      {"unknown name", {{"x", ok}, {"y0", ok}}, ErrorKind::kNotFound, {"unknown input 'y0'", "x"}},
      {"a value that is not an input",
       {{"x", ok}, {"w", ok}},
       ErrorKind::kNotFound,
       {"unknown input 'w'"}},
      {"given twice", {{"x", ok}, {"x", ok}}, ErrorKind::kInvalidArgument, {"'x' is given twice"}},
      {"wrong kind",
       {{"x", Tensor::from_i32({2, 3}, {1, 2, 3, 4, 5, 6})}},
       ErrorKind::kShape,
       {"input 'x'", "i32", "f32[2,3]"}},
      {"short data",
       {{"x", Tensor::from_f32({2, 3}, {1, 2, 3})}},
       ErrorKind::kInvalidArgument,
       {"input 'x'", "holds 3 elements", "expected 6"}},
  };
  HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g));
  for (const BadInput& c : cases) {
    auto out = interp.run(c.inputs);
    ASSERT_FALSE(out.ok()) << c.what;
    EXPECT_EQ(out.kind(), c.kind) << c.what << ": " << out.error().message();
    for (const std::string& part : c.message_parts) {
      EXPECT_NE(out.error().message().find(part), std::string::npos)
          << c.what << ": '" << part << "' not in: " << out.error().message();
    }
  }
}

TEST(Interpreter, RunIntoReadsViewsAndRejectsBadOnes) {
  const Graph g = linear_graph();
  HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g));
  const Shape shape{2, 3};
  const Floats x{1, 2, 3, 4, 5, 6};
  std::vector<Tensor> out;
  // A view shorter than its shape, then a view of the wrong shape: errors naming the input.
  const InputView short_view{"x", DType::kF32, &shape, std::span<const float>(x).first(5), {}};
  const Status s = interp.run_into({&short_view, 1}, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(s.error().message().find("input 'x' of shape [2,3] holds 5 elements, expected 6"),
            std::string::npos)
      << s.error().message();
  const Shape wrong{3, 2};
  const InputView wrong_view{"x", DType::kF32, &wrong, x, {}};
  const Status w = interp.run_into({&wrong_view, 1}, out);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.kind(), ErrorKind::kShape);
  // A good view after the errors; out's stale tensors (here: a wrong count and shape) are
  // replaced. y = {{-1, 5}, {-1, 9.5}} as in LinearAndNegHandComputed.
  out.assign(3, Tensor::from_f32({7}, Floats(7, 42.f)));
  const InputView view{"x", DType::kF32, &shape, x, {}};
  HS_ASSERT_OK(interp.run_into({&view, 1}, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape, (Shape{2, 2}));
  EXPECT_EQ(out[0].f, (Floats{1, -5, 1, -9.5f}));
  EXPECT_EQ(out[1].f, (Floats{-1, 5, -1, 9.5f}));
}

TEST(Interpreter, MatmulOverAnEmptyInnerDimensionIsZeroOnReusedStorage) {
  // y = neg(x) and z = neg(y) free y's storage [2,3] before m = a[2,0] b[0,3] is allocated:
  // m takes it over (holding -x) and must still come out as zeros, with both kernel sets.
  Graph g;
  ValueId x = input(g, "x", TensorType::f32({2, 3}));
  ValueId a = input(g, "a", TensorType::f32({2, 0}));
  ValueId b = input(g, "b", TensorType::f32({0, 3}));
  ValueId y = emit(g, OpKind::kNeg, {x}, {}, "y");
  ValueId z = emit(g, OpKind::kNeg, {y}, {}, "z");
  ValueId m = emit(g, OpKind::kMatMul, {a, b}, {}, "m");
  g.set_outputs({z, m});
  std::vector<NamedTensor> in;
  in.push_back({"x", Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6})});
  in.push_back({"a", Tensor::from_f32({2, 0}, {})});
  in.push_back({"b", Tensor::from_f32({0, 3}, {})});
  for (KernelSet kernels : {KernelSet::kReference, KernelSet::kFast}) {
    HS_ASSERT_OK_AND_ASSIGN(Interpreter interp, Interpreter::create(g, {.kernels = kernels}));
    for (int run = 0; run < 2; ++run) {
      HS_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out, interp.run(in));
      ASSERT_EQ(out.size(), 2u);
      EXPECT_EQ(out[0].f, (Floats{1, 2, 3, 4, 5, 6}));
      EXPECT_EQ(out[1].f, Floats(6, 0.f)) << "run " << run;
    }
  }
}

TEST(Interpreter, BoolInputsMustBeZeroOrOne) {
  Graph g;
  ValueId c = input(g, "c", TensorType::boolean({2}));
  ValueId k1 = add_const(g, "one", TensorType::f32({1}), Floats{1});
  ValueId zero = add_const(g, "zero", TensorType::f32({1}), Floats{0});
  g.set_outputs({emit(g, OpKind::kWhere, {c, k1, zero}, {}, "y")});
  HS_ASSERT_OK_AND_ASSIGN(auto out, run_graph(g, one("c", Tensor::from_i32({2}, {0, 1}))));
  EXPECT_EQ(out[0].f, (Floats{0, 1}));
  auto bad = run_graph(g, one("c", Tensor::from_i32({2}, {0, 2})));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("bool input 'c' holds 2"), std::string::npos)
      << bad.error().message();
}

TEST(Interpreter, CreateRejectsANodeWhoseDeclaredTypeIsWrong) {
  Graph g;
  ValueId x = input(g, "x", TensorType::f32({2, 3}));
  HS_ASSERT_OK(g.add_node(OpKind::kNeg, {x}, {}, {{"n", TensorType::f32({3, 2})}}));
  g.set_outputs({*g.find_value("n")});
  auto interp = Interpreter::create(g);
  ASSERT_FALSE(interp.ok());
  EXPECT_EQ(interp.kind(), ErrorKind::kShape);
  EXPECT_NE(interp.error().message().find("node 'n' (neg)"), std::string::npos)
      << interp.error().message();
}

TEST(Interpreter, CreateRejectsBadQuantParams) {
  Graph g;
  TensorType wt{DType::kI8, {2, 3}, QuantParams::per_axis(0, {0.5f}, {0}, 8, -127, 127)};
  ValueId w = add_const(g, "w", wt, std::vector<int8_t>{1, 2, 3, 4, 5, 6});
  g.set_outputs({emit(g, OpKind::kNeg, {w}, {}, "n")});
  auto interp = Interpreter::create(g);
  ASSERT_FALSE(interp.ok());
  EXPECT_EQ(interp.kind(), ErrorKind::kShape);
  EXPECT_NE(interp.error().message().find("'w'"), std::string::npos) << interp.error().message();
}

TEST(ReadConstant, DequantizesPerBlockI4AndReadsBools) {
  // w i4[2,3], per-block along axis 1 with block 2 (2 blocks per row, the last partial):
  // scales {{1, 0.5}, {2, 0.25}}; q = {{1,-2 | 7}, {-8,3 | -1}} -> {{1,-2,3.5},{-16,6,-0.25}}.
  Graph g;
  TensorType wt{DType::kI4, {2, 3}, QuantParams::per_block(0, 1, 2, {1, 0.5f, 2, 0.25f}, 4, -8, 7)};
  ValueId w = add_const(g, "w", wt, std::vector<int8_t>{1, -2, 7, -8, 3, -1});
  ValueId b = add_const(g, "b", TensorType::boolean({3}), std::vector<uint8_t>{0, 1, 5});
  HS_ASSERT_OK_AND_ASSIGN(Tensor wf, read_constant(g, w));
  EXPECT_EQ(wf.dtype, DType::kF32);
  EXPECT_EQ(wf.f, (Floats{1, -2, 3.5f, -16, 6, -0.25f}));
  HS_ASSERT_OK_AND_ASSIGN(Tensor bt, read_constant(g, b));
  EXPECT_EQ(bt.dtype, DType::kBool);
  EXPECT_EQ(bt.i, (Ints{0, 1, 1}));
  ValueId x = input(g, "x", TensorType::f32({1}));
  auto not_const = read_constant(g, x);
  ASSERT_FALSE(not_const.ok());
  EXPECT_EQ(not_const.kind(), ErrorKind::kInvalidArgument);
}

TEST(Interpreter, TransposeRoundTripProperty) {
  // Seeded: a random rank-2..5 shape and permutation, transposed and transposed back by the
  // inverse permutation, gives the input back exactly.
  for (uint32_t seed = 1; seed <= 25; ++seed) {
    std::mt19937 rng(seed);
    const int rank = 2 + static_cast<int>(seed % 4);
    Shape shape;
    for (int a = 0; a < rank; ++a) shape.push_back(1 + static_cast<int64_t>(rng() % 4));
    std::vector<int64_t> perm(static_cast<size_t>(rank)), inv(static_cast<size_t>(rank));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int a = 0; a < rank; ++a) inv[static_cast<size_t>(perm[static_cast<size_t>(a)])] = a;
    Graph g;
    ValueId x = input(g, "x", TensorType::f32(shape));
    ValueId t = emit(g, OpKind::kTranspose, {x}, {{"perm", perm}}, "t");
    g.set_outputs({emit(g, OpKind::kTranspose, {t}, {{"perm", inv}}, "back")});
    Floats data(static_cast<size_t>(num_elements(shape)));
    std::iota(data.begin(), data.end(), 0.f);
    HS_ASSERT_OK_AND_ASSIGN(auto out, run_graph(g, one("x", Tensor::from_f32(shape, data))));
    EXPECT_EQ(out[0].f, data) << "seed " << seed;
  }
}

}  // namespace
}  // namespace hs::ir

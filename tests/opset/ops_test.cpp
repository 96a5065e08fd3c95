// Tests of opset/ops.h: the op registry, attributes, broadcast_shapes and infer_type for every op
// (a hand-computed shape and at least one rejection each).
#include "headsplit/opset/ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "testing/testing.h"

namespace hs::opset {
namespace {

using ::testing::HasSubstr;

Result<TensorType> infer(OpKind op, const std::vector<TensorType>& in, const Attrs& attrs = {}) {
  std::vector<const TensorType*> ptrs;
  for (const TensorType& t : in) ptrs.push_back(&t);
  return infer_type(op, ptrs, attrs);
}

// Expects `r` to be a kShape error whose message contains `detail`.
void expect_shape_error(const Result<TensorType>& r, const std::string& detail) {
  ASSERT_FALSE(r.ok()) << "inferred " << type_str(*r);
  EXPECT_EQ(r.kind(), ErrorKind::kShape);
  EXPECT_THAT(r.error().message(), HasSubstr(detail));
}

TensorType f32(Shape s) { return TensorType::f32(std::move(s)); }
TensorType i32(Shape s) { return TensorType::i32(std::move(s)); }
TensorType u16q(Shape s) {
  return {DType::kU16, std::move(s), QuantParams::per_tensor(0.5f, 0, 16, 0, 65535)};
}

TEST(OpRegistry, NamesRoundTripAndAreUnique) {
  std::set<std::string_view> names;
  ASSERT_EQ(all_ops().size(), static_cast<size_t>(kNumOpKinds));
  for (const OpInfo& info : all_ops()) {
    EXPECT_EQ(op_info(info.op).name, info.name);
    HS_ASSERT_OK_AND_ASSIGN(OpKind parsed, parse_op_name(info.name));
    EXPECT_EQ(parsed, info.op);
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
  }
  EXPECT_EQ(op_name(OpKind::kReduceMin), "reduce_min");
  auto bad = parse_op_name("conv3d");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kParse);
  EXPECT_THAT(bad.error().message(), HasSubstr("'conv3d'"));
  EXPECT_TRUE(op_info(OpKind::kTranspose).is_layout);
  EXPECT_FALSE(op_info(OpKind::kSoftmax).is_layout);
  EXPECT_TRUE(op_info(OpKind::kAdd).is_broadcast);
}

TEST(Attrs, InsertionOrderOverwriteAndGetters) {
  Attrs a{{"axis", int64_t{1}}, {"eps", 1e-5}};
  a.set("perm", std::vector<int64_t>{0, 2, 1}).set("note", std::string("x"));
  a.set("axis", int64_t{-1});  // overwrite keeps the position
  ASSERT_EQ(a.entries().size(), 4u);
  EXPECT_EQ(a.entries()[0].first, "axis");
  EXPECT_EQ(a.entries()[3].first, "note");
  EXPECT_EQ(a.get_int("axis"), -1);
  EXPECT_EQ(a.get_float("eps"), 1e-5);
  EXPECT_EQ(a.get_ints("perm"), (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(a.get_string("note"), "x");
  EXPECT_TRUE(a.has("eps"));
  EXPECT_FALSE(a.has("shape"));
  EXPECT_EQ(a.find("shape"), nullptr);
}

TEST(BroadcastShapes, Cases) {
  EXPECT_EQ(*broadcast_shapes({1, 4, 1}, {3, 1, 5}), (Shape{3, 4, 5}));
  EXPECT_EQ(*broadcast_shapes({2, 3}, {3}), (Shape{2, 3}));
  EXPECT_EQ(*broadcast_shapes({}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(*broadcast_shapes({1}, {}), (Shape{1}));
  EXPECT_EQ(*broadcast_shapes({1, 8, 1, 16}, {4, 1}), (Shape{1, 8, 4, 16}));
  EXPECT_EQ(*broadcast_shapes({0, 1}, {1, 3}), (Shape{0, 3}));
  auto bad = broadcast_shapes({2, 3}, {4, 3});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kShape);
  EXPECT_EQ(bad.error().message(), "shapes [2,3] and [4,3] do not broadcast (axis 0: 2 vs 4)");
}

TEST(InferType, ArityAndAttributes) {
  expect_shape_error(infer(OpKind::kMatMul, {f32({2, 2})}), "matmul: 1 operands");
  expect_shape_error(infer(OpKind::kSoftmax, {f32({2})}), "softmax: missing int attribute 'axis'");
  expect_shape_error(infer(OpKind::kSoftmax, {f32({2})}, {{"axis", 1.0}}),
                     "softmax: attribute 'axis' has kind float, expected int");
  expect_shape_error(infer(OpKind::kRmsNorm, {f32({2}), f32({2})}, {{"eps", int64_t{1}}}), "'eps'");
}

TEST(InferType, Conv2d) {
  HS_ASSERT_OK_AND_ASSIGN(
      auto t, infer(OpKind::kConv2d, {f32({1, 64, 3, 1}), f32({32, 64, 1, 1}), f32({32})}));
  EXPECT_EQ(t, f32({1, 32, 3, 1}));
  // A quantized weight is real: the result is f32.
  TensorType wq{DType::kI8, {8, 4, 1, 1}, QuantParams::per_tensor(1, 0, 8, -127, 127)};
  EXPECT_EQ(*infer(OpKind::kConv2d, {f32({1, 4, 1, 1}), wq}), f32({1, 8, 1, 1}));
  expect_shape_error(infer(OpKind::kConv2d, {f32({1, 64, 3, 3}), f32({32, 64, 3, 3})}),
                     "not a 1x1 conv");
  expect_shape_error(infer(OpKind::kConv2d, {f32({1, 64, 1, 1}), f32({32, 48, 1, 1})}),
                     "not a 1x1 conv");
  expect_shape_error(infer(OpKind::kConv2d, {f32({1, 64, 1, 1}), f32({32, 64, 1, 1}), f32({16})}),
                     "bias [16] does not match 32 output channels");
  expect_shape_error(infer(OpKind::kConv2d, {i32({1, 4, 1, 1}), f32({8, 4, 1, 1})}),
                     "expected a real");
}

TEST(InferType, Linear) {
  EXPECT_EQ(*infer(OpKind::kLinear, {f32({1, 3, 64}), f32({16, 64})}), f32({1, 3, 16}));
  EXPECT_EQ(*infer(OpKind::kLinear, {f32({64}), f32({16, 64}), f32({16})}), f32({16}));
  expect_shape_error(infer(OpKind::kLinear, {f32({1, 3, 64}), f32({16, 32})}), "do not fit");
  expect_shape_error(infer(OpKind::kLinear, {f32({1, 64}), f32({16, 64}), f32({15})}),
                     "linear: bias [15] does not match 16 output channels");
  expect_shape_error(infer(OpKind::kLinear, {f32({1, 64}), f32({16, 64}), i32({16})}),
                     "linear: operand 2 has type i32[16], expected a real");
}

TEST(InferType, MatMul) {
  EXPECT_EQ(*infer(OpKind::kMatMul, {f32({1, 8, 3, 16}), f32({1, 8, 16, 5})}), f32({1, 8, 3, 5}));
  // Batch dimensions broadcast: [4,1] x [2] -> [4,2].
  EXPECT_EQ(*infer(OpKind::kMatMul, {f32({4, 1, 3, 16}), f32({2, 16, 5})}), f32({4, 2, 3, 5}));
  expect_shape_error(infer(OpKind::kMatMul, {f32({3, 16}), f32({15, 5})}),
                     "matmul: [3,16] x [15,5]: inner dimensions differ");
  expect_shape_error(infer(OpKind::kMatMul, {f32({16}), f32({16, 5})}), "inner dimensions");
  expect_shape_error(infer(OpKind::kMatMul, {f32({2, 3, 4}), f32({3, 4, 5})}), "do not broadcast");
}

TEST(InferType, BinaryElementwise) {
  for (OpKind op : {OpKind::kAdd, OpKind::kSub, OpKind::kMul, OpKind::kDiv}) {
    EXPECT_EQ(*infer(op, {f32({1, 4, 1}), f32({3, 1, 5})}), f32({3, 4, 5})) << op_name(op);
    EXPECT_EQ(*infer(op, {u16q({2, 3}), f32({})}), f32({2, 3})) << op_name(op);
    expect_shape_error(infer(op, {f32({2, 3}), f32({4, 3})}),
                       fmt::format("{}: shapes [2,3] and [4,3] do not broadcast", op_name(op)));
    expect_shape_error(infer(op, {f32({2}), i32({2})}), "operand 1 has type i32[2]");
  }
}

TEST(InferType, Eq) {
  EXPECT_EQ(*infer(OpKind::kEq, {f32({1, 2, 4}), f32({1})}), TensorType::boolean({1, 2, 4}));
  expect_shape_error(infer(OpKind::kEq, {f32({2}), f32({3})}), "eq: shapes [2] and [3]");
}

TEST(InferType, UnaryElementwise) {
  for (OpKind op : {OpKind::kNeg, OpKind::kSilu, OpKind::kTanh}) {
    EXPECT_EQ(*infer(op, {u16q({2, 5})}), f32({2, 5})) << op_name(op);
    expect_shape_error(infer(op, {TensorType::boolean({2})}), "expected a real");
  }
}

TEST(InferType, Where) {
  EXPECT_EQ(
      *infer(OpKind::kWhere, {TensorType::boolean({1, 2, 4}), f32({1, 2, 4}), f32({1, 2, 1})}),
      f32({1, 2, 4}));
  expect_shape_error(infer(OpKind::kWhere, {f32({2}), f32({2}), f32({2})}),
                     "where: condition has type f32[2], expected bool");
  expect_shape_error(infer(OpKind::kWhere, {TensorType::boolean({2}), f32({3}), f32({2})}),
                     "where: shapes [2] and [3]");
}

TEST(InferType, ReduceMin) {
  Attrs keep{{"axis", int64_t{-1}}, {"keepdim", int64_t{1}}};
  Attrs drop{{"axis", int64_t{1}}, {"keepdim", int64_t{0}}};
  EXPECT_EQ(*infer(OpKind::kReduceMin, {f32({1, 3, 8})}, keep), f32({1, 3, 1}));
  EXPECT_EQ(*infer(OpKind::kReduceMin, {f32({1, 3, 8})}, drop), f32({1, 8}));
  Attrs bad{{"axis", int64_t{3}}, {"keepdim", int64_t{1}}};
  expect_shape_error(infer(OpKind::kReduceMin, {f32({1, 3, 8})}, bad),
                     "reduce_min: axis 3 out of range for rank 3");
}

TEST(InferType, Softmax) {
  EXPECT_EQ(*infer(OpKind::kSoftmax, {f32({1, 8, 3, 16})}, {{"axis", int64_t{-1}}}),
            f32({1, 8, 3, 16}));
  expect_shape_error(infer(OpKind::kSoftmax, {f32({2, 3})}, {{"axis", int64_t{-3}}}),
                     "softmax: axis -3 out of range for rank 2");
}

TEST(InferType, RmsNorm) {
  Attrs eps{{"eps", 1e-5}};
  EXPECT_EQ(*infer(OpKind::kRmsNorm, {f32({1, 3, 64}), f32({64})}, eps), f32({1, 3, 64}));
  expect_shape_error(infer(OpKind::kRmsNorm, {f32({1, 3, 64}), f32({32})}, eps),
                     "rms_norm: weight [32] does not match last axis of [1,3,64]");
}

TEST(InferType, Gelu) {
  for (const char* approx : {"none", "tanh"}) {
    EXPECT_EQ(*infer(OpKind::kGelu, {u16q({2, 5})}, {{"approximate", std::string(approx)}}),
              f32({2, 5}));
  }
  expect_shape_error(infer(OpKind::kGelu, {f32({2})}, {{"approximate", std::string("erf")}}),
                     "gelu: approximate is 'erf', expected 'none' or 'tanh'");
  expect_shape_error(infer(OpKind::kGelu, {f32({2})}), "missing string attribute 'approximate'");
  expect_shape_error(infer(OpKind::kGelu, {TensorType::boolean({2})},
                           {{"approximate", std::string("none")}}),
                     "expected a real");
}

TEST(InferType, LayerNorm) {
  Attrs eps{{"eps", 1e-5}};
  EXPECT_EQ(*infer(OpKind::kLayerNorm, {f32({1, 3, 64}), f32({64})}, eps), f32({1, 3, 64}));
  EXPECT_EQ(*infer(OpKind::kLayerNorm, {f32({1, 3, 64}), f32({64}), f32({64})}, eps),
            f32({1, 3, 64}));
  expect_shape_error(infer(OpKind::kLayerNorm, {f32({1, 3, 64}), f32({64}), f32({63})}, eps),
                     "layer_norm: bias [63] does not match last axis of [1,3,64]");
  expect_shape_error(infer(OpKind::kLayerNorm, {f32({1, 3, 64}), f32({32})}, eps),
                     "layer_norm: weight [32] does not match last axis of [1,3,64]");
}

TEST(InferType, Gather) {
  // Embedding: table [V,D], tokens [1,T] -> [1,T,D].
  EXPECT_EQ(*infer(OpKind::kGather, {f32({32, 64}), i32({1, 3})}), f32({1, 3, 64}));
  // Rope table rows by position: [C, Dh] x [T] -> [T, Dh]; an i32 table stays i32.
  EXPECT_EQ(*infer(OpKind::kGather, {i32({16, 8}), i32({3})}), i32({3, 8}));
  expect_shape_error(infer(OpKind::kGather, {f32({32, 64}), f32({1, 3})}),
                     "gather: indices have type f32[1,3], expected i32");
}

TEST(InferType, Reshape) {
  Attrs a{{"shape", std::vector<int64_t>{1, 3, 8, 8}}};
  EXPECT_EQ(*infer(OpKind::kReshape, {f32({1, 3, 64})}, a), f32({1, 3, 8, 8}));
  EXPECT_EQ(*infer(OpKind::kReshape, {i32({1, 4})}, {{"shape", std::vector<int64_t>{4}}}),
            i32({4}));
  expect_shape_error(
      infer(OpKind::kReshape, {f32({1, 3, 64})}, {{"shape", std::vector<int64_t>{3, 60}}}),
      "reshape: [1,3,64] has 192 elements, target [3,60] has 180");
  expect_shape_error(infer(OpKind::kReshape, {f32({4})}, {{"shape", std::vector<int64_t>{-2, -2}}}),
                     "reshape: target shape [-2,-2] has a negative dimension");
  // An element count that overflows int64 is refused before it is multiplied out.
  expect_shape_error(infer(OpKind::kReshape, {f32({4})},
                           {{"shape", std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40}}}),
                     "too many elements");
}

TEST(InferType, Transpose) {
  Attrs a{{"perm", std::vector<int64_t>{0, 2, 1, 3}}};
  EXPECT_EQ(*infer(OpKind::kTranspose, {f32({1, 3, 8, 16})}, a), f32({1, 8, 3, 16}));
  expect_shape_error(
      infer(OpKind::kTranspose, {f32({1, 3, 8, 16})}, {{"perm", std::vector<int64_t>{0, 2, 2, 3}}}),
      "transpose: [0,2,2,3] is not a permutation");
  expect_shape_error(
      infer(OpKind::kTranspose, {f32({1, 3, 8, 16})}, {{"perm", std::vector<int64_t>{0, 1, 2}}}),
      "perm [0,1,2] has 3 entries for rank 4");
}

TEST(InferType, Slice) {
  Attrs a{{"axis", int64_t{1}}, {"start", int64_t{16}}, {"end", int64_t{32}}};
  EXPECT_EQ(*infer(OpKind::kSlice, {f32({1, 64, 1, 3})}, a), f32({1, 16, 1, 3}));
  Attrs out{{"axis", int64_t{1}}, {"start", int64_t{48}}, {"end", int64_t{65}}};
  expect_shape_error(infer(OpKind::kSlice, {f32({1, 64})}, out),
                     "slice: [48, 65) is empty or outside axis 1 of size 64");
  Attrs empty{{"axis", int64_t{0}}, {"start", int64_t{2}}, {"end", int64_t{2}}};
  expect_shape_error(infer(OpKind::kSlice, {f32({4})}, empty), "is empty");
}

TEST(InferType, Concat) {
  Attrs a{{"axis", int64_t{-1}}};
  EXPECT_EQ(*infer(OpKind::kConcat, {f32({1, 2, 8, 5}), f32({1, 2, 8, 3}), u16q({1, 2, 8, 1})}, a),
            f32({1, 2, 8, 9}));
  expect_shape_error(infer(OpKind::kConcat, {f32({1, 2, 8}), f32({1, 2, 8, 3})}, a),
                     "concat: operand 1 f32[1,2,8,3] does not fit f32[1,2,8] on axis 2");
  expect_shape_error(infer(OpKind::kConcat, {f32({1, 2, 8}), f32({1, 3, 8})}, a), "does not fit");
  // Non-real operands must have the same dtype.
  EXPECT_EQ(*infer(OpKind::kConcat, {i32({2}), i32({3})}, {{"axis", int64_t{0}}}), i32({5}));
  expect_shape_error(
      infer(OpKind::kConcat, {i32({2}), TensorType::boolean({3})}, {{"axis", int64_t{0}}}),
      "concat: operand 1 bool[3] does not fit i32[2]");
  expect_shape_error(infer(OpKind::kConcat, {f32({2}), i32({3})}, {{"axis", int64_t{0}}}),
                     "does not fit");
}

TEST(InferType, UnsqueezeSqueeze) {
  EXPECT_EQ(*infer(OpKind::kUnsqueeze, {f32({3, 64})}, {{"axis", int64_t{1}}}), f32({3, 1, 64}));
  EXPECT_EQ(*infer(OpKind::kUnsqueeze, {f32({3, 64})}, {{"axis", int64_t{-1}}}), f32({3, 64, 1}));
  expect_shape_error(infer(OpKind::kUnsqueeze, {f32({3, 64})}, {{"axis", int64_t{3}}}),
                     "unsqueeze: axis 3 out of range for rank 3");
  EXPECT_EQ(*infer(OpKind::kSqueeze, {f32({3, 1, 64})}, {{"axis", int64_t{1}}}), f32({3, 64}));
  expect_shape_error(infer(OpKind::kSqueeze, {f32({3, 2, 64})}, {{"axis", int64_t{1}}}),
                     "squeeze: axis 1 of [3,2,64] has size 2, expected 1");
}

TEST(InferType, Expand) {
  Attrs a{{"shape", std::vector<int64_t>{1, 8, 4, 16}}};
  EXPECT_EQ(*infer(OpKind::kExpand, {f32({1, 1, 4, 16})}, a), f32({1, 8, 4, 16}));
  expect_shape_error(infer(OpKind::kExpand, {f32({1, 2, 4, 16})}, a),
                     "expand: [1,2,4,16] cannot be expanded to [1,8,4,16]");
  expect_shape_error(infer(OpKind::kExpand, {f32({4, 16})}, a), "cannot be expanded");
  expect_shape_error(
      infer(OpKind::kExpand, {f32({1, 16})}, {{"shape", std::vector<int64_t>{-3, 16}}}),
      "expand: target shape [-3,16] has a negative dimension");
}

TEST(InferType, QuantizeDequantize) {
  EXPECT_EQ(*infer(OpKind::kQuantize, {f32({1, 3})}), f32({1, 3}));
  expect_shape_error(infer(OpKind::kQuantize, {u16q({1, 3})}), "quantize: input has type u16[1,3]");
  EXPECT_EQ(*infer(OpKind::kDequantize, {u16q({1, 3})}), f32({1, 3}));
  expect_shape_error(infer(OpKind::kDequantize, {f32({1, 3})}),
                     "dequantize: input has type f32[1,3], expected a quantized type");
}

}  // namespace
}  // namespace hs::opset

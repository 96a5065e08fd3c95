// Tests of ir/verifier.h: a valid graph passes, and each class of violation is reported with
// the right kind and a message naming the value or node.
#include "headsplit/ir/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/testing.h"

namespace hs::ir {
namespace {

using ::testing::HasSubstr;

BufferView zeros(size_t bytes) {
  std::vector<std::byte> v(bytes, std::byte{0});
  auto buf = HeapBuffer::copy_of(v);
  return BufferView{buf, 0, bytes};
}

// x: f32[1,4] -> y = linear(x, w: f32[3,4]) -> s = softmax(y) {axis = -1}; output s.
struct Small {
  Graph g{"small"};
  ValueId x = kNoValue, w = kNoValue, y = kNoValue, s = kNoValue;
  Small() {
    x = *g.add_input("x", TensorType::f32({1, 4}));
    w = *g.add_constant("w", TensorType::f32({3, 4}), zeros(48));
    y = *g.emit(OpKind::kLinear, {x, w}, {}, "y");
    s = *g.emit(OpKind::kSoftmax, {y}, {{"axis", int64_t{-1}}}, "s");
    g.set_outputs({s});
  }
};

void expect_error(const Status& st, ErrorKind kind, const std::string& message) {
  ASSERT_FALSE(st.ok()) << "expected: " << message;
  EXPECT_EQ(st.kind(), kind) << st.error().message();
  EXPECT_THAT(st.error().message(), HasSubstr(message));
}

TensorType u8q(Shape shape) {
  return {DType::kU8, std::move(shape), QuantParams::per_tensor(0.5f, 128, 8, 0, 255)};
}

TEST(Verify, ValidGraphsPass) {
  Small t;
  HS_EXPECT_OK(verify(t.g));
  HS_EXPECT_OK(verify_node(t.g, 0));
  HS_EXPECT_OK(verify_node(t.g, 1));
  EXPECT_EQ(describe_node(t.g, 0), "node 'y' (linear)");

  // A quantized pipeline: per-axis weight, quantize/dequantize, quantized results where
  // inference says f32, an i32 layout op, and an erased (dead, unused) node.
  Graph g("q");
  ValueId x = *g.add_input("x", TensorType::f32({1, 4}));
  ValueId pos = *g.add_input("pos", TensorType::i32({1, 2}));
  TensorType wq{
      DType::kI8, {3, 4}, QuantParams::per_axis(0, {0.1f, 0.2f, 0.3f}, {0, 0, 0}, 8, -127, 127)};
  ValueId w = *g.add_constant("w", wq, zeros(12));
  NodeId nq = *g.add_node(OpKind::kQuantize, {x}, {}, {{"xq", u8q({1, 4})}});
  ValueId xq = g.node(nq).outputs[0];
  NodeId nl = *g.add_node(OpKind::kLinear, {xq, w}, {}, {{"y", u8q({1, 3})}});
  ValueId y = g.node(nl).outputs[0];
  NodeId nd = *g.add_node(OpKind::kDequantize, {y}, {}, {{"yd", TensorType::f32({1, 3})}});
  ValueId p = *g.emit(OpKind::kReshape, {pos}, {{"shape", std::vector<int64_t>{2}}}, "p");
  ValueId dead = *g.emit(OpKind::kNeg, {x}, {}, "dead");
  g.erase_node(g.value(dead).producer);
  g.set_outputs({g.node(nd).outputs[0], p});
  HS_EXPECT_OK(verify(g));
}

TEST(Verify, EmptyAndDuplicateNames) {
  Small a;
  a.g.value(a.y).name = "";
  expect_error(verify(a.g), ErrorKind::kInvalidArgument, "value #2 has an empty name");
  Small b;
  b.g.value(b.s).name = "x";
  expect_error(verify(b.g), ErrorKind::kInvalidArgument,
               "value name 'x' is used by values #0 and #3");
}

TEST(Verify, GraphInputWithProducerOrData) {
  Small a;
  a.g.value(a.x).producer = 0;
  expect_error(verify(a.g), ErrorKind::kInvalidArgument,
               "graph input 'x' has a producer (node #0)");
  Small b;
  b.g.value(b.x).data = zeros(16);
  expect_error(verify(b.g), ErrorKind::kInvalidArgument, "graph input 'x' has constant data");
}

TEST(Verify, ConstantDataSizeAndProducer) {
  Small a;
  a.g.value(a.w).data->size = 40;
  expect_error(verify(a.g), ErrorKind::kShape,
               "constant 'w' of type f32[3,4] has 40 bytes of data, expected 48");
  Small b;
  b.g.value(b.w).producer = 1;
  expect_error(verify(b.g), ErrorKind::kInvalidArgument, "constant 'w' has a producer (node #1)");
}

TEST(Verify, ValueWithoutProducer) {
  Small t;
  t.g.node(0).outputs.clear();
  expect_error(verify(t.g), ErrorKind::kInvalidArgument,
               "value 'y' is not a graph input or a constant and no node produces it");
}

TEST(Verify, ProducerFieldMustPointAtTheNode) {
  Small t;
  t.g.value(t.s).producer = 0;
  expect_error(verify(t.g), ErrorKind::kInvalidArgument,
               "value 's' records producer #0 but is the result of node 's' (softmax) (#1)");
}

TEST(Verify, ValueProducedTwiceOrNodeProducingAnInput) {
  Small a;
  NodeId n = a.g.value(*a.g.emit(OpKind::kNeg, {a.x}, {}, "z")).producer;
  a.g.node(n).outputs = {a.y};
  expect_error(verify(a.g), ErrorKind::kInvalidArgument,
               "value 'y' is the result of two nodes: #0 and #2");
  Small b;
  b.g.node(0).outputs = {b.w};
  expect_error(verify(b.g), ErrorKind::kInvalidArgument,
               "node 'w' (linear): result 'w' is a graph constant");
}

TEST(Verify, NodesOutOfTopologicalOrder) {
  Small t;
  std::swap(t.g.node(0), t.g.node(1));
  t.g.value(t.y).producer = 1;
  t.g.value(t.s).producer = 0;
  expect_error(verify(t.g), ErrorKind::kInvalidArgument,
               "node 's' (softmax): operand 0 'y' is used before its definition by node 'y' "
               "(linear)");
  HS_ASSERT_OK(t.g.topo_sort());
  HS_EXPECT_OK(verify(t.g));
}

TEST(Verify, UseOfErasedNodeResult) {
  Small t;
  t.g.erase_node(0);
  expect_error(verify(t.g), ErrorKind::kInvalidArgument,
               "node 's' (softmax): operand 0 'y' is the result of erased node #0");
}

TEST(Verify, GraphOutputs) {
  Small a;
  a.g.set_outputs({a.y});
  a.g.erase_node(1);
  HS_EXPECT_OK(verify(a.g));  // s is dead and unused
  a.g.erase_node(0);
  expect_error(verify(a.g), ErrorKind::kInvalidArgument,
               "graph output 'y' is the result of erased node #0");
  Small b;
  b.g.set_outputs({99});
  expect_error(verify(b.g), ErrorKind::kInvalidArgument, "graph output id 99 is outside [0,4)");
  Small c;
  c.g.set_outputs({c.s, c.y, c.s});
  expect_error(verify(c.g), ErrorKind::kInvalidArgument,
               "value 's' is listed twice as a graph output");
}

TEST(Verify, Arity) {
  Small a;
  a.g.node(1).inputs.push_back(a.x);
  expect_error(verify(a.g), ErrorKind::kShape, "node 's' (softmax): 2 operands, expected 1");
  Small b;
  b.g.node(0).inputs = {b.x, b.w, b.w, b.w};
  expect_error(verify(b.g), ErrorKind::kShape, "node 'y' (linear): 4 operands, expected 2 or 3");
  Small c;
  NodeId n = c.g.value(*c.g.emit(OpKind::kConcat, {c.s}, {{"axis", int64_t{0}}}, "cat")).producer;
  c.g.node(n).inputs.clear();
  expect_error(verify_node(c.g, n), ErrorKind::kShape,
               "node 'cat' (concat): 0 operands, expected at least 1");
  Small d;
  d.g.node(1).inputs[0] = 77;
  expect_error(verify(d.g), ErrorKind::kInvalidArgument,
               "node 's' (softmax): operand 0 has id 77, outside [0,4)");
}

TEST(Verify, ResultCount) {
  Small t;
  HS_ASSERT_OK(t.g.add_node(OpKind::kNeg, {t.x}, {},
                            {{"a", TensorType::f32({1, 4})}, {"b", TensorType::f32({1, 4})}}));
  expect_error(verify(t.g), ErrorKind::kShape, "node 'a' (neg): 2 results, expected 1");
}

TEST(Verify, Attributes) {
  Small a;
  a.g.node(1).attrs = {};
  expect_error(verify(a.g), ErrorKind::kShape, "node 's' (softmax): missing int attribute 'axis'");
  Small b;
  b.g.node(1).attrs.set("axis", 1.5);
  expect_error(verify(b.g), ErrorKind::kShape,
               "node 's' (softmax): attribute 'axis' has kind float, expected int");
  Small c;
  c.g.node(1).attrs.set("axis", std::vector<int64_t>{1});
  expect_error(verify(c.g), ErrorKind::kShape, "attribute 'axis' has kind int list, expected int");
  // Attributes the op does not declare are carried along.
  Small d;
  d.g.node(1).attrs.set("note", std::string("from the builder"));
  HS_EXPECT_OK(verify(d.g));
}

TEST(Verify, ShapeRuleErrorsNameTheNode) {
  Small t;
  t.g.value(t.w).type = TensorType::f32({3, 5});
  t.g.value(t.w).data = zeros(60);
  expect_error(verify(t.g), ErrorKind::kShape,
               "node 'y' (linear): linear: input [1,4] and weight [3,5] do not fit");
}

TEST(Verify, ResultShapeMustMatchInference) {
  Small t;
  t.g.value(t.s).type.shape = {1, 4};
  expect_error(verify(t.g), ErrorKind::kShape,
               "node 's' (softmax): result type f32[1,4] has shape [1,4], inference gives [1,3]");
}

TEST(Verify, ResultDtypeClass) {
  // Inference says f32: i32 or bool results are rejected, quantized ones accepted.
  Small a;
  a.g.value(a.y).type = TensorType::i32({1, 3});
  expect_error(verify(a.g), ErrorKind::kShape,
               "node 'y' (linear): result type i32[1,3] is not real (f32 or quantized), "
               "inference gives f32[1,3]");
  Small b;
  b.g.value(b.y).type = u8q({1, 3});
  HS_EXPECT_OK(verify(b.g));
  // Inference says i32 or bool: exactly that dtype, without quant.
  Graph g("i");
  ValueId pos = *g.add_input("pos", TensorType::i32({1, 4}));
  ValueId m = *g.add_input("m", TensorType::f32({4}));
  ValueId p = *g.emit(OpKind::kReshape, {pos}, {{"shape", std::vector<int64_t>{4}}}, "p");
  ValueId e = *g.emit(OpKind::kEq, {m, m}, {}, "e");
  HS_EXPECT_OK(verify(g));
  Graph g1 = g;
  g1.value(p).type = TensorType::f32({4});
  expect_error(verify(g1), ErrorKind::kShape,
               "node 'p' (reshape): result type f32[4] differs from the inferred type i32[4]");
  Graph g2 = g;
  g2.value(e).type = u8q({4});
  expect_error(verify(g2), ErrorKind::kShape,
               "node 'e' (eq): result type u8[4] q<per_tensor, bits=8, range=[0,255], "
               "scales=[0.5], zero_points=[128]> differs from the inferred type bool[4]");
}

TEST(Verify, QuantizeAndDequantizeResults) {
  Graph g("q");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId q = g.node(*g.add_node(OpKind::kQuantize, {x}, {}, {{"q", u8q({2})}})).outputs[0];
  ValueId d = *g.emit(OpKind::kDequantize, {q}, {}, "d");
  HS_EXPECT_OK(verify(g));
  Graph a = g;
  a.value(q).type = TensorType::f32({2});
  // The dequantize consumer would fail too, but the quantize node is checked first.
  expect_error(verify(a), ErrorKind::kShape,
               "node 'q' (quantize): result type f32[2] is not "
               "quantized");
  Graph b = g;
  b.value(d).type = u8q({2});
  expect_error(verify(b), ErrorKind::kShape, "node 'd' (dequantize): result type u8[2] q<");
  expect_error(verify(b), ErrorKind::kShape, "is not plain f32");
}

TEST(Verify, QuantParamsOfEveryValue) {
  Small a;
  TensorType bad_zp = u8q({1, 4});
  bad_zp.quant.zero_points = {300};
  a.g.value(a.x).type = bad_zp;
  expect_error(verify(a.g), ErrorKind::kShape, "graph input 'x': zero_point[0] = 300 outside");
  Small b;
  b.g.value(b.w).type = {
      DType::kI8, {3, 4}, QuantParams::per_axis(0, {1, 1}, {0, 0}, 8, -127, 127)};
  b.g.value(b.w).data = zeros(12);
  expect_error(verify(b.g), ErrorKind::kShape,
               "constant 'w': per_axis has 2 scales, expected 3 for shape [3,4]");
  Small c;
  TensorType bad_scale = u8q({1, 3});
  bad_scale.quant.scales = {-1.0f};
  c.g.value(c.y).type = bad_scale;
  expect_error(verify(c.g), ErrorKind::kShape,
               "node 'y' (linear): scale[0] = -1 is not a positive finite number");
  Small d;
  d.g.value(d.x).type = TensorType::f32({1, -4});
  expect_error(verify(d.g), ErrorKind::kShape,
               "graph input 'x': shape [1,-4] has a negative dimension (-4 at axis 1)");
}

TEST(VerifyNode, ErasedAndOutOfRange) {
  Small t;
  t.g.erase_node(1);
  expect_error(verify_node(t.g, 1), ErrorKind::kInvalidArgument,
               "node 's' (softmax): node is "
               "erased");
  expect_error(verify_node(t.g, 5), ErrorKind::kInvalidArgument, "node id 5 is outside [0,2)");
  t.g.node(0).outputs.clear();
  EXPECT_EQ(describe_node(t.g, 0), "node #0 (linear)");
}

}  // namespace
}  // namespace hs::ir

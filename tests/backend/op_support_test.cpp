// The op-support check: exported graphs pass; each unsupported combination is named (node, op,
// operand, type, reason), and several are reported at once.
#include "headsplit/backend/op_support.h"

#include "backend/backend_testing.h"
#include "headsplit/backend/export.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

using ir::DType;
using ir::Graph;
using ir::OpKind;
using ir::TensorType;
using ir::ValueId;

std::shared_ptr<HeapBuffer> zeros(size_t bytes) {
  auto buffer = std::make_shared<HeapBuffer>(bytes);
  std::fill(buffer->mutable_bytes().begin(), buffer->mutable_bytes().end(), std::byte{0});
  return buffer;
}

// tokens -> embed -> linear(w) -> logits, with the weight's type chosen by the test.
Graph linear_graph(TensorType weight_type, bool weight_is_input = false) {
  Graph g("decode");
  ValueId tokens = *g.add_input("tokens", TensorType::i32({1, 1}));
  auto table_data = zeros(4 * 8 * 4);
  ValueId table = *g.add_constant("tok_embeddings.weight", TensorType::f32({8, 4}),
                                  BufferView{table_data, 0, table_data->size()});
  ValueId x = *g.emit(OpKind::kGather, {table, tokens}, {}, "embed");
  ValueId w;
  if (weight_is_input) {
    w = *g.add_input("w", weight_type);
  } else {
    auto data = zeros(static_cast<size_t>(weight_type.numel() * ir::dtype_size(weight_type.dtype)));
    w = *g.add_constant("output.weight", weight_type, BufferView{data, 0, data->size()});
  }
  auto y = g.add_node(OpKind::kLinear, {x, w}, {}, {{"logits", TensorType::f32({1, 1, 8})}});
  EXPECT_TRUE(y.ok()) << y.error().message();
  g.set_outputs({g.node(*y).outputs[0]});
  return g;
}

void expect_rejected(const Graph& g, const std::string& fragment) {
  Status status = check_op_support(g);
  ASSERT_FALSE(status.ok()) << "accepted: " << fragment;
  EXPECT_EQ(status.kind(), ErrorKind::kUnsupported);
  EXPECT_NE(status.error().message().find(fragment), std::string::npos)
      << status.error().message() << "\n  expected: " << fragment;
}

TEST(OpSupport, FloatAndQuantizedWeightsThatTheKernelsTake) {
  EXPECT_TRUE(check_op_support(linear_graph(TensorType::f32({8, 4}))).ok());
  TensorType i8{DType::kI8,
                {8, 4},
                ir::QuantParams::per_axis(0, std::vector<float>(8, 0.5f),
                                          std::vector<int32_t>(8, 0), 8, -127, 127)};
  EXPECT_TRUE(check_op_support(linear_graph(i8)).ok());
  TensorType i4{DType::kI4,
                {8, 4},
                ir::QuantParams::per_block(0, 1, 2, std::vector<float>(16, 0.5f), 4, -7, 7)};
  EXPECT_TRUE(check_op_support(linear_graph(i4)).ok());
}

TEST(OpSupport, NamesTheNodeTheOpAndTheOperand) {
  expect_rejected(linear_graph(TensorType::f32({8, 4}), /*weight_is_input=*/true),
                  "node 'logits' (linear): operand 1 'w' f32[8,4]: conv2d/linear weights must be "
                  "constants");
  // Asymmetric int8 weights: the qgemm kernels are symmetric.
  TensorType asym{DType::kI8,
                  {8, 4},
                  ir::QuantParams::per_axis(0, std::vector<float>(8, 0.5f),
                                            std::vector<int32_t>(8, 3), 8, -127, 127)};
  expect_rejected(linear_graph(asym),
                  "node 'logits' (linear): operand 1 'output.weight' i8[8,4] "
                  "per_axis: quantized conv2d/linear weights must be "
                  "symmetric (zero points 0)");
  TensorType u8{DType::kU8, {8, 4}, ir::QuantParams::per_tensor(0.5f, 0, 8, 0, 255)};
  expect_rejected(linear_graph(u8),
                  "operand 1 'output.weight' u8[8,4] per_tensor: quantized "
                  "conv2d/linear weights must be i8 or i4");
  TensorType axis1{DType::kI8,
                   {8, 4},
                   ir::QuantParams::per_axis(1, std::vector<float>(4, 0.5f),
                                             std::vector<int32_t>(4, 0), 8, -127, 127)};
  expect_rejected(linear_graph(axis1), "must be per-tensor, per-axis on axis 0 or per-block");
}

TEST(OpSupport, GraphIoAndStorage) {
  Graph g = linear_graph(TensorType::f32({8, 4}));
  // An input the runner does not bind, and a per-axis quantized output.
  ValueId extra = *g.add_input("scratch", TensorType::f32({1}));
  (void)extra;
  g.value(g.outputs()[0]).type = {
      DType::kU16,
      {1, 1, 8},
      ir::QuantParams::per_axis(2, std::vector<float>(8, 0.5f), std::vector<int32_t>(8, 0), 16, 0,
                                65535)};
  Status status = check_op_support(g);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(),
            "graph 'decode': 2 op/dtype combinations the runtime cannot execute:\n"
            "  graph input 'scratch' f32[1]: not an input the runner binds (tokens, "
            "attention_mask, window_attention_mask, input_pos, k_cache.{l}, v_cache.{l})\n"
            "  graph output 'logits' u16[1,1,8] per_axis: quantized I/O must be per-tensor");
  // Integer storage without params means nothing.
  Graph h = linear_graph(TensorType::f32({8, 4}));
  h.value(h.outputs()[0]).type = {DType::kU16, {1, 1, 8}, {}};
  expect_rejected(h, "value 'logits' u16[1,1,8]: integer storage without quantization params");
}

TEST(OpSupport, ExportedStoriesGraphsPass) {
  // prepare_export runs the check on every graph; these shapes must go through, float and
  // quantized (16a4w with the stories recipe: int4 per-channel, int8 head and embedding).
  frontend::LlamaModel model = testing::random_stories(5);
  ExportOptions options;
  options.prefill_ar_len = 4;
  options.context_len = 16;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport f, prepare_export(model, options));
  for (const PreparedGraph& g : f.graphs) EXPECT_TRUE(find_unsupported(g.graph).empty());
  options.quant.scheme = "";  // the family recipe: stories
  options.quant.calibration_prompt = "One day, a girl found a ball.";
  options.quant.progress = false;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport q, prepare_export(model, options));
  for (const PreparedGraph& g : q.graphs) EXPECT_TRUE(find_unsupported(g.graph).empty());
  EXPECT_EQ(q.summary.quant_scheme, "16a4w");
  EXPECT_EQ(q.lowered.program.metadata.kv_cache_bits, 8);
  EXPECT_EQ(q.lowered.program.metadata.mask_bits, 16);
  EXPECT_EQ(q.lowered.program.metadata.logits_bits, 16);
  EXPECT_EQ(q.lowered.program.metadata.extra.at("quant_recipe"), "stories");
}

}  // namespace
}  // namespace hs::backend

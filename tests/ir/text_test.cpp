// Tests of ir/text.h: golden printing, exact round trips, elided constants, parse errors with
// line:col, and seeded round-trip properties.
#include "headsplit/ir/text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "headsplit/ir/verifier.h"
#include "headsplit/support/hash.h"
#include "testing/testing.h"

namespace hs::ir {
namespace {

using ::testing::HasSubstr;

template <typename T>
BufferView data_of(const std::vector<T>& v) {
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span(v)));
  return BufferView{buf, 0, buf->size()};
}

std::vector<std::byte> bytes_of(const Graph& g, std::string_view name) {
  auto bytes = g.value(*g.find_value(name)).data->bytes();
  return {bytes.begin(), bytes.end()};
}

TensorType quant(DType dtype, Shape shape, QuantParams q) {
  return {dtype, std::move(shape), std::move(q)};
}

// The golden graph: inputs (one with a quoted name), constants of 24, 12 and 68 bytes, and
// nodes with int, float and no attributes, ending in a quantize.
Graph tiny_graph() {
  Graph g("tiny");
  ValueId x = *g.add_input("x", TensorType::f32({1, 2}));
  ValueId m = *g.add_input("mask 0", TensorType::f32({1, 3}));
  ValueId w = *g.add_constant("w", TensorType::f32({3, 2}), data_of<float>({1, 2, 3, 4, 5, 6}));
  ValueId gw = *g.add_constant("g", TensorType::f32({3}), data_of<float>({0.5f, -2.0f, 0.25f}));
  HS_CHECK(g.add_constant("big", TensorType::f32({17}), data_of(std::vector<float>(17, 0.0f))).ok(),
           "tiny graph");
  ValueId y = *g.emit(OpKind::kLinear, {x, w}, {}, "y");
  ValueId a = *g.emit(OpKind::kAdd, {y, m}, {}, "a");
  ValueId s = *g.emit(OpKind::kSoftmax, {a}, {{"axis", int64_t{-1}}}, "s");
  ValueId n = *g.emit(OpKind::kRmsNorm, {s, gw}, {{"eps", 1e-5}}, "n");
  TensorType u8 = quant(DType::kU8, {1, 3}, QuantParams::per_tensor(0.5f, 128, 8, 0, 255));
  ValueId q = g.node(*g.add_node(OpKind::kQuantize, {n}, {}, {{"q", u8}})).outputs[0];
  g.set_outputs({n, q});
  return g;
}

std::string tiny_text(std::string_view big_data) {
  return fmt::format(R"(graph @tiny {{
  input %x : f32[1,2]
  input %"mask 0" : f32[1,3]
  const %w : f32[3,2] = dense<"0000803f0000004000004040000080400000a0400000c040">
  const %g : f32[3] = dense<"0000003f000000c00000803e">
  const %big : f32[17] = {}
  %y = linear(%x, %w) : f32[1,3]
  %a = add(%y, %"mask 0") : f32[1,3]
  %s = softmax(%a) {{axis = -1}} : f32[1,3]
  %n = rms_norm(%s, %g) {{eps = 1e-05}} : f32[1,3]
  %q = quantize(%n) : u8[1,3] q<per_tensor, bits=8, range=[0,255], scales=[0.5], zero_points=[128]>
  output %n, %q
}}
)",
                     big_data);
}

TEST(PrintGraph, GoldenText) {
  Graph g = tiny_graph();
  HS_ASSERT_OK(verify(g));
  std::vector<std::byte> zeros(68, std::byte{0});
  std::string elided = fmt::format("elided<xxh3:{:016x}>", hash64(zeros));
  EXPECT_EQ(print_graph(g), tiny_text(elided));  // kAuto: 68 bytes > 64 is elided
  EXPECT_EQ(print_graph(g, {.constants = ConstantText::kFull}),
            tiny_text(fmt::format("dense<\"{}\">", std::string(136, '0'))));
  EXPECT_EQ(print_node(g, 2), "%s = softmax(%a) {axis = -1} : f32[1,3]");
}

TEST(PrintGraph, ElisionThreshold) {
  Graph g("t");
  std::vector<float> v16(16, 1.0f), v17(17, 1.0f);
  HS_ASSERT_OK(g.add_constant("c16", TensorType::f32({16}), data_of(v16)));
  HS_ASSERT_OK(g.add_constant("c17", TensorType::f32({17}), data_of(v17)));
  std::string hex16;
  for (int i = 0; i < 16; ++i) hex16 += "0000803f";
  std::string h16 = fmt::format("elided<xxh3:{:016x}>", hash64(std::as_bytes(std::span(v16))));
  std::string h17 = fmt::format("elided<xxh3:{:016x}>", hash64(std::as_bytes(std::span(v17))));
  EXPECT_EQ(print_graph(g), fmt::format("graph @t {{\n  const %c16 : f32[16] = dense<\"{}\">\n"
                                        "  const %c17 : f32[17] = {}\n}}\n",
                                        hex16, h17));
  EXPECT_EQ(
      print_graph(g, {.constants = ConstantText::kElided}),
      fmt::format("graph @t {{\n  const %c16 : f32[16] = {}\n  const %c17 : f32[17] = {}\n}}\n",
                  h16, h17));
  EXPECT_THAT(print_graph(g, {.constants = ConstantText::kAuto, .elide_above_bytes = 100}),
              HasSubstr("const %c17 : f32[17] = dense<\""));
}

TEST(ParseGraph, GoldenTextReadsBack) {
  std::string text = tiny_text(fmt::format("dense<\"{}\">", std::string(136, '0')));
  HS_ASSERT_OK_AND_ASSIGN(Graph g, parse_graph(text, "tiny.hsir"));
  EXPECT_EQ(g.name(), "tiny");
  EXPECT_EQ(print_graph(g, {.constants = ConstantText::kFull}), text);
  Graph want = tiny_graph();
  ASSERT_EQ(g.num_values(), want.num_values());
  for (ValueId v = 0; v < want.num_values(); ++v) {
    const Value& wv = want.value(v);
    std::optional<ValueId> found = g.find_value(wv.name);
    ASSERT_TRUE(found.has_value()) << wv.name;
    ValueId id = *found;
    EXPECT_EQ(g.type(id), wv.type) << wv.name;
    if (wv.data) {
      EXPECT_EQ(bytes_of(g, wv.name), bytes_of(want, wv.name)) << wv.name;
    }
  }
  EXPECT_EQ(g.node(3).attrs, want.node(3).attrs);
  EXPECT_EQ(std::get<double>(*g.node(3).attrs.find("eps")), 1e-5);
}

// A graph with every op, every attribute kind, every quant kind, a quoted name and constants
// of f32, i32, bool, u8, i8, i16 and i4.
Graph every_op_graph() {
  Graph g("every op");
  TensorType act16 =
      quant(DType::kU16, {1, 2, 4}, QuantParams::per_tensor(1.0f / 1024, 32768, 16, 0, 65535));
  TensorType cache_t = quant(DType::kU16, {1, 4, 2}, act16.quant);
  ValueId tokens = *g.add_input("tokens", TensorType::i32({1, 2}));
  ValueId mask = *g.add_input("mask", TensorType::f32({1, 2, 2}));
  ValueId cache = *g.add_input("cache \"k\"\n0", cache_t);
  auto c = [&](const char* name, TensorType t, BufferView d) {
    return *g.add_constant(name, t, d);
  };
  ValueId emb =
      c("emb", TensorType::f32({5, 4}),
        data_of<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
  ValueId norm_w = c("layers.0.attention_norm.weight", TensorType::f32({4}),
                     data_of<float>({1, 0.5f, 0.25f, 2}));
  ValueId wq =
      c("layers.0.attention.wq",
        quant(DType::kI8, {4, 4, 1, 1},
              QuantParams::per_axis(0, {0.1f, 0.2f, 0.3f, 0.4f}, {0, 0, 0, 0}, 8, -127, 127)),
        data_of<int8_t>({1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -127}));
  ValueId bq = c("bq", TensorType::f32({4}), data_of<float>({0.1f, 0.2f, 0.3f, 0.4f}));
  // Per-block [3,4] with block 3: 2 blocks per row, the last one partial (1 element).
  ValueId wl = c("wl",
                 quant(DType::kI4, {3, 4},
                       QuantParams::per_block(0, 1, 3, {0.5f, 1, 1.5f, 2, 2.5f, 3}, 4, -8, 7)),
                 data_of<int8_t>({-8, 7, 0, 1, 2, 3, -1, -2, -3, 4, 5, 6}));
  ValueId zero = c("zero", TensorType::f32({1}), data_of<float>({0}));
  ValueId scale = c("scale", TensorType::f32({}), data_of<float>({8}));
  ValueId pos_idx = c("pos_idx", TensorType::i32({2}), data_of<int32_t>({1, 0}));
  ValueId keep = c("keep", TensorType::boolean({1, 2, 2}), data_of<uint8_t>({1, 0, 1, 1}));
  ValueId b8 = c("b8", quant(DType::kU8, {4}, QuantParams::per_tensor(0.25f, 128, 8, 0, 255)),
                 data_of<uint8_t>({0, 128, 200, 255}));
  ValueId s16 =
      c("s16", quant(DType::kI16, {1}, QuantParams::per_tensor(1e-3f, 0, 16, -32767, 32767)),
        data_of<int16_t>({-1234}));
  auto e = [&](OpKind op, std::vector<ValueId> in, Attrs a, const char* name) {
    auto r = g.emit(op, std::move(in), std::move(a), name);
    HS_CHECK(r.ok(), r.ok() ? "" : r.error().message());
    return *r;
  };
  auto n = [&](OpKind op, std::vector<ValueId> in, const char* name, TensorType t) {
    return g.node(*g.add_node(op, std::move(in), {}, {{name, std::move(t)}})).outputs[0];
  };
  using I = std::vector<int64_t>;
  ValueId h = e(OpKind::kGather, {emb, tokens}, {}, "h");
  ValueId rows = e(OpKind::kGather, {emb, pos_idx}, {}, "rows");
  ValueId xn = e(OpKind::kRmsNorm, {h, norm_w}, {{"eps", 1e-5}}, "xn");
  ValueId xq = n(OpKind::kQuantize, {xn}, "xq", act16);
  ValueId xd = n(OpKind::kDequantize, {xq}, "xd", TensorType::f32({1, 2, 4}));
  ValueId xb = e(OpKind::kAdd, {xd, b8}, {}, "xb");
  ValueId xt = e(OpKind::kTranspose, {xb}, {{"perm", I{0, 2, 1}}}, "xt");
  ValueId x4 = e(OpKind::kUnsqueeze, {xt}, {{"axis", int64_t{3}}}, "x4");
  ValueId q = e(OpKind::kConv2d, {x4, wq, bq}, {}, "q");
  ValueId q3 = e(OpKind::kSqueeze, {q}, {{"axis", int64_t{-1}}}, "q3");
  ValueId kc = g.node(*g.add_node(OpKind::kConcat, {q3, cache}, {{"axis", int64_t{2}}},
                                  {{"kc", quant(DType::kU16, {1, 4, 4}, act16.quant)}}))
                   .outputs[0];
  ValueId l = e(OpKind::kLinear, {xd, wl}, {}, "l");
  ValueId s = e(OpKind::kMatMul, {xd, q3}, {}, "s");
  ValueId sm = e(OpKind::kAdd, {s, mask}, {}, "sm");
  ValueId z = e(OpKind::kEq, {mask, zero}, {}, "z");
  ValueId mn = e(OpKind::kReduceMin, {sm}, {{"axis", int64_t{-1}}, {"keepdim", int64_t{1}}}, "mn");
  ValueId w1 = e(OpKind::kWhere, {z, sm, mn}, {}, "w1");
  ValueId w2 = e(OpKind::kWhere, {keep, w1, mn}, {}, "w2");
  ValueId p = e(OpKind::kSoftmax, {w2},
                {{"axis", int64_t{-1}},
                 {"note", std::string("masked \"softmax\"\t1")},
                 {"weight", 0.1},
                 {"big", 1e300},
                 {"whole", 2.0},
                 {"empty", I{}}},
                "p");
  ValueId o = e(OpKind::kMatMul, {p, xd}, {}, "o");
  ValueId ng = e(OpKind::kNeg, {o}, {}, "ng");
  ValueId d = e(OpKind::kDiv, {ng, scale}, {}, "d");
  ValueId a0 = e(OpKind::kSilu, {d}, {}, "a0");
  ValueId a1 = e(OpKind::kGelu, {a0}, {{"approximate", std::string("tanh")}}, "a1");
  ValueId a2 = e(OpKind::kTanh, {a1}, {}, "a2");
  ValueId a = e(OpKind::kLayerNorm, {a2, bq, bq}, {{"eps", 1e-6}}, "a");
  ValueId m = e(OpKind::kMul, {a, s16}, {}, "m");
  ValueId sb = e(OpKind::kSub, {m, rows}, {}, "sb");
  ValueId sl = e(OpKind::kSlice, {sb},
                 {{"axis", int64_t{2}}, {"start", int64_t{1}}, {"end", int64_t{3}}}, "sl");
  ValueId cat = e(OpKind::kConcat, {sl, p}, {{"axis", int64_t{2}}}, "cat");
  ValueId r = e(OpKind::kReshape, {cat}, {{"shape", I{2, 4}}}, "attn out/0");
  ValueId ex = e(OpKind::kExpand, {mn}, {{"shape", I{1, 2, 5}}}, "ex");
  ValueId pos = e(OpKind::kReshape, {tokens}, {{"shape", I{2}}}, "pos");
  g.set_outputs({r, ex, l, pos, kc});
  return g;
}

TEST(TextRoundTrip, EveryOpAttributeAndQuantKind) {
  Graph g = every_op_graph();
  HS_ASSERT_OK(verify(g));
  EXPECT_EQ(static_cast<int>(g.op_counts().size()), kNumOpKinds);
  const PrintOptions full{.constants = ConstantText::kFull};
  std::string text = print_graph(g, full);
  HS_ASSERT_OK_AND_ASSIGN(Graph parsed, parse_graph(text, "every.hsir"));
  EXPECT_EQ(print_graph(parsed, full), text);
  // Structure, not just text: same values (types, data), nodes, attributes, I/O.
  ASSERT_EQ(parsed.num_values(), g.num_values());
  ASSERT_EQ(parsed.num_nodes(), g.num_nodes());
  for (ValueId v = 0; v < g.num_values(); ++v) {
    const Value& want = g.value(v);
    std::optional<ValueId> id = parsed.find_value(want.name);
    ASSERT_TRUE(id.has_value()) << want.name;
    EXPECT_EQ(parsed.type(*id), want.type) << want.name;
    EXPECT_EQ(parsed.value(*id).is_constant(), want.is_constant()) << want.name;
    if (want.data) {
      EXPECT_EQ(bytes_of(parsed, want.name), bytes_of(g, want.name)) << want.name;
    }
  }
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    EXPECT_EQ(parsed.node(n).op, g.node(n).op);
    EXPECT_EQ(parsed.node(n).attrs, g.node(n).attrs) << op_name(g.node(n).op);
  }
  auto names = [](const Graph& gr, const std::vector<ValueId>& ids) {
    std::vector<std::string> out;
    for (ValueId v : ids) out.push_back(gr.value(v).name);
    return out;
  };
  EXPECT_EQ(names(parsed, parsed.inputs()), names(g, g.inputs()));
  EXPECT_EQ(names(parsed, parsed.outputs()), names(g, g.outputs()));
  // A few lines checked literally.
  EXPECT_THAT(text, HasSubstr("\n  input %\"cache \\\"k\\\"\\n0\" : u16[1,4,2] q<per_tensor, "
                              "bits=16, range=[0,65535], scales=[0.0009765625], "
                              "zero_points=[32768]>\n"));
  EXPECT_THAT(text,
              HasSubstr("\n  const %wl : i4[3,4] q<per_block, bits=4, range=[-8,7], axis=0, "
                        "block_axis=1, block=3, scales=[0.5,1,1.5,2,2.5,3], "
                        "zero_points=[0,0,0,0,0,0]> = dense<\"f80700010203fffefd040506\">\n"));
  EXPECT_THAT(text, HasSubstr("\n  const %keep : bool[1,2,2] = dense<\"01000101\">\n"));
  EXPECT_THAT(text, HasSubstr("\n  const %scale : f32[] = dense<\"00000041\">\n"));
  EXPECT_THAT(text,
              HasSubstr("\n  %p = softmax(%w2) {axis = -1, note = \"masked \\\"softmax\\\"\\t1\", "
                        "weight = 0.1, big = 1e+300, whole = 2.0, empty = []} : f32[1,2,2]\n"));
  EXPECT_THAT(text, HasSubstr("\n  %\"attn out/0\" = reshape(%cat) {shape = [2,4]} : f32[2,4]\n"));
  EXPECT_THAT(text, HasSubstr("\n  output %\"attn out/0\", %ex, %l, %pos, %kc\n}\n"));
  EXPECT_THAT(text, HasSubstr("graph @\"every op\" {\n"));
}

TEST(TextRoundTrip, ElidedConstantsParseToZeros) {
  Graph g = every_op_graph();
  std::string elided = print_graph(g, {.constants = ConstantText::kElided});
  EXPECT_THAT(elided, HasSubstr(fmt::format("const %emb : f32[5,4] = elided<xxh3:{:016x}>",
                                            hash64(g.value(*g.find_value("emb")).data->bytes()))));
  HS_ASSERT_OK_AND_ASSIGN(Graph parsed, parse_graph(elided));
  for (ValueId v = 0; v < g.num_values(); ++v) {
    const Value& want = g.value(v);
    if (!want.data) continue;
    std::vector<std::byte> got = bytes_of(parsed, want.name);
    EXPECT_EQ(got.size(), want.data->size) << want.name;
    EXPECT_EQ(std::count(got.begin(), got.end(), std::byte{0}), static_cast<ptrdiff_t>(got.size()))
        << want.name;
  }
  // The types and nodes survive; only the data is lost (the printed hashes change).
  std::string reprinted = print_graph(parsed, {.constants = ConstantText::kElided});
  EXPECT_NE(reprinted, elided);
  EXPECT_EQ(reprinted, print_graph(*parse_graph(reprinted), {.constants = ConstantText::kElided}));
}

TEST(TextRoundTrip, QuotedNamesAndEscapes) {
  EXPECT_EQ(value_ref("layers.0.attn:q/x-1_A"), "%layers.0.attn:q/x-1_A");
  EXPECT_EQ(value_ref("a b"), "%\"a b\"");
  EXPECT_EQ(value_ref(std::string("\x01z\x7f", 3)), "%\"\\x01z\\x7f\"");
  EXPECT_EQ(value_ref("q\"\\\n\t\r"), "%\"q\\\"\\\\\\n\\t\\r\"");
  EXPECT_EQ(value_ref("caf\xc3\xa9"), "%\"caf\xc3\xa9\"");  // UTF-8 passes through, quoted
  Graph g("names");
  std::vector<std::string> names = {"a b",         "q\"\\\n\t\r", std::string("\x01z\x7f", 3),
                                    "caf\xc3\xa9", "-1",          "x:y/z"};
  std::vector<ValueId> ids;
  for (const std::string& name : names) ids.push_back(*g.add_input(name, TensorType::f32({1})));
  g.set_outputs(ids);
  std::string text = print_graph(g);
  HS_ASSERT_OK_AND_ASSIGN(Graph parsed, parse_graph(text));
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(parsed.value(parsed.inputs()[i]).name, names[i]);
  }
  EXPECT_EQ(print_graph(parsed), text);
}

TEST(ParseGraph, CommentsAndFreeWhitespace) {
  const char* text = R"(// a hand-written graph
graph @g {   // the body
  input %x :f32[2]  // a ':' right after a bare name would be part of the name
  const %c : f32[2]=dense<"0000803F00000040">  // upper-case hex is accepted
  %y=add( %x ,%c ){ note="n" ,k=[ 1 , -2 ] }:f32[2]
  %z = neg(%y)
    : f32[2]
  output %z
}
// trailing comment
)";
  HS_ASSERT_OK_AND_ASSIGN(Graph g, parse_graph(text));
  EXPECT_EQ(print_graph(g), R"(graph @g {
  input %x : f32[2]
  const %c : f32[2] = dense<"0000803f00000040">
  %y = add(%x, %c) {note = "n", k = [1,-2]} : f32[2]
  %z = neg(%y) : f32[2]
  output %z
}
)");
}

TEST(ParseType, AllQuantKindsRoundTrip) {
  for (const char* s : {"f32[]", "i32[1,2]", "bool[0]",
                        "u16[1,4] q<per_tensor, bits=16, range=[0,65535], scales=[1e-05], "
                        "zero_points=[32768]>",
                        "i8[2,3] q<per_axis, bits=8, range=[-127,127], axis=1, "
                        "scales=[0.1,0.2,0.3], zero_points=[0,1,-1]>",
                        "i4[2,5] q<per_block, bits=4, range=[-8,7], axis=0, block_axis=1, "
                        "block=4, scales=[1,2,3,4], zero_points=[0,0,0,0]>"}) {
    HS_ASSERT_OK_AND_ASSIGN(TensorType t, parse_type(s));
    EXPECT_EQ(type_str(t), s);
  }
  // Keys in any order and free spacing read the same type.
  HS_ASSERT_OK_AND_ASSIGN(TensorType t, parse_type(" i4 [ 2 , 5 ] q< per_block , block=4, "
                                                   "block_axis = 1, axis=0, bits=4, "
                                                   "zero_points=[0,0,0,0], scales=[1,2,3,4], "
                                                   "range=[-8,7] > "));
  EXPECT_EQ(
      t, (TensorType{DType::kI4, {2, 5}, QuantParams::per_block(0, 1, 4, {1, 2, 3, 4}, 4, -8, 7)}));
  auto bad = parse_type("f32[1,2] x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "<type>:1:10: expected end of the type, found 'x'");
  bad = parse_type("u8[2] q<per_tensor, bits=8, block=2>");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "<type>:1:29: quant parameter 'block' does not apply to per_tensor");
  bad = parse_type("u8[2] q<per_tensor, bits=8, bits=8>");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "<type>:1:29: quant parameter 'bits' given twice");
  bad = parse_type("f32[99999999999,99999999999]");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "<type>:1:17: the shape has too many elements");
}

// --- parse errors -------------------------------------------------------------------------

struct BadCase {
  std::string text;
  ErrorKind kind;
  std::string message;  // the whole message
};

TEST(ParseGraph, ErrorsCarryLineAndColumn) {
  const std::string head = "graph @g {\n  input %x : f32[2]\n";
  const std::vector<BadCase> cases = {
      {"grph @g {}", ErrorKind::kParse, "bad.hsir:1:1: expected 'graph', found 'grph'"},
      {"graph @g {", ErrorKind::kParse,
       "bad.hsir:1:11: expected 'input', 'const', 'output', a node or '}', found end of input"},
      {head + "  %y = frob(%x) : f32[2]\n}", ErrorKind::kParse, "bad.hsir:3:8: unknown op 'frob'"},
      {head + "  %y = neg(%z) : f32[2]\n  %z = neg(%x) : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:12: '%z' is not defined (values are defined before they are used)"},
      {head + "  output %nope\n}", ErrorKind::kParse,
       "bad.hsir:3:10: '%nope' is not defined (values are defined before they are used)"},
      {head + "  input %x : f32[3]\n}", ErrorKind::kParse,
       "bad.hsir:3:9: '%x' is already defined at 2:9"},
      {head + "  %x = neg(%x) : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:3: '%x' is already defined at 2:9"},
      {"graph @g {\n  input %x : f33[2]\n}", ErrorKind::kParse,
       "bad.hsir:2:14: unknown dtype 'f33'"},
      {"graph @g {\n  input %x : f32[2,-1]\n}", ErrorKind::kParse,
       "bad.hsir:2:20: a dimension -1 is outside [0,9223372036854775807]"},
      {head + "  %y = neg(%x : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:15: expected ')' or ',' after an operand, found ':'"},
      {"graph @g {\n  const %w : f32[2] = dense<\"0000803f\">\n}", ErrorKind::kParse,
       "bad.hsir:2:23: constant 'w' of type f32[2] needs 8 bytes, the data has 8 hex digits"},
      {"graph @g {\n  const %w : f32[1] = dense<\"00zz803f\">\n}", ErrorKind::kParse,
       "bad.hsir:2:32: expected a hex digit or '\"' in constant data, found 'zz803f'"},
      {"graph @g {\n  const %w : f32[1] = elided<xxh3:12>\n}", ErrorKind::kParse,
       "bad.hsir:2:37: expected 16 hex digits of the hash, found '>'"},
      // Elided data reads as zeros: a short text must not allocate gigabytes (a fuzzer found
      // f32[1885990385,2]); 256 MiB of zeros in all.
      {"graph @g {\n  const %w : f32[1885990385,2] = elided<xxh3:0123456789abcdef>\n}",
       ErrorKind::kParse,
       "bad.hsir:2:34: elided constant 'w' of type f32[1885990385,2] would be 15087923080 bytes "
       "of zeros; elided constants are limited to 268435456 bytes in all"},
      {"graph @g {\n  const %a : i32[50000000] = elided<xxh3:0123456789abcdef>\n"
       "  const %b : i32[25000000] = elided<xxh3:0123456789abcdef>\n}",
       ErrorKind::kParse,
       "bad.hsir:3:30: elided constant 'b' of type i32[25000000] would be 100000000 bytes of "
       "zeros; elided constants are limited to 268435456 bytes in all"},
      {"graph @g {\n  input %\"abc : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:2:10: unterminated string"},
      {"graph @g {\n  input %\"a\\qb\" : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:2:13: unknown escape in string (\\\\ \\\" \\n \\t \\r \\xHH)"},
      {"graph @g {\n  input %x : u8[2] q<per_tensor, bits=8, range=[0,255], scale=[1], "
       "zero_points=[0]>\n}",
       ErrorKind::kParse, "bad.hsir:2:57: unknown quant parameter 'scale'"},
      {"graph @g {\n  input %x : u8[2,2] q<per_axis, bits=8, range=[0,255], scales=[1,1], "
       "zero_points=[0,0]>\n}",
       ErrorKind::kParse, "bad.hsir:2:24: per_axis quant parameters miss 'axis'"},
      {head + "}\njunk", ErrorKind::kParse,
       "bad.hsir:4:1: expected end of input after the graph, found 'junk'"},
      {head + "  inputs %y : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:3: expected 'input', 'const', 'output', a node or '}', found 'inputs'"},
      {head + "  %a, %b = neg(%x) : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:22: 2 results but 1 types"},
      {head + "  %y = softmax(%x) {axis = 99999999999999999999} : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:28: an integer '99999999999999999999' is out of range"},
      {head + "  %y = rms_norm(%x, %x) {eps = 1e-5x} : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:32: expected an attribute value, found '1e-5x'"},
      {head + "  %y = softmax(%x) {axis = -1, axis = 0} : f32[2]\n}", ErrorKind::kParse,
       "bad.hsir:3:32: attribute 'axis' given twice"},
      // Verifier errors keep their kind and get the statement's position.
      {head + "  %y = neg(%x) : f32[3]\n}", ErrorKind::kShape,
       "bad.hsir:3:3: node 'y' (neg): result type f32[3] has shape [3], inference gives [2]"},
      {head + "  %a, %b = neg(%x) : f32[2], f32[2]\n}", ErrorKind::kShape,
       "bad.hsir:3:3: node 'a' (neg): 2 results, expected 1"},
      {head + "  %y = softmax(%x) : f32[2]\n}", ErrorKind::kShape,
       "bad.hsir:3:3: node 'y' (softmax): missing int attribute 'axis'"},
      {"graph @g {\n  input %x : u8[2] q<per_tensor, bits=8, range=[0,255], scales=[1], "
       "zero_points=[300]>\n}",
       ErrorKind::kShape, "bad.hsir:2:9: graph input 'x': zero_point[0] = 300 outside [0,255]"},
      {head + "  output %x, %x\n}", ErrorKind::kInvalidArgument,
       "bad.hsir: value 'x' is listed twice as a graph output"},
  };
  for (const BadCase& c : cases) {
    auto r = parse_graph(c.text, "bad.hsir");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.kind(), c.kind) << c.text << "\n" << r.error().message();
    EXPECT_EQ(r.error().message(), c.message) << c.text;
  }
}

// --- seeded properties --------------------------------------------------------------------

// Random doubles (float attributes) and floats (scales) survive print + parse bit-exactly.
TEST(TextProperty, FloatsRoundTripBitExactly) {
  std::mt19937_64 rng(20240611);
  for (int trial = 0; trial < 200; ++trial) {
    Graph g("floats");
    std::vector<float> scales;
    while (scales.size() < 8) {
      auto f = std::bit_cast<float>(static_cast<uint32_t>(rng()) & 0x7fffffffu);
      if (f > 0 && std::isfinite(f)) scales.push_back(f);
    }
    // Edge values in every trial: subnormal, extreme and smallest normal scales; signed zero,
    // infinity, subnormal and extreme doubles below.
    using DL = std::numeric_limits<double>;
    using FL = std::numeric_limits<float>;
    scales[0] = trial % 2 == 0 ? FL::denorm_min() : FL::max();
    scales[1] = FL::min();
    TensorType t{DType::kI8,
                 {8},
                 QuantParams::per_axis(0, scales, std::vector<int32_t>(8, 0), 8, -127, 127)};
    ValueId x = *g.add_input("x", t);
    Attrs attrs;
    std::vector<double> doubles;
    while (doubles.size() < 8) {
      auto d = std::bit_cast<double>(rng());
      if (!std::isnan(d)) doubles.push_back(d);
    }
    doubles[0] = trial % 2 == 0 ? -0.0 : -DL::infinity();
    doubles[1] = trial % 2 == 0 ? DL::denorm_min() : DL::max();
    doubles[2] = trial % 2 == 0 ? DL::lowest() : 1e-310;
    for (size_t i = 0; i < doubles.size(); ++i) attrs.set(fmt::format("d{}", i), doubles[i]);
    ValueId y =
        g.node(*g.add_node(OpKind::kNeg, {x}, attrs, {{"y", TensorType::f32({8})}})).outputs[0];
    g.set_outputs({y});
    std::string text = print_graph(g);
    HS_ASSERT_OK_AND_ASSIGN(Graph parsed, parse_graph(text));
    const auto& got_scales = parsed.type(parsed.inputs()[0]).quant.scales;
    for (size_t i = 0; i < scales.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(got_scales[i]), std::bit_cast<uint32_t>(scales[i]))
          << scales[i];
    }
    for (size_t i = 0; i < doubles.size(); ++i) {
      double got = parsed.node(0).attrs.get_float(fmt::format("d{}", i));
      EXPECT_EQ(std::bit_cast<uint64_t>(got), std::bit_cast<uint64_t>(doubles[i])) << doubles[i];
    }
  }
}

// Random graphs: chains of elementwise and layout ops over random shapes, with constants of
// random dtypes and bytes; the full text round-trips exactly and the data is preserved.
TEST(TextProperty, RandomGraphsRoundTrip) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    Graph g(fmt::format("r{}", trial));
    Shape shape;
    for (int r = 1 + static_cast<int>(rng() % 3); r > 0; --r) shape.push_back(1 + rng() % 4);
    ValueId cur = *g.add_input("x", TensorType::f32(shape));
    int steps = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < steps; ++i) {
      std::string name = fmt::format("layers.{}.v", i);
      switch (rng() % 4) {
        case 0: cur = *g.emit(rng() % 2 ? OpKind::kNeg : OpKind::kSilu, {cur}, {}, name); break;
        case 1: {  // a constant operand of random real dtype
          const Shape& s = g.type(cur).shape;
          bool quantized = rng() % 2;
          TensorType ct =
              quantized ? TensorType{DType::kU8, s, QuantParams::per_tensor(0.5f, 3, 8, 0, 255)}
                        : TensorType::f32(s);
          std::vector<uint8_t> bytes(static_cast<size_t>(ct.numel() * dtype_size(ct.dtype)));
          for (auto& b : bytes) b = static_cast<uint8_t>(rng());
          ValueId k = *g.add_constant(fmt::format("c{}", i), ct, data_of(bytes));
          cur = *g.emit(rng() % 2 ? OpKind::kMul : OpKind::kAdd, {cur, k}, {}, name);
          break;
        }
        case 2: {
          std::vector<int64_t> perm(g.type(cur).shape.size());
          for (size_t a = 0; a < perm.size(); ++a) perm[a] = static_cast<int64_t>(a);
          std::shuffle(perm.begin(), perm.end(), rng);
          cur = *g.emit(OpKind::kTranspose, {cur}, {{"perm", perm}}, name);
          break;
        }
        default:
          cur = *g.emit(OpKind::kSoftmax, {cur}, {{"axis", int64_t{-1}}, {"t", 0.5 + i}}, name);
      }
    }
    g.set_outputs({cur});
    HS_ASSERT_OK(verify(g));
    const PrintOptions full{.constants = ConstantText::kFull};
    std::string text = print_graph(g, full);
    HS_ASSERT_OK_AND_ASSIGN(Graph parsed, parse_graph(text));
    EXPECT_EQ(print_graph(parsed, full), text);
    for (ValueId v = 0; v < g.num_values(); ++v) {
      if (g.value(v).data) {
        EXPECT_EQ(bytes_of(parsed, g.value(v).name), bytes_of(g, g.value(v).name));
      }
    }
  }
}

}  // namespace
}  // namespace hs::ir

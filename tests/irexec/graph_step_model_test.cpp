// GraphStepModel plumbing on hand-built "echo" graphs whose outputs are exact functions of the
// inputs:
//   logits[t, j] = [j == tokens[t]] + 2 [j == input_pos[t]] + attention_mask[t, j]   (j < V)
//   k_new = k_cache[..., 0:T] (first T slots of every K row), v_new = v_cache[:, :, 0:T, :]
// so every byte the model binds and copies back can be checked: float, uint8 and uint16
// caches, a quantized mask, per-layer and per-head layouts; plus I/O errors and observers.
#include "headsplit/irexec/graph_step_model.h"

#include <gtest/gtest.h>

#include <cstring>

#include "headsplit/kernels/quant.h"
#include "headsplit/runner/kv_manager.h"
#include "testing/testing.h"

namespace hs::irexec {
namespace {

using ir::DType;
using ir::QuantParams;
using ir::TensorType;
using runner::AttentionMask;
using runner::KvElement;
using runner::KvManager;

constexpr int64_t kL = 2, kHkv = 2, kDh = 2, kC = 8, kV = 5;

struct EchoSpec {
  int64_t ar_len = 2;
  DType cache_dtype = DType::kF32;  // kF32, kU8 or kU16
  bool quantized_mask = false;
  CacheLayout layout = CacheLayout::kPerLayer;
  float k_scale = 0.5f, v_scale = 0.25f;  // u8/u16 caches
  int32_t k_zp = 3, v_zp = 1;
  float out_scale_delta = 0.0f;  // != 0: k_new gets a different scale (an error case)
};

QuantParams cache_quant(const EchoSpec& s, float scale, int32_t zp) {
  const int bits = s.cache_dtype == DType::kU8 ? 8 : 16;
  return QuantParams::per_tensor(scale, zp, bits, 0, s.cache_dtype == DType::kU8 ? 255 : 65535);
}

QuantParams mask_quant() { return QuantParams::per_tensor(255.0f / 65535.0f, 65535, 16, 0, 65535); }

ir::ValueId constant(ir::Graph& g, const std::string& name, ir::Shape shape,
                     const std::vector<float>& values) {
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span(values)));
  return *g.add_constant(name, TensorType::f32(std::move(shape)), BufferView{buf, 0, buf->size()});
}

ir::Graph echo_graph(const EchoSpec& s) {
  const int64_t t = s.ar_len, p = kC - t;
  ir::Graph g("echo" + std::to_string(t));
  const ir::ValueId tokens = *g.add_input("tokens", TensorType::i32({1, t}));
  TensorType mask_type = TensorType::f32({1, t, kC});
  if (s.quantized_mask) mask_type = {DType::kU16, {1, t, kC}, mask_quant()};
  const ir::ValueId mask = *g.add_input("attention_mask", mask_type);
  const ir::ValueId pos = *g.add_input("input_pos", TensorType::i32({1, t}));
  std::vector<float> eye(kV * kV, 0.0f), pos_table(kC * kV, 0.0f);
  for (int64_t j = 0; j < kV; ++j) eye[static_cast<size_t>(j * kV + j)] = 1.0f;
  for (int64_t j = 0; j < kV; ++j) pos_table[static_cast<size_t>(j * kV + j)] = 2.0f;
  const ir::ValueId e1 = constant(g, "eye", {kV, kV}, eye);
  const ir::ValueId e2 = constant(g, "pos_table", {kC, kV}, pos_table);
  const ir::ValueId a = *g.emit(ir::OpKind::kGather, {e1, tokens}, {}, "tok_hot");
  const ir::ValueId b = *g.emit(ir::OpKind::kGather, {e2, pos}, {}, "pos_hot");
  TensorType mslice_type = mask_type;
  mslice_type.shape = {1, t, kV};
  const ir::ValueId ms = g.add_node(ir::OpKind::kSlice, {mask},
                                    {{"axis", int64_t{2}}, {"start", int64_t{0}}, {"end", kV}},
                                    {{"mask_part", mslice_type}})
                             .value();
  const ir::ValueId mask_val = g.node(ms).outputs[0];
  const ir::ValueId ab = *g.emit(ir::OpKind::kAdd, {a, b}, {}, "hot");
  const ir::ValueId logits = *g.emit(ir::OpKind::kAdd, {ab, mask_val}, {}, "logits");
  std::vector<ir::ValueId> outputs{logits}, k_new, v_new;

  const bool per_head = s.layout == CacheLayout::kPerHead;
  const int64_t slots = per_head ? kHkv : 1, heads = per_head ? 1 : kHkv;
  auto cache_type = [&](ir::Shape shape, float scale, int32_t zp) {
    if (s.cache_dtype == DType::kF32) return TensorType::f32(std::move(shape));
    return TensorType{s.cache_dtype, std::move(shape), cache_quant(s, scale, zp)};
  };
  for (int64_t l = 0; l < kL; ++l) {
    for (int64_t h = 0; h < slots; ++h) {
      const std::string suffix = per_head ? fmt::format("{}.{}", l, h) : fmt::format("{}", l);
      // Per-head caches get their own encodings (scale grows with the head).
      const float ks = s.k_scale * static_cast<float>(h + 1),
                  vs = s.v_scale * static_cast<float>(h + 1);
      const ir::ValueId kc =
          *g.add_input("k_cache." + suffix, cache_type({1, heads, kDh, p}, ks, s.k_zp));
      const ir::ValueId vc =
          *g.add_input("v_cache." + suffix, cache_type({1, heads, p, kDh}, vs, s.v_zp));
      TensorType kt = cache_type({1, heads, kDh, t}, ks + s.out_scale_delta, s.k_zp);
      const ir::NodeId kn = g.add_node(ir::OpKind::kSlice, {kc},
                                       {{"axis", int64_t{3}}, {"start", int64_t{0}}, {"end", t}},
                                       {{"k_new." + suffix, kt}})
                                .value();
      const ir::NodeId vn =
          g.add_node(ir::OpKind::kSlice, {vc},
                     {{"axis", int64_t{2}}, {"start", int64_t{0}}, {"end", t}},
                     {{"v_new." + suffix, cache_type({1, heads, t, kDh}, vs, s.v_zp)}})
              .value();
      k_new.push_back(g.node(kn).outputs[0]);
      v_new.push_back(g.node(vn).outputs[0]);
    }
  }
  outputs.insert(outputs.end(), k_new.begin(), k_new.end());
  outputs.insert(outputs.end(), v_new.begin(), v_new.end());
  g.set_outputs(outputs);
  return g;
}

int64_t elem_size(DType d) { return d == DType::kF32 ? 4 : d == DType::kU8 ? 1 : 2; }

// Element i of a cache buffer as an integer code (f32 caches hold small integers exactly).
int64_t get(std::span<const std::byte> b, size_t i, int64_t es) {
  if (es == 4) {
    float x;
    std::memcpy(&x, b.data() + 4 * i, 4);
    return static_cast<int64_t>(x);
  }
  if (es == 2) {
    uint16_t x;
    std::memcpy(&x, b.data() + 2 * i, 2);
    return x;
  }
  return static_cast<uint8_t>(b[i]);
}
void put(std::span<std::byte> b, size_t i, int64_t es, int64_t v) {
  if (es == 4) {
    const auto x = static_cast<float>(v);
    std::memcpy(b.data() + 4 * i, &x, 4);
  } else if (es == 2) {
    const auto x = static_cast<uint16_t>(v);
    std::memcpy(b.data() + 2 * i, &x, 2);
  } else {
    b[i] = static_cast<std::byte>(v);
  }
}

// Runs one step of an echo graph and checks logits and the new K/V entries exactly.
void check_echo(const EchoSpec& spec) {
  SCOPED_TRACE(fmt::format("dtype {} T {} per-head {} qmask {}", ir::dtype_name(spec.cache_dtype),
                           spec.ar_len, spec.layout == CacheLayout::kPerHead, spec.quantized_mask));
  std::vector<ir::Graph> graphs;
  graphs.push_back(echo_graph(spec));
  HS_ASSERT_OK_AND_ASSIGN(auto model, GraphStepModel::create(std::move(graphs)));
  const runner::StepModelInfo& info = model->info();
  EXPECT_EQ(info.n_layers, kL);
  EXPECT_EQ(info.n_kv_heads, kHkv);
  EXPECT_EQ(info.head_dim, kDh);
  EXPECT_EQ(info.context_len, kC);
  EXPECT_EQ(info.vocab_size, kV);
  EXPECT_EQ(info.ar_lens, (std::vector<int64_t>{spec.ar_len}));
  EXPECT_EQ(model->cache_layout(), spec.layout);
  const int64_t es = elem_size(spec.cache_dtype);
  EXPECT_EQ(runner::kv_element_size(info.kv_element), es);

  const int64_t t = spec.ar_len, p = kC - t;
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(info.kv_shape(t, t)));
  // Distinct codes: K element i of layer l = 10 + 37 l + i, V = 20 + 41 l + i (mod 200).
  for (int64_t l = 0; l < kL; ++l) {
    for (size_t i = 0; i < static_cast<size_t>(kHkv * kDh * p); ++i) {
      put(kv.k_in(l), i, es, static_cast<int64_t>(10 + 37 * l + static_cast<int64_t>(i)) % 200);
      put(kv.v_in(l), i, es, static_cast<int64_t>(20 + 41 * l + static_cast<int64_t>(i)) % 200);
    }
  }
  AttentionMask mask(t, kC);
  mask.init_causal(3);
  std::vector<int32_t> tokens = {3, 1, 4, 0}, positions = {4, 5, 6, 7};
  tokens.resize(static_cast<size_t>(t));
  positions.resize(static_cast<size_t>(t));
  std::vector<float> logits(static_cast<size_t>(t * kV), -1.0f);
  HS_ASSERT_OK(model->step(t, tokens, positions, mask.data(), kv, logits));

  const float masked =
      spec.quantized_mask ? kernels::dequantize_one(0, 255.0f / 65535.0f, 65535) : -255.0f;
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t j = 0; j < kV; ++j) {
      float want = (j == tokens[static_cast<size_t>(r)] ? 1.0f : 0.0f) +
                   (j == positions[static_cast<size_t>(r)] ? 2.0f : 0.0f);
      want += mask.at(r, j) == AttentionMask::kAttend ? 0.0f : masked;
      EXPECT_EQ(logits[static_cast<size_t>(r * kV + j)], want) << "row " << r << " col " << j;
    }
  }
  // k_out [Hkv, Dh, T] row q = k_in [Hkv, Dh, P] row q, slots 0..T-1; v_out head h rows 0..T-1.
  for (int64_t l = 0; l < kL; ++l) {
    for (int64_t q = 0; q < kHkv * kDh; ++q) {
      for (int64_t i = 0; i < t; ++i) {
        EXPECT_EQ(get(kv.k_out(l), static_cast<size_t>(q * t + i), es),
                  get(kv.k_in(l), static_cast<size_t>(q * p + i), es))
            << "layer " << l << " k row " << q << " slot " << i;
      }
    }
    for (int64_t h = 0; h < kHkv; ++h) {
      for (int64_t e = 0; e < t * kDh; ++e) {
        EXPECT_EQ(get(kv.v_out(l), static_cast<size_t>(h * t * kDh + e), es),
                  get(kv.v_in(l), static_cast<size_t>(h * p * kDh + e), es))
            << "layer " << l << " v head " << h << " element " << e;
      }
    }
  }
}

TEST(GraphStepModel, EchoFloatCaches) {
  check_echo({.ar_len = 2});
  check_echo({.ar_len = 1});
  check_echo({.ar_len = 3, .quantized_mask = true});
}

TEST(GraphStepModel, EchoQuantizedCaches) {
  check_echo({.ar_len = 2, .cache_dtype = DType::kU8});
  check_echo({.ar_len = 2, .cache_dtype = DType::kU16, .quantized_mask = true});
}

TEST(GraphStepModel, EchoPerHeadCaches) {
  check_echo({.ar_len = 2, .layout = CacheLayout::kPerHead});
  check_echo({.ar_len = 1, .cache_dtype = DType::kU8, .layout = CacheLayout::kPerHead});
  check_echo({.ar_len = 2, .cache_dtype = DType::kU16, .layout = CacheLayout::kPerHead});
}

TEST(GraphStepModel, InfoCarriesCacheEncodings) {
  std::vector<ir::Graph> graphs;
  graphs.push_back(
      echo_graph({.ar_len = 1, .cache_dtype = DType::kU8, .layout = CacheLayout::kPerHead}));
  graphs.push_back(
      echo_graph({.ar_len = 4, .cache_dtype = DType::kU8, .layout = CacheLayout::kPerHead}));
  HS_ASSERT_OK_AND_ASSIGN(auto model, GraphStepModel::create(std::move(graphs)));
  const runner::StepModelInfo& info = model->info();
  EXPECT_EQ(info.ar_lens, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(info.kv_element, KvElement::kU8);
  EXPECT_EQ(info.k_scales, (std::vector<float>{0.5f, 0.5f}));  // head 0 of each layer
  EXPECT_EQ(info.k_zero_points, (std::vector<int32_t>{3, 3}));
  EXPECT_EQ(info.v_scales, (std::vector<float>{0.25f, 0.25f}));
  // [L*Hkv]: head g has scale (g + 1) * base.
  EXPECT_EQ(info.k_head_scales, (std::vector<float>{0.5f, 1.0f, 0.5f, 1.0f}));
  EXPECT_EQ(info.v_head_zero_points, (std::vector<int32_t>{1, 1, 1, 1}));
  ASSERT_NE(model->graph(4), nullptr);
  EXPECT_EQ(model->graph(4)->name(), "echo4");
  EXPECT_EQ(model->graph(2), nullptr);
}

TEST(GraphStepModel, ObserverSeesEveryNode) {
  std::vector<ir::Graph> graphs;
  graphs.push_back(echo_graph({.ar_len = 2}));
  HS_ASSERT_OK_AND_ASSIGN(auto model, GraphStepModel::create(std::move(graphs)));
  std::vector<std::string> seen;
  const ir::Graph* g = model->graph(2);
  HS_ASSERT_OK(model->set_observer(
      2, [&](ir::ValueId id, const ir::Tensor&) { seen.push_back(g->value(id).name); }));
  EXPECT_EQ(model->set_observer(3, nullptr).kind(), ErrorKind::kInvalidArgument);
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(model->info().kv_shape(2, 2)));
  AttentionMask mask(2, kC);
  std::vector<float> logits(2 * kV);
  HS_ASSERT_OK(model->step(2, std::vector<int32_t>{0, 1}, std::vector<int32_t>{0, 1}, mask.data(),
                           kv, logits));
  EXPECT_EQ(static_cast<int64_t>(seen.size()), g->live_node_count());
  EXPECT_EQ(seen.front(), "tok_hot");
  HS_ASSERT_OK(model->set_observer(2, nullptr));
  HS_ASSERT_OK(model->step(2, std::vector<int32_t>{0, 1}, std::vector<int32_t>{0, 1}, mask.data(),
                           kv, logits));
  EXPECT_EQ(static_cast<int64_t>(seen.size()), g->live_node_count());
}

TEST(GraphStepModel, GraphErrors) {
  {
    ir::Graph g("bare");
    (void)g.add_input("attention_mask", TensorType::f32({1, 1, 4}));
    std::vector<ir::Graph> graphs;
    graphs.push_back(std::move(g));
    auto r = GraphStepModel::create(std::move(graphs));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kNotFound);
    EXPECT_EQ(r.error().message(), "graph 'bare': no input 'tokens'");
  }
  {
    // k_new quantized with another scale than its cache: the bytes could not be stored.
    std::vector<ir::Graph> graphs;
    graphs.push_back(echo_graph({.ar_len = 2, .cache_dtype = DType::kU8, .out_scale_delta = 0.5f}));
    auto r = GraphStepModel::create(std::move(graphs));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kShape);
    EXPECT_NE(r.error().message().find("graph 'echo2': 'k_new.0' has type u8[1,2,2,2]"),
              std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("cache 'k_cache.0'"), std::string::npos);
  }
  {
    std::vector<ir::Graph> graphs;
    graphs.push_back(echo_graph({.ar_len = 2}));
    graphs.push_back(echo_graph({.ar_len = 1, .cache_dtype = DType::kU16}));
    auto r = GraphStepModel::create(std::move(graphs));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kShape);
    EXPECT_NE(r.error().message().find("graphs 'echo2' and 'echo1' (ar lengths 2 and 1) differ "
                                       "in cache element type: f32 vs u16"),
              std::string::npos)
        << r.error().message();
  }
  {
    std::vector<ir::Graph> graphs;
    graphs.push_back(echo_graph({.ar_len = 2}));
    graphs.push_back(echo_graph({.ar_len = 2}));
    auto r = GraphStepModel::create(std::move(graphs));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "graphs 'echo2' and 'echo2' both have ar length 2");
  }
  {
    std::vector<ir::Graph> graphs;
    graphs.push_back(echo_graph({.ar_len = 2, .layout = CacheLayout::kPerLayer}));
    graphs.push_back(echo_graph({.ar_len = 1, .layout = CacheLayout::kPerHead}));
    auto r = GraphStepModel::create(std::move(graphs));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("cache layout: per-layer vs per-head"), std::string::npos)
        << r.error().message();
  }
}

TEST(GraphStepModel, StepErrors) {
  std::vector<ir::Graph> graphs;
  graphs.push_back(echo_graph({.ar_len = 2}));
  HS_ASSERT_OK_AND_ASSIGN(auto model, GraphStepModel::create(std::move(graphs)));
  HS_ASSERT_OK_AND_ASSIGN(KvManager kv, KvManager::create(model->info().kv_shape(1, 2)));
  AttentionMask mask(2, kC);
  std::vector<float> logits(2 * kV);
  const std::vector<int32_t> two = {0, 1};
  Status no_graph =
      model->step(1, std::vector<int32_t>{0}, std::vector<int32_t>{0}, mask.data(), kv, logits);
  EXPECT_EQ(no_graph.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(no_graph.error().message(), "step: no graph for ar length 1 (have 2)");
  std::vector<float> short_logits(3);
  Status sizes = model->step(2, two, two, mask.data(), kv, short_logits);
  EXPECT_EQ(sizes.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(sizes.error().message().find("3 logits elements"), std::string::npos);
  HS_ASSERT_OK(kv.rearrange(1, 0));  // the KvManager is at T = 1, the graph needs 2
  Status wrong_t = model->step(2, two, two, mask.data(), kv, logits);
  EXPECT_EQ(wrong_t.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(wrong_t.error().message().find("T=1"), std::string::npos);
}

}  // namespace
}  // namespace hs::irexec

// Tests of opset/step_io.h: the step-graph I/O contract on hand-made (name, type) lists, both
// cache layouts, every kind of violation, and the agreement check between AR lengths.
#include "headsplit/opset/step_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "testing/testing.h"

namespace hs::opset {
namespace {

using ::testing::HasSubstr;

// A step graph's I/O lists: names and types (owned here), and the NamedType views.
struct Io {
  std::vector<std::string> in_names, out_names;
  std::deque<TensorType> in_types, out_types;  // deques: stable addresses
  std::vector<NamedType> inputs, outputs;

  void add(bool input, std::string name, TensorType type) {
    (input ? in_names : out_names).push_back(std::move(name));
    (input ? in_types : out_types).push_back(std::move(type));
  }
  // Binds the NamedType views (after every add).
  void finish() {
    inputs.clear();
    outputs.clear();
    for (size_t i = 0; i < in_names.size(); ++i) inputs.push_back({in_names[i], &in_types[i]});
    for (size_t i = 0; i < out_names.size(); ++i) outputs.push_back({out_names[i], &out_types[i]});
  }
  TensorType& input_type(std::string_view name) { return find(in_names, in_types, name); }
  TensorType& output_type(std::string_view name) { return find(out_names, out_types, name); }

 private:
  static TensorType& find(const std::vector<std::string>& names, std::deque<TensorType>& types,
                          std::string_view name) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return types[i];
    }
    ADD_FAILURE() << "no tensor " << name;
    return types.front();
  }
};

QuantParams u8_params(float scale, int32_t zp) {
  return QuantParams::per_tensor(scale, zp, 8, 0, 255);
}

// The contract's I/O for `d`, f32 caches (or u8 with per-slot scales when `u8`).
Io make_io(const StepDims& d, bool u8 = false) {
  Io io;
  io.add(true, std::string(kTokensName), TensorType::i32({1, d.ar_len}));
  io.add(true, std::string(kAttentionMaskName),
         {DType::kU16,
          {1, d.ar_len, d.context_len},
          QuantParams::per_tensor(255.f / 65535.f, 65535, 16, 0, 65535)});
  io.add(true, std::string(kInputPosName), TensorType::i32({1, d.ar_len}));
  const int64_t heads = d.layout == CacheLayout::kPerLayer ? 1 : d.n_kv_heads;
  auto type = [&](CacheTensor which, int64_t slot) {
    TensorType t = TensorType::f32(cache_tensor_shape(which, d));
    if (u8) {
      const bool k = which == CacheTensor::kKCache || which == CacheTensor::kKNew;
      t.dtype = DType::kU8;
      t.quant = u8_params(0.5f * static_cast<float>(slot + 1), k ? 3 : 7);
    }
    return t;
  };
  for (CacheTensor which : {CacheTensor::kKCache, CacheTensor::kVCache}) {
    for (int64_t l = 0; l < d.n_layers; ++l) {
      for (int64_t g = 0; g < heads; ++g) {
        io.add(true, cache_tensor_name(which, l, d.layout, g), type(which, l * heads + g));
      }
    }
  }
  io.add(false, std::string(kLogitsName), TensorType::f32({1, d.ar_len, d.vocab_size}));
  for (CacheTensor which : {CacheTensor::kKNew, CacheTensor::kVNew}) {
    for (int64_t l = 0; l < d.n_layers; ++l) {
      for (int64_t g = 0; g < heads; ++g) {
        io.add(false, cache_tensor_name(which, l, d.layout, g), type(which, l * heads + g));
      }
    }
  }
  io.finish();
  return io;
}

StepDims dims(int64_t t, CacheLayout layout = CacheLayout::kPerLayer) {
  return {.ar_len = t,
          .context_len = 8,
          .vocab_size = 5,
          .n_layers = 2,
          .n_kv_heads = 3,
          .head_dim = 4,
          .layout = layout};
}

void expect_error(const Result<StepIo>& r, ErrorKind kind, const std::string& detail) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), kind) << r.error().message();
  EXPECT_THAT(r.error().message(), HasSubstr(detail));
}

TEST(StepIoNames, LayoutsAndShapes) {
  EXPECT_EQ(k_cache_name(3), "k_cache.3");
  EXPECT_EQ(v_new_name(0), "v_new.0");
  EXPECT_EQ(cache_tensor_name(CacheTensor::kVCache, 3, CacheLayout::kPerHead, 1), "v_cache.3.1");
  const StepDims d = dims(2);  // P = 6
  EXPECT_EQ(cache_tensor_shape(CacheTensor::kKCache, d), (Shape{1, 3, 4, 6}));
  EXPECT_EQ(cache_tensor_shape(CacheTensor::kVCache, d), (Shape{1, 3, 6, 4}));
  EXPECT_EQ(cache_tensor_shape(CacheTensor::kKNew, d), (Shape{1, 3, 4, 2}));
  EXPECT_EQ(cache_tensor_shape(CacheTensor::kVNew, dims(2, CacheLayout::kPerHead)),
            (Shape{1, 1, 2, 4}));
  EXPECT_EQ(dims(2, CacheLayout::kPerHead).slot_count(), 6);
}

TEST(StepIoLengths, OneErrorText) {
  HS_EXPECT_OK(check_step_lengths(1, 2));
  for (auto [t, c] : {std::pair<int64_t, int64_t>{0, 8}, {8, 8}, {9, 8}}) {
    Status s = check_step_lengths(t, c);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(s.error().message(),
              fmt::format("ar length {} must be at least 1 and smaller than the context length {}",
                          t, c));
  }
}

TEST(DescribeStepIo, PerLayerFindsEveryTensor) {
  Io io = make_io(dims(2), /*u8=*/true);
  HS_ASSERT_OK_AND_ASSIGN(StepIo s, describe_step_io(io.inputs, io.outputs, "graph 'g'"));
  EXPECT_EQ(s.dims.ar_len, 2);
  EXPECT_EQ(s.dims.context_len, 8);
  EXPECT_EQ(s.dims.vocab_size, 5);
  EXPECT_EQ(s.dims.n_layers, 2);
  EXPECT_EQ(s.dims.n_kv_heads, 3);
  EXPECT_EQ(s.dims.head_dim, 4);
  EXPECT_EQ(s.dims.layout, CacheLayout::kPerLayer);
  EXPECT_EQ(s.cache_dtype, DType::kU8);
  EXPECT_EQ(s.mask_dtype, DType::kU16);
  EXPECT_EQ(s.logits_dtype, DType::kF32);
  EXPECT_EQ(io.inputs[s.tokens].name, "tokens");
  EXPECT_EQ(io.inputs[s.mask].name, "attention_mask");
  EXPECT_EQ(io.inputs[s.input_pos].name, "input_pos");
  EXPECT_EQ(io.outputs[s.logits].name, "logits");
  ASSERT_EQ(s.slots.size(), 2u);
  const CacheSlot& one = s.slots[1];
  EXPECT_EQ(one.layer, 1);
  EXPECT_EQ(io.inputs[one.k_in].name, "k_cache.1");
  EXPECT_EQ(io.inputs[one.v_in].name, "v_cache.1");
  EXPECT_EQ(io.outputs[one.k_out].name, "k_new.1");
  EXPECT_EQ(io.outputs[one.v_out].name, "v_new.1");
  EXPECT_EQ(one.k_quant, u8_params(1.0f, 3));
  EXPECT_EQ(one.v_quant, u8_params(1.0f, 7));
}

TEST(DescribeStepIo, PerHeadCountsHeadsByName) {
  Io io = make_io(dims(1, CacheLayout::kPerHead));
  HS_ASSERT_OK_AND_ASSIGN(StepIo s, describe_step_io(io.inputs, io.outputs, "graph 'g'"));
  EXPECT_EQ(s.dims.layout, CacheLayout::kPerHead);
  EXPECT_EQ(s.dims.n_kv_heads, 3);
  ASSERT_EQ(s.slots.size(), 6u);
  EXPECT_EQ(s.slots[4].layer, 1);
  EXPECT_EQ(s.slots[4].head, 1);
  EXPECT_EQ(io.inputs[s.slots[4].k_in].name, "k_cache.1.1");
  EXPECT_EQ(io.outputs[s.slots[4].v_out].name, "v_new.1.1");
}

TEST(DescribeStepIo, ViolationsNameTheTensor) {
  {
    Io io = make_io(dims(2));
    io.in_names[0] = "token_ids";
    io.finish();
    expect_error(describe_step_io(io.inputs, io.outputs, "graph 'g'"), ErrorKind::kNotFound,
                 "graph 'g': no input 'tokens'");
  }
  {
    Io io = make_io(dims(2));
    io.input_type("attention_mask") = TensorType::i32({1, 2, 8});
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kUnsupported,
                 "g: 'attention_mask' has type i32[1,2,8], expected f32, or u16 with per-tensor");
  }
  {
    Io io = make_io(dims(2));
    io.input_type("input_pos").shape = {1, 3};
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kShape,
                 "'input_pos' has type i32[1,3], expected shape [1,T] = [1,2]");
  }
  {
    Io io = make_io(dims(2));
    io.input_type("v_cache.1").shape = {1, 3, 4, 6};
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kShape,
                 "'v_cache.1' has type f32[1,3,4,6], expected shape [1,Hkv,P,Dh] = [1,3,6,4]");
  }
  {
    Io io = make_io(dims(2), /*u8=*/true);
    io.output_type("k_new.0").quant.scales[0] = 9.0f;
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kShape,
                 "'k_new.0' has type u8[1,3,4,2] q<");
  }
  {
    Io io = make_io(dims(2), /*u8=*/true);
    io.input_type("v_cache.1") = {
        DType::kU16, {1, 3, 6, 4}, QuantParams::per_tensor(1, 0, 16, 0, 65535)};
    io.output_type("v_new.1") = io.input_type("v_cache.1");
    io.output_type("v_new.1").shape = {1, 3, 2, 4};
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kShape,
                 "cache 'v_cache.1' has type u16[1,3,6,4]");
  }
  {
    Io io = make_io(dims(2));
    io.add(true, "debug", TensorType::f32({1}));
    io.finish();
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kUnsupported,
                 "g: input 'debug' is not a step input");
  }
  {
    Io io = make_io(dims(2));
    io.add(false, "layers.0.attn.probs", TensorType::f32({1}));
    io.finish();
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kUnsupported,
                 "g: output 'layers.0.attn.probs' is not a step output");
  }
  {
    StepDims d = dims(2);
    d.ar_len = 8;  // C = 8: no cache slot
    Io io = make_io(d);
    expect_error(describe_step_io(io.inputs, io.outputs, "g"), ErrorKind::kShape,
                 "g: ar length 8 leaves no cache slot in context 8");
  }
}

TEST(SameKvCaches, GraphsAgreeOnAllButT) {
  Io a = make_io(dims(2), true), b = make_io(dims(1), true);
  HS_ASSERT_OK_AND_ASSIGN(StepIo sa, describe_step_io(a.inputs, a.outputs, "a"));
  HS_ASSERT_OK_AND_ASSIGN(StepIo sb, describe_step_io(b.inputs, b.outputs, "b"));
  HS_EXPECT_OK(check_same_kv_caches(sa, sb, "graphs 'a' and 'b'"));
  StepIo other = sb;
  other.dims.head_dim = 8;
  Status s = check_same_kv_caches(sa, other, "graphs 'a' and 'b'");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(),
            "graphs 'a' and 'b' (ar lengths 2 and 1) differ in head size: 4 vs 8");
  other = sb;
  other.slots[1].v_quant.zero_points[0] = 9;
  s = check_same_kv_caches(sa, other, "graphs 'a' and 'b'");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("differ in the encoding of the caches of layer 1"));
  other = sb;
  other.dims.layout = CacheLayout::kPerHead;
  s = check_same_kv_caches(sa, other, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("cache layout: per-layer vs per-head"));
}

}  // namespace
}  // namespace hs::opset

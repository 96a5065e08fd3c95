// The structure of quantized graphs: layout ops carry their input's exact params, KV groups,
// I/O types, weight storage per role and scheme, and weight sharing between the prefill and
// decode graphs of one export.
#include <gtest/gtest.h>

#include "headsplit/ir/verifier.h"
#include "headsplit/ptq/quantize_model.h"
#include "ptq/ptq_testing.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

using frontend::MaskKind;
using ir::DType;
using ir::QuantKind;

frontend::LlamaModel stories_shaped() {
  return frontend::make_random_llama(frontend::named_config("stories260k").value(), 7);
}

QuantizedModel quantize(const frontend::LlamaModel& m, const quant::QuantConfig& config,
                        frontend::BuildOptions build, std::vector<int64_t> ar_lens) {
  PtqOptions o = testing::ptq_options(config, std::move(ar_lens), build.context_len);
  o.build = build;
  auto samples = testing::random_samples(m.config.vocab_size, 2, 40, 3);
  auto q = quantize_model(m, samples, o);
  EXPECT_TRUE(q.ok()) << q.error().message();
  return q.ok() ? std::move(q).value() : QuantizedModel{};
}

// Every layout op's output has exactly the type params of each real input.
void expect_layout_ops_share(const ir::Graph& g) {
  int64_t checked = 0;
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased || !ir::op_info(node.op).is_layout) continue;
    const ir::TensorType& out = g.type(node.outputs[0]);
    for (ir::ValueId in : node.inputs) {
      const ir::TensorType& t = g.type(in);
      ASSERT_EQ(t.dtype, out.dtype) << ir::describe_node(g, n);
      ASSERT_EQ(t.quant, out.quant)
          << ir::describe_node(g, n) << ": input '" << g.value(in).name << "' has "
          << ir::type_str(t) << ", output " << ir::type_str(out);
    }
    ++checked;
  }
  EXPECT_GT(checked, 50) << "the graph should have many layout ops";
}

void expect_activation_types(const ir::Graph& g, int kv_bits) {
  const frontend::LlamaConfig c = frontend::named_config("stories260k").value();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (const char* kind : {"k", "v"}) {
      const auto in = g.find_value(fmt::format("{}_cache.{}", kind, l));
      const auto out = g.find_value(fmt::format("{}_new.{}", kind, l));
      ASSERT_TRUE(in && out);
      const ir::TensorType& ti = g.type(*in);
      EXPECT_EQ(ti.dtype, kv_bits == 8 ? DType::kU8 : DType::kU16) << g.value(*in).name;
      EXPECT_EQ(ti.quant.kind, QuantKind::kPerTensor);
      EXPECT_EQ(ti.quant.bits, kv_bits);
      EXPECT_EQ(g.type(*out).dtype, ti.dtype);
      EXPECT_EQ(g.type(*out).quant, ti.quant) << g.value(*out).name;
    }
  }
  const ir::TensorType& mask = g.type(*g.find_value("attention_mask"));
  EXPECT_EQ(mask.dtype, DType::kU16);
  EXPECT_EQ(mask.quant, quant::mask_params());
  const ir::TensorType& logits = g.type(g.outputs()[0]);
  EXPECT_EQ(g.value(g.outputs()[0]).name, "logits");
  EXPECT_EQ(logits.dtype, DType::kU16);
  EXPECT_EQ(logits.quant.bits, 16);
  for (const char* name : {"tokens", "input_pos"}) {
    const ir::TensorType& t = g.type(*g.find_value(name));
    EXPECT_EQ(t.dtype, DType::kI32) << name;
    EXPECT_FALSE(t.quant.is_quantized()) << name;
  }
  // Every real non-constant value is quantized per tensor; integer values are untouched.
  for (ir::ValueId id = 0; id < g.num_values(); ++id) {
    const ir::Value& v = g.value(id);
    if (v.is_constant()) continue;
    if (v.type.dtype == DType::kI32 || v.type.dtype == DType::kBool) {
      EXPECT_FALSE(v.type.quant.is_quantized()) << v.name;
      continue;
    }
    EXPECT_TRUE(v.type.dtype == DType::kU8 || v.type.dtype == DType::kU16) << v.name;
    EXPECT_EQ(v.type.quant.kind, QuantKind::kPerTensor) << v.name;
  }
}

TEST(QuantizedGraph, StoriesRecipeTypesAndSharing) {
  frontend::LlamaModel m = stories_shaped();
  frontend::BuildOptions build;
  build.context_len = 32;
  for (MaskKind mask : {MaskKind::kAdditive, MaskKind::kMaskedSoftmax}) {
    SCOPED_TRACE(mask == MaskKind::kAdditive ? "additive" : "masked softmax");
    build.mask = mask;
    QuantizedModel q = quantize(m, quant::recipe_config("stories").value(), build, {8, 1});
    ASSERT_EQ(q.graphs.size(), 2u);
    for (const ir::Graph& g : q.graphs) {
      HS_EXPECT_OK(ir::verify(g));
      expect_layout_ops_share(g);
      expect_activation_types(g, 8);
      // The GQA repeat and the concat sit in the KV group: one 8-bit encoding.
      EXPECT_EQ(g.type(*g.find_value("layers.2.attn.k_all.rep")).quant,
                g.type(*g.find_value("k_cache.2")).quant);
      EXPECT_EQ(g.type(*g.find_value("layers.2.attn.v_all")).quant.bits, 8);
      // Weights: 16a4w per channel, LM head 16a8w, embedding per-row int8, the rest f32.
      const ir::TensorType& wq = g.type(*g.find_value("layers.1.attn.q.weight"));
      EXPECT_EQ(wq.dtype, DType::kI4);
      EXPECT_EQ(wq.quant.kind, QuantKind::kPerAxis);
      EXPECT_EQ(wq.quant.scales.size(), 64u);
      const ir::TensorType& out = g.type(*g.find_value("output.weight"));
      EXPECT_EQ(out.dtype, DType::kI8);
      EXPECT_EQ(out.quant.qmax, 127);
      const ir::TensorType& emb = g.type(*g.find_value("tok_embeddings.weight"));
      EXPECT_EQ(emb.dtype, DType::kI8);
      EXPECT_EQ(emb.quant.kind, QuantKind::kPerAxis);
      EXPECT_EQ(emb.quant.scales.size(), 512u) << "one scale per token row";
      for (const char* name :
           {"layers.0.attn_norm.weight", "norm.weight", "rope.cos_table", "attn.scale"}) {
        EXPECT_EQ(g.type(*g.find_value(name)).dtype, DType::kF32) << name;
      }
      if (mask == MaskKind::kMaskedSoftmax) {
        EXPECT_EQ(g.type(*g.find_value("layers.0.attn.keep")).dtype, DType::kBool);
      }
    }
    // Prefill and decode: one weight buffer, identical params for every shared name.
    const ir::Graph& pre = q.graphs[0];
    const ir::Graph& dec = q.graphs[1];
    int64_t shared = 0, weights = 0;
    for (ir::ValueId id = 0; id < pre.num_values(); ++id) {
      const ir::Value& v = pre.value(id);
      auto other = dec.find_value(v.name);
      if (!other) continue;
      ++shared;
      const ir::Value& w = dec.value(*other);
      if (v.type.shape == w.type.shape) {
        EXPECT_EQ(v.type, w.type) << v.name;
      } else {
        EXPECT_EQ(v.type.quant, w.type.quant) << v.name;
        EXPECT_EQ(v.type.dtype, w.type.dtype) << v.name;
      }
      if (v.is_constant() && ir::dtype_is_integer_storage(v.type.dtype)) {
        ++weights;
        EXPECT_EQ(v.data->buffer.get(), w.data->buffer.get()) << v.name << ": not one buffer";
        EXPECT_EQ(v.data->offset, w.data->offset) << v.name;
      }
    }
    EXPECT_GT(shared, 300);
    EXPECT_EQ(weights, 5 * 7 + 2);  // 7 projections per layer, the LM head, the embedding
  }
}

TEST(QuantizedGraph, SchemesAndRulesPickWeightStorage) {
  frontend::LlamaModel m = stories_shaped();
  frontend::BuildOptions build;
  build.context_len = 24;
  quant::QuantConfig c;
  c.scheme = quant::parse_scheme("16a4w-block32").value();
  c.kv_bits = 16;
  c.rules.push_back(quant::parse_rule("layers.{0-1}.ffn.w2=16a8w").value());
  c.rules.push_back(quant::parse_rule("output=8a8w").value());
  QuantizedModel q = quantize(m, c, build, {1});
  ASSERT_EQ(q.graphs.size(), 1u);
  const ir::Graph& g = q.graphs[0];
  expect_activation_types(g, 16);
  const ir::TensorType& w2_block = g.type(*g.find_value("layers.2.ffn.w2.weight"));  // [64,172]
  EXPECT_EQ(w2_block.dtype, DType::kI4);
  EXPECT_EQ(w2_block.quant.kind, QuantKind::kPerBlock);
  EXPECT_EQ(w2_block.quant.block, 32);
  EXPECT_EQ(w2_block.quant.scales.size(), 64u * 6u) << "172 = 5 * 32 + 12: a partial 6th block";
  const ir::TensorType& w2_rule = g.type(*g.find_value("layers.1.ffn.w2.weight"));
  EXPECT_EQ(w2_rule.dtype, DType::kI8);
  EXPECT_EQ(w2_rule.quant.kind, QuantKind::kPerAxis);
  // The 8a8w rule on the LM head keeps 16-bit activations: rules never lower the default width,
  // and logits are 16-bit anyway.
  EXPECT_EQ(g.type(*g.find_value("lm_head.x_in")).quant.bits, 16);

  // 8a8w everywhere: 8-bit activations except the fixed 16-bit mask and logits.
  quant::QuantConfig c8;
  c8.scheme = quant::parse_scheme("8a8w").value();
  c8.kv_bits = 8;
  QuantizedModel q8 = quantize(m, c8, build, {1});
  ASSERT_EQ(q8.graphs.size(), 1u);
  const ir::Graph& g8 = q8.graphs[0];
  expect_layout_ops_share(g8);
  expect_activation_types(g8, 8);
  EXPECT_EQ(g8.type(*g8.find_value("layers.0.h")).dtype, DType::kU8);
  EXPECT_EQ(g8.type(*g8.find_value("layers.0.attn.probs")).quant.qmax, 255);
  // ... and a 16a8w rule raises the width of the groups its projection reads and writes.
  c8.rules.push_back(quant::parse_rule("layers.0.ffn.w2=16a8w").value());
  QuantizedModel mixed = quantize(m, c8, build, {1});
  ASSERT_EQ(mixed.graphs.size(), 1u);
  EXPECT_EQ(mixed.graphs[0].type(*mixed.graphs[0].find_value("layers.0.ffn.gated")).quant.bits, 16);
  EXPECT_EQ(mixed.graphs[0].type(*mixed.graphs[0].find_value("layers.0.ffn.w2")).quant.bits, 16);
  EXPECT_EQ(mixed.graphs[0].type(*mixed.graphs[0].find_value("layers.1.ffn.w2")).quant.bits, 8);
}

// SHA from source with per-head caches: each kv head's cache has its own encoding, shared with
// its own new entries.
TEST(QuantizedGraph, ShaFromSourceHasPerHeadEncodings) {
  frontend::LlamaModel m = stories_shaped();
  frontend::BuildOptions build;
  build.context_len = 24;
  build.form = frontend::AttentionForm::kShaFromSource;
  build.cache_layout = frontend::CacheLayout::kPerHead;
  QuantizedModel q = quantize(m, quant::recipe_config("stories").value(), build, {4, 1});
  ASSERT_EQ(q.graphs.size(), 2u);
  const ir::Graph& g = q.graphs[0];
  expect_layout_ops_share(g);
  int64_t distinct = 0;
  for (int64_t h = 0; h < 4; ++h) {
    const ir::TensorType& in = g.type(*g.find_value(fmt::format("k_cache.1.{}", h)));
    const ir::TensorType& out = g.type(*g.find_value(fmt::format("k_new.1.{}", h)));
    EXPECT_EQ(in.quant, out.quant);
    EXPECT_EQ(in.dtype, DType::kU8);
    distinct += in.quant != g.type(*g.find_value("k_cache.1.0")).quant;
  }
  EXPECT_GE(distinct, 2) << "per-head observers should give heads their own encodings";
  // Per-head q projections have their own observers too.
  EXPECT_NE(g.type(*g.find_value("layers.0.attn.q.0.proj")).quant,
            g.type(*g.find_value("layers.0.attn.q.1.proj")).quant);
}

}  // namespace
}  // namespace hs::ptq

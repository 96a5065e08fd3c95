// GGUF files of llama.cpp's qwen2, qwen3 and granite architectures, written by the test the way
// convert_hf_to_gguf writes them (<arch>.* keys; qwen2 attn_{q,k,v}.bias; qwen3
// attention.key_length != D/H and attn_{q,k}_norm; granite embedding_scale, residual_scale,
// attention.scale, logit_scale and interleaved q/k rows like llama; qwen rows rotate-half as
// stored; gemma / gemma3 with their norms (1 + w already added), gemma3's q/k norms, post norms
// and attention.sliding_window; chatglm's fused tensors and partial interleaved rope): each loads
// back to the model it was written from, weight for
// weight, with the family's features; hostile files fail naming what is wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "frontend/config_expect.h"
#include "headsplit/frontend/gguf.h"
#include "testing/family_configs.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;  // fastest axis first
  std::vector<float> values;
};

struct WriteOptions {
  std::string skip;                     // leave this tensor out
  std::string shorter;                  // write this 1-D tensor one element short
  std::vector<Tensor> extra;            // tensors a model does not use
  std::map<std::string, float> floats;  // metadata overrides (<arch>.key -> value)
  bool fused_qkv = false;               // chatglm: attn_qkv (+ bias) instead of attn_q/k/v
};

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void str(std::string_view s) {
    put<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes_.insert(bytes_.end(), p, p + s.size());
  }
  void pad() {
    while (bytes_.size() % 32 != 0) bytes_.push_back(std::byte{0});
  }
  std::string write(const std::string& name) const {
    const std::string path = testing::temp_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes_.data()),
              static_cast<std::streamsize>(bytes_.size()));
    return path;
  }

 private:
  std::vector<std::byte> bytes_;
};

// Rotate-half rows of `heads` heads back to llama.cpp's interleaved pairs, in the first `r` rows
// of each head (partial rotary: rows r.. stay).
std::vector<float> interleave(const Weight& w, int64_t heads, int64_t dh, int64_t r) {
  const int64_t cols = w.numel() / w.shape[0];
  std::vector<float> out(w.f32().size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < dh; ++j) {
      const int64_t k = j >= r ? j : j < r / 2 ? 2 * j : 2 * (j - r / 2) + 1;
      const int64_t from = h * dh + k;
      std::copy_n(&w.f32()[static_cast<size_t>((h * dh + j) * cols)], cols,
                  &out[static_cast<size_t>(from * cols)]);
    }
  }
  return out;
}

std::string write_gguf(const LlamaModel& m, const std::string& arch, const WriteOptions& o = {}) {
  const LlamaConfig& c = m.config;
  const bool interleaved =
      arch == "llama" || arch == "granite" || arch == "smollm3" || arch == "chatglm";
  const bool fused_qkv = arch == "phi3" || o.fused_qkv;
  const bool fused_gate_up = arch == "phi3" || arch == "chatglm";
  std::vector<Tensor> tensors;
  auto add = [&](const std::string& name, const Weight& w, std::vector<float> values = {}) {
    if (w.empty() || name == o.skip) return;
    if (values.empty()) values.assign(w.f32().begin(), w.f32().end());
    std::vector<uint64_t> ne(w.shape.rbegin(), w.shape.rend());
    if (name == o.shorter) {
      ne[0] -= 1;
      values.pop_back();
    }
    tensors.push_back({name, ne, std::move(values)});
  };
  auto qk = [&](const Weight& w, int64_t heads) {
    return interleaved ? interleave(w, heads, c.head_dim, c.rope_dims())
                       : std::vector<float>(w.f32().begin(), w.f32().end());
  };
  add("token_embd.weight", m.weights.tok_embeddings);
  add("output_norm.weight", m.weights.norm);
  add("output.weight", m.weights.output);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m.weights.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    add(p + "attn_norm.weight", w.attn_norm);
    if (fused_qkv) {  // fused q | k | v rows (phi3: NEOX rope, rotate-half as stored)
      std::vector<float> qkv = qk(w.wq, c.n_heads), k = qk(w.wk, c.n_kv_heads);
      qkv.insert(qkv.end(), k.begin(), k.end());
      qkv.insert(qkv.end(), w.wv.f32().begin(), w.wv.f32().end());
      const auto rows = static_cast<uint64_t>(w.wq.shape[0] + 2 * w.wk.shape[0]);
      if (p + "attn_qkv.weight" != o.skip) {
        tensors.push_back({p + "attn_qkv.weight", {static_cast<uint64_t>(c.dim), rows}, qkv});
      }
      if (!w.bq.empty()) {
        std::vector<float> b = qk(w.bq, c.n_heads), bk = qk(w.bk, c.n_kv_heads);
        b.insert(b.end(), bk.begin(), bk.end());
        b.insert(b.end(), w.bv.f32().begin(), w.bv.f32().end());
        tensors.push_back({p + "attn_qkv.bias", {rows}, b});
      }
    } else {
      add(p + "attn_q.weight", w.wq, qk(w.wq, c.n_heads));
      add(p + "attn_k.weight", w.wk, qk(w.wk, c.n_kv_heads));
      add(p + "attn_v.weight", w.wv);
    }
    add(p + "attn_output.weight", w.wo);
    if (!fused_qkv) {
      if (!w.bq.empty()) add(p + "attn_q.bias", w.bq, qk(w.bq, c.n_heads));
      if (!w.bk.empty()) add(p + "attn_k.bias", w.bk, qk(w.bk, c.n_kv_heads));
      add(p + "attn_v.bias", w.bv);
    }
    add(p + "attn_q_norm.weight", w.q_norm);
    add(p + "attn_k_norm.weight", w.k_norm);
    add(p + "ffn_norm.weight", w.ffn_norm);
    add(p + "post_attention_norm.weight", w.post_attn_norm);
    add(p + "post_ffw_norm.weight", w.post_ffn_norm);
    add(p + "ffn_down.weight", w.w2);
    if (fused_gate_up) {  // ffn_up = gate rows | up rows
      std::vector<float> gate_up(w.w1.f32().begin(), w.w1.f32().end());
      gate_up.insert(gate_up.end(), w.w3.f32().begin(), w.w3.f32().end());
      tensors.push_back({p + "ffn_up.weight",
                         {static_cast<uint64_t>(c.dim), static_cast<uint64_t>(2 * c.hidden_dim)},
                         gate_up});
    } else {
      add(p + "ffn_gate.weight", w.w1);
      add(p + "ffn_up.weight", w.w3);
    }
  }
  if (c.longrope) {
    const auto half = static_cast<uint64_t>(c.rope_dims() / 2);
    for (const auto& [name, list] :
         {std::pair{"rope_factors_short.weight", &c.longrope->short_factor},
          std::pair{"rope_factors_long.weight", &c.longrope->long_factor}}) {
      if (name == o.skip) continue;
      tensors.push_back({name, {half}, std::vector<float>(list->begin(), list->end())});
    }
  }
  tensors.insert(tensors.end(), o.extra.begin(), o.extra.end());

  std::vector<std::pair<std::string, uint32_t>> uints = {{"embedding_length", c.dim},
                                                         {"block_count", c.n_layers},
                                                         {"feed_forward_length", c.hidden_dim},
                                                         {"attention.head_count", c.n_heads},
                                                         {"attention.head_count_kv", c.n_kv_heads},
                                                         {"context_length", c.max_seq_len},
                                                         {"vocab_size", c.vocab_size}};
  if (c.head_dim != c.dim / c.n_heads) {
    uints.push_back({"attention.key_length", c.head_dim});
    uints.push_back({"attention.value_length", c.head_dim});
  }
  if (c.rotary_dim > 0) uints.push_back({"rope.dimension_count", c.rotary_dim});
  if (c.longrope) {
    uints.push_back({"rope.scaling.original_context_length",
                     c.longrope->original_max_position_embeddings});
    uints.push_back({"attention.sliding_window", 0});  // Phi-4: none
  }
  std::map<std::string, float> floats = {
      {"attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps)},
      {"rope.freq_base", static_cast<float>(c.rope_theta)}};
  if (arch == "granite") {
    floats["embedding_scale"] = static_cast<float>(c.embedding_multiplier);
    floats["residual_scale"] = static_cast<float>(c.residual_multiplier);
    floats["attention.scale"] = static_cast<float>(c.attention_multiplier.value_or(1.0));
    floats["logit_scale"] = static_cast<float>(c.logits_scaling);
  }
  if (arch == "gemma3") {
    uints.push_back({"attention.sliding_window", static_cast<uint32_t>(c.sliding_window)});
    // llama.cpp's gemma3 default is 6; another pattern (the first global layer + 1) is written.
    int64_t first_global = 0;
    while (c.is_sliding(first_global)) ++first_global;
    if (first_global + 1 != 6) {
      uints.push_back({"attention.sliding_window_pattern", static_cast<uint32_t>(first_global + 1)});
    }
    if (c.final_logit_softcapping > 0) {
      floats["final_logit_softcapping"] = static_cast<float>(c.final_logit_softcapping);
    }
  }
  if (c.longrope) floats["rope.scaling.attn_factor"] = static_cast<float>(c.longrope->attention_factor);
  for (const auto& [k, v] : o.floats) floats[k] = v;

  Bytes b;
  b.put<uint32_t>(0x46554747);
  b.put<uint32_t>(3);
  b.put<uint64_t>(tensors.size());
  b.put<uint64_t>(1 + uints.size() + floats.size());
  b.str("general.architecture");
  b.put<uint32_t>(static_cast<uint32_t>(GgufType::kString));
  b.str(arch);
  for (const auto& [k, v] : uints) {
    b.str(arch + "." + k);
    b.put<uint32_t>(static_cast<uint32_t>(GgufType::kU32));
    b.put<uint32_t>(v);
  }
  for (const auto& [k, v] : floats) {
    b.str(arch + "." + k);
    b.put<uint32_t>(static_cast<uint32_t>(GgufType::kF32));
    b.put<float>(v);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    b.str(t.name);
    b.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t n : t.ne) b.put<uint64_t>(n);
    b.put<uint32_t>(0);  // F32
    b.put<uint64_t>(offset);
    offset += (t.values.size() * 4 + 31) / 32 * 32;
  }
  b.pad();
  for (const Tensor& t : tensors) {
    for (float v : t.values) b.put<float>(v);
    b.pad();
  }
  return b.write(arch + ".gguf");
}

const std::pair<const char*, const char*> kFamilies[] = {
    {"qwen2.5", "qwen2"}, {"qwen3", "qwen3"},   {"granite", "granite"},
    {"llama3.2", "llama"}, {"gemma", "gemma"}, {"gemma3", "gemma3"}};

TEST(GgufFamilies, LoadBackTheModelTheyWereWrittenFrom) {
  for (const auto& [family, arch] : kFamilies) {
    SCOPED_TRACE(family);
    LlamaModel src = make_random_llama(testing::family_config(family), 9);
    src.config.rope_scaling.reset();  // GGUF carries it as rope_freqs (tested in gguf_test)
    HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_gguf_model(write_gguf(src, arch)));
    testing::expect_same_family_features(m.config, src.config);
    const std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(weights_bit_equal(*got[i].weight, *want[i].weight)) << want[i].name;
    }
  }
}

// smollm3: llama.cpp stores no key for the no-RoPE layers; its graph skips RoPE in every 4th
// layer, and so does the loaded config. q/k rows interleaved as for llama.
TEST(GgufFamilies, SmolLM3SkipsRopeInEveryFourthLayer) {
  frontend::LlamaConfig cfg = testing::family_config("smollm3");
  cfg.n_layers = 8;
  cfg.no_rope_layers = {3, 7};
  const LlamaModel src = make_random_llama(cfg, 9);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_gguf_model(write_gguf(src, "smollm3")));
  EXPECT_EQ(m.config.family, "smollm3");
  EXPECT_EQ(m.config.no_rope_layers, (std::vector<int64_t>{3, 7}));
  const std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(weights_bit_equal(*got[i].weight, *want[i].weight)) << want[i].name;
  }
}

void expect_error(const std::string& path, const std::string& part) {
  auto r = load_gguf_model(path);
  ASSERT_FALSE(r.ok()) << "expected an error with '" << part << "'";
  EXPECT_THAT(r.error().message(), HasSubstr(part));
}

// phi3 (Phi-4-mini): fused attn_qkv and ffn_up (gate | up) split at load, partial rope from
// rope.dimension_count, longrope from the factor tensors and its keys.
TEST(GgufFamilies, Phi3SplitsFusedTensorsAndReadsLongrope) {
  LlamaConfig cfg = testing::family_config("phi4");
  // float32 metadata: an attention factor that survives the round trip exactly.
  cfg.longrope->attention_factor = 1.25;
  const LlamaModel src = make_random_llama(cfg, 9);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_gguf_model(write_gguf(src, "phi3")));
  const LlamaConfig& a = m.config;
  EXPECT_EQ(a.family, "phi3");
  EXPECT_EQ(a.rotary_dim, 12);
  ASSERT_TRUE(a.longrope.has_value());
  EXPECT_EQ(a.longrope->short_factor, cfg.longrope->short_factor);
  EXPECT_EQ(a.longrope->long_factor, cfg.longrope->long_factor);
  EXPECT_EQ(a.longrope->original_max_position_embeddings, 16);
  EXPECT_EQ(a.longrope->attention_factor, 1.25);
  EXPECT_TRUE(a.tied_embeddings);
  const std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(weights_bit_equal(*got[i].weight, *want[i].weight)) << want[i].name;
  }
  expect_error(write_gguf(src, "phi3", {.skip = "rope_factors_long.weight"}),
                    "rope_factors_short.weight and rope_factors_long.weight come in pairs");
}

TEST(GgufFamilies, HostileFiles) {
  const LlamaModel qwen3 = make_random_llama(testing::family_config("qwen3"), 9);
  expect_error(write_gguf(qwen3, "qwen3", {.skip = "blk.1.attn_k_norm.weight"}),
               "tensor 'blk.1.attn_k_norm.weight' is missing");
  const LlamaModel qwen2 = make_random_llama(testing::family_config("qwen2.5"), 9);
  expect_error(write_gguf(qwen2, "qwen2", {.shorter = "blk.0.attn_k.bias"}),
               "tensor 'blk.0.attn_k.bias' has ne [31], expected [32]");
  const LlamaModel granite = make_random_llama(testing::family_config("granite"), 9);
  expect_error(write_gguf(granite, "granite", {.floats = {{"residual_scale", -0.22f}}}),
               "residual_multiplier is -0.22, expected a finite value > 0");
  expect_error(write_gguf(granite, "granite", {.floats = {{"attention.scale", 0.0f}}}),
               "attention_multiplier is 0, expected a finite value > 0");
  expect_error(
      write_gguf(qwen3, "qwen3", {.extra = {{"blk.0.ffn_gate_inp.weight", {4}, {1, 2, 3, 4}}}}),
      "1 tensor(s) that a qwen3 model does not use: blk.0.ffn_gate_inp.weight");
}

// chatglm (GLM-edge): q/k/v with biases, separate or fused (attn_qkv + attn_qkv.bias), ffn_up =
// gate | up, partial rope (rope.dimension_count 8 of Dh 16) with interleaved pairs in the rotary
// part only: loads back to the HF-layout glm model it was written from.
TEST(GgufFamilies, ChatGlmSplitsFusedTensorsAndPermutesTheRotaryPart) {
  const LlamaModel src = make_random_llama(testing::family_config("glm"), 9);
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "attn_qkv" : "attn_q/k/v");
    HS_ASSERT_OK_AND_ASSIGN(LlamaModel m,
                            load_gguf_model(write_gguf(src, "chatglm", {.fused_qkv = fused})));
    testing::expect_same_family_features(m.config, src.config);
    EXPECT_EQ(m.config.family, "glm");
    EXPECT_EQ(m.config.rotary_dim, 8);
    EXPECT_TRUE(m.config.attention_bias);
    const std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(weights_bit_equal(*got[i].weight, *want[i].weight)) << want[i].name;
    }
  }
  expect_error(write_gguf(src, "chatglm", {.shorter = "blk.1.attn_k.bias"}),
               "tensor 'blk.1.attn_k.bias' has ne [31], expected [32]");
}

// gemma3: llama.cpp makes every 6th layer global (sliding_window_pattern 6); q/k norms, post
// norms and the window from attention.sliding_window.
TEST(GgufFamilies, Gemma3SlidingWindowPattern) {
  frontend::LlamaConfig cfg = testing::family_config("gemma3");
  cfg.n_layers = 7;
  cfg.sliding_window_layers = {0, 1, 2, 3, 4, 6};
  const LlamaModel src = make_random_llama(cfg, 9);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_gguf_model(write_gguf(src, "gemma3")));
  EXPECT_EQ(m.config.sliding_window_layers, cfg.sliding_window_layers);
  EXPECT_EQ(m.config.sliding_window, 8);
  EXPECT_TRUE(m.config.qk_norm && m.config.post_norms);
  expect_error(write_gguf(src, "gemma3", {.skip = "blk.2.post_ffw_norm.weight"}),
               "tensor 'blk.2.post_ffw_norm.weight' is missing");
}

}  // namespace
}  // namespace hs::frontend

// The same model through every input format gives the same text: stories260K as llama2.c
// .bin, as GGUF (written by llama.cpp's converter), and as a Hugging Face folder written here
// (config.json, BF16 safetensors in 2 shards + index, tokenizer.json), each run through the
// static graph on the reference interpreter with the runner.
#include <gtest/gtest.h>

#include <cmath>

#include "frontend/hf_writer.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/runner/generator.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

constexpr int64_t kContext = 128;

struct Generated {
  std::vector<int32_t> prompt;
  std::vector<int32_t> tokens;
};

// Greedy tokens with a hybrid AR-8 / AR-1 pair of graphs.
Result<Generated> generate(const LlamaModel& model, std::string_view text, int64_t n) {
  if (!model.tokenizer) return Error(ErrorKind::kNotFound, model.source + ": no tokenizer");
  HS_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(*model.tokenizer));
  std::vector<ir::Graph> graphs;
  for (int64_t t : {8, 1}) {
    BuildOptions o;
    o.ar_len = t;
    o.context_len = kContext;
    HS_ASSIGN_OR_RETURN(ir::Graph g, build_llama(model, o));
    graphs.push_back(std::move(g));
  }
  HS_ASSIGN_OR_RETURN(auto step, irexec::GraphStepModel::create(std::move(graphs)));
  HS_ASSIGN_OR_RETURN(auto sampler, runner::Sampler::create(runner::SamplerOptions{}));
  Generated run;
  run.prompt = tok->encode(text, true);
  runner::GeneratorOptions go;
  go.max_new_tokens = n;
  runner::Generator gen(*step, *tok);
  HS_ASSIGN_OR_RETURN(runner::GenerationResult r, gen.generate(run.prompt, sampler, go));
  run.tokens = r.tokens;
  return run;
}

// Logits of one T = 16 step from an empty cache.
Result<std::vector<float>> prefill_logits(const LlamaModel& model, const std::vector<int32_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size());
  BuildOptions o;
  o.ar_len = T;
  o.context_len = kContext;
  HS_ASSIGN_OR_RETURN(ir::Graph g, build_llama(model, o));
  std::vector<ir::NamedTensor> in;
  in.push_back({"tokens", ir::Tensor::from_i32({1, T}, ids)});
  std::vector<float> mask(static_cast<size_t>(T * kContext), -255.0f);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    for (int64_t j = 0; j <= t; ++j) mask[static_cast<size_t>(t * kContext + kContext - T + j)] = 0.0f;
  }
  in.push_back({"attention_mask", ir::Tensor::from_f32({1, T, kContext}, mask)});
  in.push_back({"input_pos", ir::Tensor::from_i32({1, T}, pos)});
  const LlamaConfig& c = model.config;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    in.push_back({k_cache_name(l), ir::Tensor::zeros_f32({1, c.n_kv_heads, c.head_dim, kContext - T})});
    in.push_back({v_cache_name(l), ir::Tensor::zeros_f32({1, c.n_kv_heads, kContext - T, c.head_dim})});
  }
  HS_ASSIGN_OR_RETURN(auto outs, ir::run_graph(g, in));
  return outs[0].f;
}

TEST(ModelFormats, GgufGivesTheSameTokensAndLogitsAsBin) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel bin,
                          load_llama2c_model(testing::shared_file("models/stories260K/stories260K.bin"),
                                             testing::shared_file("models/stories260K/tok512.bin")));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel gguf,
                          load_gguf_model(testing::shared_file("models/stories260K/stories260K.gguf")));
  for (std::string_view prompt : {"", "Zoo", "Once upon a time, a little dog"}) {
    HS_ASSERT_OK_AND_ASSIGN(Generated a, generate(bin, prompt, 48));
    HS_ASSERT_OK_AND_ASSIGN(Generated b, generate(gguf, prompt, 48));
    EXPECT_EQ(a.prompt, b.prompt) << "prompt '" << prompt << "' tokenizes differently";
    EXPECT_EQ(a.tokens, b.tokens) << "prompt '" << prompt << "'";
  }
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 430, 259, 300, 322, 271, 266, 350, 289, 410, 294, 273};
  HS_ASSERT_OK_AND_ASSIGN(auto la, prefill_logits(bin, ids));
  HS_ASSERT_OK_AND_ASSIGN(auto lb, prefill_logits(gguf, ids));
  ASSERT_EQ(la.size(), lb.size());
  float max_diff = 0;
  for (size_t i = 0; i < la.size(); ++i) max_diff = std::max(max_diff, std::abs(la[i] - lb[i]));
  EXPECT_LE(max_diff, 1e-5f);
  std::printf("gguf vs bin: max |logits difference| = %g over 16 positions\n", max_diff);
}

TEST(ModelFormats, HuggingFaceBf16FolderGivesTheSameTokensAsBin) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel bin,
                          load_llama2c_model(testing::shared_file("models/stories260K/stories260K.bin"),
                                             testing::shared_file("models/stories260K/tok512.bin")));
  // The folder carries the same vocabulary as a SentencePiece-style tokenizer.json (the GGUF
  // copy's tokenizer: the llama2.c tokenizer.bin has no HF form).
  HS_ASSERT_OK_AND_ASSIGN(auto spm, load_gguf_tokenizer(testing::shared_file("models/stories260K/stories260K.gguf")));
  LlamaModel to_write = bin;
  to_write.tokenizer = spm;
  const std::string dir = testing::temp_dir();
  testing::HfWriteOptions w;
  w.dtype = StoredDType::kBF16;
  w.shards = 2;
  HS_ASSERT_OK(testing::write_hf_folder(to_write, dir, w));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel hf, load_hf_model(dir));
  EXPECT_EQ(hf.config.n_heads, bin.config.n_heads);
  EXPECT_EQ(hf.config.n_kv_heads, bin.config.n_kv_heads);
  // Exact: the folder equals the checkpoint with every weight rounded to BF16 (this checks the
  // BF16 decoding, the shards and the q/k row order bit for bit: same tokens, same logits).
  LlamaModel rounded = bin;
  auto round_bf16 = [](Weight& w) {
    if (w.empty()) return;
    std::vector<float> v(w.f32().begin(), w.f32().end());
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    w = Weight::from_floats(w.shape, v);
  };
  round_bf16(rounded.weights.tok_embeddings);
  round_bf16(rounded.weights.norm);
  round_bf16(rounded.weights.output);
  for (LayerWeights& l : rounded.weights.layers) {
    for (Weight* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.ffn_norm,
                      &l.w1, &l.w2, &l.w3}) {
      round_bf16(*w);
    }
  }
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 430, 259, 300, 322, 271, 266, 350, 289, 410, 294, 273};
  HS_ASSERT_OK_AND_ASSIGN(auto l_rounded, prefill_logits(rounded, ids));
  HS_ASSERT_OK_AND_ASSIGN(auto l_hf, prefill_logits(hf, ids));
  EXPECT_EQ(l_rounded, l_hf) << "HF BF16 logits differ from the BF16-rounded checkpoint's";
  for (std::string_view prompt : {"", "Zoo", "Once upon a time, a little dog"}) {
    HS_ASSERT_OK_AND_ASSIGN(Generated f32, generate(bin, prompt, 48));
    HS_ASSERT_OK_AND_ASSIGN(Generated r, generate(rounded, prompt, 48));
    HS_ASSERT_OK_AND_ASSIGN(Generated h, generate(hf, prompt, 48));
    EXPECT_EQ(f32.prompt, h.prompt) << "prompt '" << prompt << "' tokenizes differently";
    EXPECT_EQ(r.tokens, h.tokens) << "prompt '" << prompt << "'";
    // Against the float32 checkpoint itself: BF16 keeps 8 mantissa bits, which can flip a
    // near-tie between the top two logits late in a continuation (measured: "Zoo" diverges at
    // token 14, the other two prompts agree over all 48). The start must agree.
    size_t same = 0;
    while (same < f32.tokens.size() && same < h.tokens.size() && f32.tokens[same] == h.tokens[same]) ++same;
    std::printf("prompt '%.*s': HF BF16 agrees with the f32 checkpoint for %zu of 48 tokens\n",
                static_cast<int>(prompt.size()), prompt.data(), same);
    EXPECT_GE(same, 12u) << "prompt '" << prompt << "'";
  }
}

}  // namespace
}  // namespace hs::frontend

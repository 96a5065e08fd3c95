// Small configurations with each family's features (tests only): the shapes are tiny so the
// tests stay fast, the features are the family's (Qwen2.5 q/k/v biases, Qwen3 per-head q/k norm
// and Dh != D/H, SmolLM3 no-RoPE layers, Granite multipliers, Llama-3.2 llama3 RoPE scaling
// and an untied head; Gemma's GELU FFN, sqrt(D) embedding scale and one kv head; Gemma3's
// q/k norms, post norms, sliding-window layers with a local RoPE base, and logit soft-capping;
// Phi-4-mini partial rotary 0.75 with longrope scaling, GLM-edge partial rotary 0.5 with q/k/v
// biases; CodeGen2's LayerNorm with bias, parallel block, non-gated GELU FFN with biases, LM head
// bias and partial rotary 0.5).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::testing {

// "llama3.2", "qwen2.5", "qwen3", "smollm3", "granite", "gemma", "gemma3", "phi4", "glm",
// "codegen".
inline std::vector<std::string> family_names() {
  return {"llama3.2", "qwen2.5", "qwen3",  "smollm3", "granite",
          "gemma",    "gemma3",  "phi4",   "glm",     "codegen"};
}

// D 64, L 2, H 4, Hkv 2, Dh 16 (qwen3: 32), F 96, V 320, trained context 256. Gemma: Hkv 1;
// Gemma3: L 3 (layers 0 and 1 sliding, window 8; layer 2 global), Hkv 1, Dh 32. CodeGen: Hkv 4
// (= H, a multiple of CodeGen's 4 qkv groups).
inline frontend::LlamaConfig family_config(const std::string& family) {
  frontend::LlamaConfig c;
  c.name = family + "-tiny";
  c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16;
  c.hidden_dim = 96, c.vocab_size = 320, c.max_seq_len = 256;
  c.rms_eps = 1e-6;
  if (family == "llama3.2") {
    c.rope_theta = 500000.0;
    c.rope_scaling = frontend::RopeScaling{32.0, 1.0, 4.0, 64};
    c.tied_embeddings = false;
  } else if (family == "qwen2.5") {
    c.family = "qwen2";
    c.rope_theta = 1000000.0;
    c.attention_bias = true;
  } else if (family == "qwen3") {
    c.family = "qwen3";
    c.rope_theta = 1000000.0;
    c.head_dim = 32;  // != D / H
    c.qk_norm = true;
    c.tied_embeddings = false;
  } else if (family == "smollm3") {
    c.family = "smollm3";
    c.rope_theta = 5000000.0;
    c.no_rope_layers = {1};
  } else if (family == "granite") {
    c.family = "granite";
    c.embedding_multiplier = 12.0;
    c.attention_multiplier = 0.0625;
    c.residual_multiplier = 0.22;
    c.logits_scaling = 8.0;
  } else if (family == "gemma") {
    c.family = "gemma";
    c.n_kv_heads = 1;
    c.ffn_act = frontend::FfnActivation::kGeluTanh;
    c.embedding_multiplier = 8.0;  // sqrt(D)
  } else if (family == "gemma3") {
    c.family = "gemma3";
    c.n_layers = 3, c.n_kv_heads = 1, c.head_dim = 32;
    c.rope_theta = 1000000.0;
    c.ffn_act = frontend::FfnActivation::kGeluTanh;
    c.embedding_multiplier = 8.0;
    c.qk_norm = true;
    c.post_norms = true;
    c.sliding_window = 8;
    c.sliding_window_layers = {0, 1};  // sliding_window_pattern 3
    c.rope_local_theta = 10000.0;
    c.final_logit_softcapping = 5.0;
  } else if (family == "phi4") {
    c.family = "phi3";
    c.rotary_dim = 12;  // 0.75 * Dh
    // longrope: original context 16 < the tests' contexts (32, 48, 64): the long factors.
    frontend::LongRope lr;
    for (int i = 0; i < 6; ++i) {
      lr.short_factor.push_back(1.0 + 0.25 * i);
      lr.long_factor.push_back(1.5 + 2.0 * i);
    }
    lr.original_max_position_embeddings = 16;
    // transformers' default: sqrt(1 + ln(256 / 16) / ln(16)) (what the HF reader computes).
    lr.attention_factor = std::sqrt(2.0);
    c.longrope = lr;
  } else if (family == "glm") {
    c.family = "glm";
    c.rotary_dim = 8;  // 0.5 * Dh, interleaved pairs in the checkpoint
    c.attention_bias = true;
    c.tied_embeddings = false;
  } else if (family == "codegen") {
    c.family = "codegen";
    c.n_kv_heads = 4;
    c.rms_eps = 1e-5;  // layer_norm_epsilon
    c.rotary_dim = 8;  // 0.5 * Dh, interleaved pairs in the checkpoint
    c.ffn_act = frontend::FfnActivation::kGeluTanh;  // gelu_new
    c.norm = frontend::NormKind::kLayer;
    c.parallel_block = true;
    c.gated_ffn = false, c.ffn_bias = true, c.lm_head_bias = true;
    c.tied_embeddings = false;
  }
  return c;
}

// The named shapes of the families above ("llama3.2-3b", "qwen2.5-0.5b", ...: see
// frontend::named_config), as published.
inline std::vector<std::string> published_shape_names() {
  return {"llama3.2-1b", "llama3.2-3b", "qwen2.5-0.5b",   "qwen2.5-1.5b",
          "qwen3-0.6b",  "qwen3-1.7b",  "smollm3-3b",     "granite-3.3-2b",
          "gemma-2b",    "gemma3-1b",   "phi-4-mini",     "glm-edge-1.5b",
          "codegen2-1b"};
}

// A named shape's attention as published (D, H, Hkv, Dh, biases, q/k norms, RoPE base and
// scaling, multipliers, partial rotary, sliding window), with L 2 (layer 1 without RoPE when the
// family has such layers; Gemma3: layer 0 sliding-window, layer 1 global), F 128
// and V 256: the FFN and the LM head do not take part in the split, and small ones keep the
// reference interpreter fast.
inline frontend::LlamaConfig published_attention(const std::string& name) {
  frontend::LlamaConfig c = frontend::named_config(name).value();
  c.n_layers = 2;
  c.hidden_dim = 128;
  c.vocab_size = 256;
  if (!c.no_rope_layers.empty()) c.no_rope_layers = {1};
  if (!c.sliding_window_layers.empty()) c.sliding_window_layers = {0};
  return c;
}

// A llama2c-style tokenizer of `vocab` pieces: <unk>, <s>, </s>, the 256 byte pieces, then
// single characters and made-up pieces (no end-of-generation id: runs decode every token).
inline tokenizer::TokenizerData tiny_tokenizer(int64_t vocab) {
  tokenizer::TokenizerData t;
  t.kind = tokenizer::TokenizerKind::kLlama2c;
  t.pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) t.pieces.push_back(fmt::format("<0x{:02X}>", b));
  for (int i = 0; static_cast<int64_t>(t.pieces.size()) < vocab; ++i) {
    t.pieces.push_back(i < 95 ? std::string(1, static_cast<char>(' ' + i)) : fmt::format("w{}", i));
  }
  for (size_t i = 0; i < t.pieces.size(); ++i) t.scores.push_back(-static_cast<float>(i));
  t.bos_id = 1;
  t.eos_id = -1;
  t.unk_id = 0;
  t.max_token_length = 6;
  return t;
}

// make_random_llama(family_config(family), seed) with tiny_tokenizer(V).
inline frontend::LlamaModel family_model(const std::string& family, uint64_t seed) {
  frontend::LlamaModel m = frontend::make_random_llama(family_config(family), seed);
  m.tokenizer = tiny_tokenizer(m.config.vocab_size);
  return m;
}

}  // namespace hs::testing

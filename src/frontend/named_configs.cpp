// The named configurations: published config.json values of real models (random weights in
// these shapes drive `headsplit report`, the benchmarks and tests).
#include <fmt/ranges.h>

#include <cmath>

#include "headsplit/frontend/llama_model.h"

namespace hs::frontend {

namespace {

// One named shape: the published config.json values of the model (L, D, F, H, Hkv, Dh, V,
// trained context, theta, eps) and its family features.
struct NamedShape {
  const char* name;
  void (*fill)(LlamaConfig& c);
};

void llama3_scaling(LlamaConfig& c, double factor) {
  c.rope_scaling = RopeScaling{factor, 1.0, 4.0, 8192};
}

const NamedShape kNamedShapes[] = {
    {"stories260k",
     [](LlamaConfig& c) {
       c.dim = 64, c.n_layers = 5, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 8;
       c.hidden_dim = 172, c.vocab_size = 512, c.max_seq_len = 512;
     }},
    {"smollm2-135m",
     [](LlamaConfig& c) {
       c.dim = 576, c.n_layers = 30, c.n_heads = 9, c.n_kv_heads = 3, c.head_dim = 64;
       c.hidden_dim = 1536, c.vocab_size = 49152, c.max_seq_len = 8192;
       c.rope_theta = 100000.0;
     }},
    {"llama3.2-1b",
     [](LlamaConfig& c) {
       c.dim = 2048, c.n_layers = 16, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64;
       c.hidden_dim = 8192, c.vocab_size = 128256, c.max_seq_len = 131072;
       c.rope_theta = 500000.0;
       llama3_scaling(c, 32.0);
     }},
    {"llama3.2-3b",
     [](LlamaConfig& c) {
       c.dim = 3072, c.n_layers = 28, c.n_heads = 24, c.n_kv_heads = 8, c.head_dim = 128;
       c.hidden_dim = 8192, c.vocab_size = 128256, c.max_seq_len = 131072;
       c.rope_theta = 500000.0;
       llama3_scaling(c, 32.0);
     }},
    {"qwen2.5-0.5b",
     [](LlamaConfig& c) {
       c.family = "qwen2";
       c.dim = 896, c.n_layers = 24, c.n_heads = 14, c.n_kv_heads = 2, c.head_dim = 64;
       c.hidden_dim = 4864, c.vocab_size = 151936, c.max_seq_len = 32768;
       c.rope_theta = 1000000.0, c.rms_eps = 1e-6, c.attention_bias = true;
     }},
    {"qwen2.5-1.5b",
     [](LlamaConfig& c) {
       c.family = "qwen2";
       c.dim = 1536, c.n_layers = 28, c.n_heads = 12, c.n_kv_heads = 2, c.head_dim = 128;
       c.hidden_dim = 8960, c.vocab_size = 151936, c.max_seq_len = 131072;
       c.rope_theta = 1000000.0, c.rms_eps = 1e-6, c.attention_bias = true;
     }},
    {"qwen3-0.6b",
     [](LlamaConfig& c) {
       c.family = "qwen3";
       c.dim = 1024, c.n_layers = 28, c.n_heads = 16, c.n_kv_heads = 8, c.head_dim = 128;
       c.hidden_dim = 3072, c.vocab_size = 151936, c.max_seq_len = 40960;
       c.rope_theta = 1000000.0, c.rms_eps = 1e-6, c.qk_norm = true;
     }},
    {"qwen3-1.7b",
     [](LlamaConfig& c) {
       c.family = "qwen3";
       c.dim = 2048, c.n_layers = 28, c.n_heads = 16, c.n_kv_heads = 8, c.head_dim = 128;
       c.hidden_dim = 6144, c.vocab_size = 151936, c.max_seq_len = 40960;
       c.rope_theta = 1000000.0, c.rms_eps = 1e-6, c.qk_norm = true;
     }},
    {"smollm3-3b",
     [](LlamaConfig& c) {
       c.family = "smollm3";
       c.dim = 2048, c.n_layers = 36, c.n_heads = 16, c.n_kv_heads = 4, c.head_dim = 128;
       c.hidden_dim = 11008, c.vocab_size = 128256, c.max_seq_len = 65536;
       c.rope_theta = 5000000.0, c.rms_eps = 1e-6;
       for (int64_t l = 3; l < c.n_layers; l += 4) c.no_rope_layers.push_back(l);  // interval 4
     }},
    {"granite-3.3-2b",
     [](LlamaConfig& c) {
       c.family = "granite";
       c.dim = 2048, c.n_layers = 40, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64;
       c.hidden_dim = 8192, c.vocab_size = 49159, c.max_seq_len = 131072;
       c.rope_theta = 10000000.0, c.rms_eps = 1e-5;
       c.embedding_multiplier = 12.0, c.attention_multiplier = 0.015625;
       c.residual_multiplier = 0.22, c.logits_scaling = 8.0;
     }},
    {"gemma-2b",
     [](LlamaConfig& c) {
       c.family = "gemma";
       c.dim = 2048, c.n_layers = 18, c.n_heads = 8, c.n_kv_heads = 1, c.head_dim = 256;
       c.hidden_dim = 16384, c.vocab_size = 256000, c.max_seq_len = 8192;
       c.rope_theta = 10000.0, c.rms_eps = 1e-6;
       c.ffn_act = FfnActivation::kGeluTanh;
       c.embedding_multiplier = std::sqrt(2048.0);  // 45.25
     }},
    {"gemma3-1b",
     [](LlamaConfig& c) {
       c.family = "gemma3";
       c.dim = 1152, c.n_layers = 26, c.n_heads = 4, c.n_kv_heads = 1, c.head_dim = 256;
       c.hidden_dim = 6912, c.vocab_size = 262144, c.max_seq_len = 32768;
       c.rope_theta = 1000000.0, c.rms_eps = 1e-6;
       c.ffn_act = FfnActivation::kGeluTanh;
       c.embedding_multiplier = std::sqrt(1152.0);
       c.qk_norm = true;
       c.post_norms = true;
       c.sliding_window = 512;
       c.rope_local_theta = 10000.0;
       for (int64_t l = 0; l < c.n_layers; ++l) {  // sliding_window_pattern 6: every 6th global
         if ((l + 1) % 6 != 0) c.sliding_window_layers.push_back(l);
       }
     }},
    {"phi-4-mini",
     [](LlamaConfig& c) {
       c.family = "phi3";
       c.dim = 3072, c.n_layers = 32, c.n_heads = 24, c.n_kv_heads = 8, c.head_dim = 128;
       c.hidden_dim = 8192, c.vocab_size = 200064, c.max_seq_len = 131072;
       c.rope_theta = 10000.0, c.rms_eps = 1e-5;
       c.rotary_dim = 96;  // partial_rotary_factor 0.75
       // longrope, original context 4096: the published shape; the 48 short/long factors are
       // placeholders (1.0: random-weight shapes only, where they change no cost), the
       // attention factor is transformers' default sqrt(1 + ln(131072/4096) / ln(4096)).
       LongRope lr;
       lr.short_factor.assign(48, 1.0);
       lr.long_factor.assign(48, 1.0);
       lr.original_max_position_embeddings = 4096;
       lr.attention_factor = std::sqrt(1.0 + std::log(32.0) / std::log(4096.0));
       c.longrope = lr;
     }},
    {"glm-edge-1.5b",
     [](LlamaConfig& c) {
       c.family = "glm";
       c.dim = 2048, c.n_layers = 28, c.n_heads = 16, c.n_kv_heads = 4, c.head_dim = 128;
       c.hidden_dim = 6144, c.vocab_size = 59264, c.max_seq_len = 8192;
       c.rope_theta = 10000.0, c.rms_eps = 1e-5;
       c.rotary_dim = 64;  // partial_rotary_factor 0.5 (interleaved pairs in the checkpoint)
       c.attention_bias = true, c.tied_embeddings = false;
     }},
    {"codegen2-1b",  // Salesforce/codegen2-1B (CodeGenForCausalLM)
     [](LlamaConfig& c) {
       c.family = "codegen";
       c.dim = 2048, c.n_layers = 16, c.n_heads = 16, c.n_kv_heads = 16, c.head_dim = 128;
       c.hidden_dim = 8192, c.vocab_size = 51200, c.max_seq_len = 2048;
       c.rope_theta = 10000.0, c.rms_eps = 1e-5;
       c.rotary_dim = 64;  // rotary_dim 64 of 128 (interleaved pairs in the checkpoint)
       c.ffn_act = FfnActivation::kGeluTanh;  // gelu_new
       c.norm = NormKind::kLayer, c.parallel_block = true;
       c.gated_ffn = false, c.ffn_bias = true, c.lm_head_bias = true;
       c.tied_embeddings = false;
     }},
};

}  // namespace

std::vector<std::string> named_config_names() {
  std::vector<std::string> out;
  for (const NamedShape& s : kNamedShapes) out.emplace_back(s.name);
  return out;
}

Result<LlamaConfig> named_config(std::string_view name) {
  for (const NamedShape& s : kNamedShapes) {
    if (name != s.name) continue;
    LlamaConfig c;
    c.name = std::string(name);
    s.fill(c);
    return c;
  }
  return errorf(ErrorKind::kNotFound, "unknown model config '{}', expected one of {}", name,
                fmt::join(named_config_names(), ", "));
}

}  // namespace hs::frontend

// Hugging Face config keys and fused weights of the partial-rotary families (hf_phi_glm.cpp):
// Phi-3 / Phi-4 (Phi3ForCausalLM, model_type phi3) and GLM / GLM-edge (GlmForCausalLM, glm).
// Private to the HF reader (hf_model.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "headsplit/frontend/llama_model.h"
#include "hf_json.h"

namespace hs::frontend::hf {

// True for the RoPE scaling types read here ("longrope", and its old name "su").
bool is_longrope_type(const std::string& type);

// The phi3 / glm keys on top of the Llama ones: partial_rotary_factor (rotary_dim = Dh * factor;
// glm default 0.5), longrope scaling (phi3), sliding_window (phi3: refused unless it covers the
// trained context, where it changes nothing), glm's attention_bias default (true).
Status read_phi_glm_features(const json::Json& j, LlamaConfig& c, const std::string& what);

// Rows [begin, end) of a [rows, cols] weight as a view (no copy): the fused projections
// (qkv_proj, gate_up_proj) are split into the separate ones this way.
Weight weight_row_range(const Weight& w, int64_t begin, int64_t end);

}  // namespace hs::frontend::hf

// Test helper: writes a LlamaModel as a Hugging Face folder (config.json, safetensors in one
// file or shards + index, tokenizer.json, tokenizer_config.json, generation_config.json), so
// HF-reader tests and end-to-end tests can compare against the model's other sources.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::testing {

struct HfWriteOptions {
  frontend::StoredDType dtype = frontend::StoredDType::kF32;
  int shards = 1;               // 1: model.safetensors; N > 1: model-0000K-of-0000N + index
  std::string skip_tensor;      // leave this HF tensor out (for missing-tensor tests)
  bool write_tokenizer = true;  // when the model has a tokenizer
  bool rope_parameters = false;  // theta and scaling under "rope_parameters" (transformers 5)
  // Gemma3: write sliding_window_pattern N instead of layer_types (the model's sliding layers
  // must be the pattern's: every N-th layer global).
  int64_t sliding_window_pattern = 0;
};

// Writes the model as it is: its q/k rows are already in rotate-half order, which is the HF
// order. config.family picks the architecture (Qwen2/Qwen3/SmolLM3/Granite/Gemma/Gemma3/Phi3/
// Glm/LlamaForCausalLM) and its keys (no_rope_layers, Granite's multipliers, Gemma's activation
// and (1 + w) norms stored as w - 1, Gemma3's sliding window, partial_rotary_factor, longrope;
// Qwen2 writes no attention_bias key). Phi3 writes fused qkv_proj and gate_up_proj, Glm fused
// gate_up_proj and q/k rows with interleaved pairs in the rotary part. CodeGen (family
// "codegen") writes CodeGenForCausalLM's keys and tensors (transformer.h.N...), qkv_proj fused
// in CodeGenAttention's 4-group query/value/key layout with interleaved q/k rows. A
// llama2c-kind tokenizer is not written (use an spm or byte-level one).
Status write_hf_folder(const frontend::LlamaModel& model, const std::string& dir,
                       const HfWriteOptions& options = {});

// tokenizer.json (+ tokenizer_config.json, generation_config.json) for `data`:
//   kByteLevelBpe: vocab, merges, control/user-defined tokens as added_tokens, the
//     pre-tokenizer of data.pre_tokenizer ("gpt2"/"gpt-2", "llama3", "smollm");
//   kSpm: byte_fallback BPE with a "▁" Replace (+ Prepend) normalizer; merges rebuilt from
//     the scores (each piece, best score first, split into two pieces of better score).
Status write_hf_tokenizer(const tokenizer::TokenizerData& data, const std::string& dir);

// One tensor of a safetensors file, data already encoded in `dtype`.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};
// Writes a safetensors file, tensors packed in order; the JSON header is padded with spaces
// so that 8 + its length is a multiple of `header_alignment` (8 as the Python writer; 1: none).
Status write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                         size_t header_alignment = 8);
// Encodes floats in F32, F16 or BF16 (round to nearest even).
std::vector<std::byte> encode_floats(std::span<const float> values, frontend::StoredDType dtype);

}  // namespace hs::testing

// Hugging Face model folders (LlamaForCausalLM and compatible, e.g. SmolLM2, Llama-3.x):
//   config.json                        architecture and sizes
//   model.safetensors, or model-0000K-of-0000N.safetensors + model.safetensors.index.json
//   tokenizer.json, tokenizer_config.json, generation_config.json (optional)
// Weights F32/F16/BF16 become float32 (F32 viewed in the mapping). HF q/k rows are already in
// the rotate-half layout: no permutation.
#pragma once

#include <string>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::frontend {

// Reads a config.json: architectures must contain LlamaForCausalLM (or model_type "llama"),
// hidden_act silu, rope_scaling absent or rope_type llama3; anything else is kUnsupported
// naming it. head_dim defaults to hidden_size / num_attention_heads, num_key_value_heads to
// num_attention_heads, tie_word_embeddings to false, rope_theta to 10000, rms_norm_eps to 1e-6.
Result<LlamaConfig> load_hf_config(const std::string& config_json_path);

// Reads tokenizer.json (+ tokenizer_config.json, generation_config.json when present) of a
// folder. model.type must be BPE:
//  - byte-level (ByteLevel pre-tokenizer or decoder) -> kByteLevelBpe: vocab, merges ("a b"
//    strings or ["a","b"] pairs), added tokens (special -> control, else user-defined), and
//    the pre-tokenizer named as llama.cpp does: "gpt2" (ByteLevel with its regex), "llama3"
//    (Split with the Llama-3 regex), "qwen2" (Split with the Qwen2 regex after an NFC
//    normalizer; another normalizer with it is kUnsupported), "smollm" (individual Digits,
//    then ByteLevel);
//  - SentencePiece-style (byte_fallback with a "▁" Metaspace or Replace normalizer) -> kSpm.
//    tokenizer.json has no scores, so they are derived from the merges: the piece made by the
//    merge of rank r (0 = first) scores -r, a piece no merge makes scores -(n_merges + id);
//    control, unknown and byte pieces score 0. Greedy highest-score merging then applies the
//    merges in rank order, as the BPE model does.
// bos/eos come from tokenizer_config.json (strings or {"content": ...}), eos_token_id of
// generation_config.json (a number or a list) adds extra EOS ids.
Result<tokenizer::TokenizerData> load_hf_tokenizer(const std::string& dir);

// Loads config, weights and (when tokenizer.json exists) the tokenizer of a folder.
Result<LlamaModel> load_hf_model(const std::string& dir);

}  // namespace hs::frontend

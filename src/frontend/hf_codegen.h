// Hugging Face CodeGen / CodeGen2 folders (CodeGenForCausalLM, model_type codegen): config keys
// and the fused, interleaved attention weights (hf_codegen.cpp). Private to the HF reader
// (hf_model.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "hf_json.h"

namespace hs::frontend::hf {

// CodeGen's config.json (GPT-J style keys) as a LlamaConfig: n_embd, n_head, n_layer, n_inner
// (null: 4 * n_embd), rotary_dim (absent: 64, CodeGenConfig's default; null refused),
// n_positions (else n_ctx, else 2048),
// activation_function, layer_norm_epsilon, vocab_size, tie_word_embeddings (default false).
// Family "codegen": LayerNorm with bias, parallel block, non-gated FFN with biases, LM head bias,
// Hkv = H, RoPE base 10000 on the first rotary_dim dims of each head. `what` names the file.
Result<LlamaConfig> read_codegen_config(const json::Json& j, const std::string& what);

// Loads a tensor of the checkpoint by name, checking its shape.
using LoadTensor =
    std::function<Result<Weight>(const std::string& name, const std::vector<int64_t>& shape)>;

// The weights of a CodeGen checkpoint (transformer.wte, transformer.h.N.{ln_1, attn.qkv_proj,
// attn.out_proj, mlp.fc_in, mlp.fc_out}, transformer.ln_f, lm_head with bias). The fused
// qkv_proj [3D, D] is split into wq, wk, wv (split_codegen_qkv) and the q/k rows permuted from
// interleaved to rotate-half pairs within the rotary part.
Result<LlamaWeights> load_codegen_weights(const LlamaConfig& c, const LoadTensor& load);

// transformers' CodeGenAttention layout of qkv_proj [3D, D]: the rows form mp_num = 4 groups of
// 3 * D/4 rows; group g holds, in this order, the query, value and key rows of heads
// [g*H/4, (g+1)*H/4). Returns {wq, wk, wv}, each [D, D] with head h at rows [h*Dh, (h+1)*Dh).
struct QkvSplit {
  Weight wq, wk, wv;
};
QkvSplit split_codegen_qkv(const Weight& qkv, int64_t dim);

// mp_num of transformers' CodeGenAttention (the number of row groups of qkv_proj).
inline constexpr int64_t kCodegenQkvGroups = 4;

}  // namespace hs::frontend::hf

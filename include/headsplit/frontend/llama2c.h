// llama2.c checkpoints (Karpathy's run.c "legacy" version-0 float32 format).
//
// Layout, little endian: 7 x int32 header {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len}, then float32 arrays token_embedding[V,D], rms_att[L,D], wq[L,H*Dh,D],
// wk[L,Hkv*Dh,D], wv[L,Hkv*Dh,D], wo[L,D,H*Dh], rms_ffn[L,D], w1[L,F,D], w2[L,D,F],
// w3[L,F,D], rms_final[D], freq_cis_real[seq_len,Dh/2], freq_cis_imag[seq_len,Dh/2] (unused),
// and, when vocab_size < 0 (unshared classifier, V = -vocab_size), wcls[V,D].
#pragma once

#include <string>

#include "headsplit/frontend/llama_model.h"

namespace hs::frontend {

inline constexpr size_t kLlama2cHeaderBytes = 28;

// Loads a llama2.c checkpoint, memory-mapped: weights are views into the file except wq and
// wk, whose rows are permuted from interleaved RoPE pairs to rotate-half. With a tokenizer
// path, also loads that llama2.c tokenizer.bin (its vocabulary must have V pieces).
// Config: Dh = D / H, rope_theta 10000, rms_eps 1e-5, max_seq_len = seq_len.
Result<LlamaModel> load_llama2c_model(const std::string& bin_path,
                                      const std::string& tokenizer_path);

}  // namespace hs::frontend

// Checks that a loaded config carries the family features of the config it was written from
// (the loader tests of every checkpoint format).
#pragma once

#include <gtest/gtest.h>

#include "headsplit/frontend/llama_model.h"

namespace hs::testing {

// Family, shape and every family feature that a checkpoint of any format records (not RoPE
// scaling, no-RoPE layers, partial rotary or longrope: each format's tests check those).
inline void expect_same_family_features(const frontend::LlamaConfig& a,
                                        const frontend::LlamaConfig& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.embedding_multiplier, b.embedding_multiplier);
  EXPECT_EQ(a.attention_multiplier.has_value(), b.attention_multiplier.has_value());
  EXPECT_EQ(a.attention_multiplier.value_or(0), b.attention_multiplier.value_or(0));
  EXPECT_EQ(a.residual_multiplier, b.residual_multiplier);
  EXPECT_EQ(a.logits_scaling, b.logits_scaling);
  EXPECT_EQ(a.ffn_act, b.ffn_act);
  EXPECT_EQ(a.post_norms, b.post_norms);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.sliding_window_layers, b.sliding_window_layers);
  EXPECT_EQ(a.rope_local_theta, b.rope_local_theta);
  EXPECT_EQ(a.final_logit_softcapping, b.final_logit_softcapping);
  EXPECT_EQ(a.norm, b.norm);
  EXPECT_EQ(a.parallel_block, b.parallel_block);
  EXPECT_EQ(a.gated_ffn, b.gated_ffn);
  EXPECT_EQ(a.ffn_bias, b.ffn_bias);
  EXPECT_EQ(a.lm_head_bias, b.lm_head_bias);
}

}  // namespace hs::testing

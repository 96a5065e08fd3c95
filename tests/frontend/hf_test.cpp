// Hugging Face folders: stories260K written by the test (BF16 shards + index, F32, F16) loads
// back with the same config and (rounded) weights; tokenizers (SentencePiece-style from the
// stories GGUF vocabulary, byte-level from GPT-2's); config.json and missing-weight errors.
#include "headsplit/frontend/hf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "frontend/hf_writer.h"
#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;

// stories260K weights from the .bin with the tokenizer of the .gguf (SentencePiece pieces).
LlamaModel stories_with_spm_tokenizer() {
  auto bin = load_llama2c_model(testing::shared_file("models/stories260K/stories260K.bin"), "");
  auto tok = load_gguf_tokenizer(testing::shared_file("models/stories260K/stories260K.gguf"));
  HS_CHECK(bin.ok() && tok.ok(), "shared stories260K files must load");
  LlamaModel m = std::move(bin).value();
  m.tokenizer = std::move(tok).value();
  return m;
}

float round_trip(float x, StoredDType dtype) {
  if (dtype == StoredDType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  if (dtype == StoredDType::kF16) return f16_to_f32(f32_to_f16(x));
  return x;
}

void expect_same_config(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_seq_len, b.max_seq_len);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.rope_scaling.has_value(), b.rope_scaling.has_value());
}

class HfStories : public ::testing::TestWithParam<testing::HfWriteOptions> {};

TEST_P(HfStories, LoadsWhatTheWriterWrote) {
  HS_REQUIRE_SHARED();
  const LlamaModel src = stories_with_spm_tokenizer();
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(src, dir, GetParam()));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_hf_model(dir));
  expect_same_config(m.config, src.config);
  EXPECT_EQ(m.source, dir);
  const StoredDType dtype = GetParam().dtype;
  std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].weight->shape, want[i].weight->shape) << want[i].name;
    std::span<const float> g = got[i].weight->f32(), w = want[i].weight->f32();
    ASSERT_EQ(g.size(), w.size());
    for (size_t k = 0; k < g.size(); ++k) {
      ASSERT_EQ(g[k], round_trip(w[k], dtype)) << want[i].name << "[" << k << "]";
    }
  }
  // F32 tensors are views into the mapped file.
  const bool mapped = dynamic_cast<const MappedFile*>(m.weights.layers[0].wq.data.buffer.get());
  EXPECT_EQ(mapped, dtype == StoredDType::kF32);
  ASSERT_TRUE(m.tokenizer.has_value());
  EXPECT_EQ(m.tokenizer->kind, tokenizer::TokenizerKind::kSpm);
  EXPECT_EQ(m.tokenizer->pieces, src.tokenizer->pieces);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, HfStories,
    ::testing::Values(testing::HfWriteOptions{.dtype = StoredDType::kBF16, .shards = 2},
                      testing::HfWriteOptions{.dtype = StoredDType::kF32, .shards = 1},
                      testing::HfWriteOptions{.dtype = StoredDType::kF16, .shards = 3}));

TEST(HfModel, BiasesUntiedAndRopeScalingRoundTrip) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, named_config("stories260k"));
  c.attention_bias = true;
  c.tied_embeddings = false;
  c.rope_scaling = RopeScaling{16.0, 1.0, 4.0, 4096};
  const LlamaModel src = make_random_llama(c, 11);
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(src, dir, {.shards = 4}));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_hf_model(dir));
  expect_same_config(m.config, src.config);
  EXPECT_EQ(m.config.rope_scaling->factor, 16.0);
  EXPECT_EQ(m.config.rope_scaling->original_max_position_embeddings, 4096);
  EXPECT_FALSE(m.tokenizer.has_value());
  std::vector<NamedWeight> got = named_weights(m), want = named_weights(src);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(weights_bit_equal(*got[i].weight, *want[i].weight)) << want[i].name;
  }
  EXPECT_FALSE(m.weights.layers[4].bq.empty());
}

TEST(HfTokenizer, SentencePieceScoresFollowTheOriginalOrder) {
  HS_REQUIRE_SHARED();
  const LlamaModel src = stories_with_spm_tokenizer();
  const tokenizer::TokenizerData& want = *src.tokenizer;
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_tokenizer(want, dir));
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData got, load_hf_tokenizer(dir));
  EXPECT_EQ(got.kind, tokenizer::TokenizerKind::kSpm);
  EXPECT_EQ(got.pieces, want.pieces);
  EXPECT_EQ(got.types, want.types);  // <unk> unknown, <s> </s> control, <0x..> byte, rest normal
  EXPECT_EQ(got.bos_id, 1);
  EXPECT_EQ(got.eos_id, 2);
  EXPECT_EQ(got.unk_id, 0);
  EXPECT_TRUE(got.add_bos);
  EXPECT_TRUE(got.add_space_prefix);
  // Derived scores rank the merged pieces exactly as the original scores do.
  auto codepoints = [](const std::string& s) {
    return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; });
  };
  std::vector<size_t> merged;  // every multi-codepoint normal piece is made by a merge
  for (size_t i = 0; i < want.pieces.size(); ++i) {
    if (want.types[i] == tokenizer::TokenType::kNormal && codepoints(want.pieces[i]) > 1) {
      merged.push_back(i);
    }
  }
  EXPECT_EQ(merged.size(), 151u);  // 512 - 3 special - 256 byte - 102 single-codepoint pieces
  for (size_t i : merged) {
    // Made by a merge of rank r < n_merges <= 151 (unmerged pieces score below -259).
    EXPECT_GT(got.scores[i], -static_cast<float>(merged.size())) << want.pieces[i];
  }
  for (size_t a : merged) {
    for (size_t b : merged) {
      if (want.scores[a] > want.scores[b]) {
        ASSERT_GT(got.scores[a], got.scores[b]) << want.pieces[a] << " vs " << want.pieces[b];
      }
    }
  }
}

TEST(HfTokenizer, ByteLevelFromGpt2) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(
      tokenizer::TokenizerData want,
      load_gguf_tokenizer(testing::shared_file("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")));
  want.pre_tokenizer = "gpt2";
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_tokenizer(want, dir));
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData got, load_hf_tokenizer(dir));
  EXPECT_EQ(got.kind, tokenizer::TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(got.pieces, want.pieces);
  EXPECT_EQ(got.merges, want.merges);
  EXPECT_EQ(got.merges.size(), 50000u);
  EXPECT_EQ(got.pre_tokenizer, "gpt2");
  EXPECT_EQ(got.types[50256], tokenizer::TokenType::kControl);
  EXPECT_EQ(got.bos_id, 50256);
  EXPECT_EQ(got.eos_id, 50256);
  EXPECT_TRUE(got.scores.empty());
}

// A hand-written Llama-3 style tokenizer: pair merges, Split + ByteLevel, a post-processor
// that adds BOS, generation_config eos list.
TEST(HfTokenizer, Llama3StyleHandWritten) {
  const std::string dir = testing::temp_dir();
  const std::string regex =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)re";
  const std::string tok = R"({
    "added_tokens": [{"id": 5, "content": "<|begin_of_text|>", "special": true},
                     {"id": 6, "content": "<|eot_id|>", "special": true},
                     {"id": 7, "content": "<tool>", "special": false}],
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": ")" +
                          regex + R"("}, "behavior": "Isolated"},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "post_processor": {"type": "Sequence", "processors": [
        {"type": "ByteLevel"},
        {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                  {"Sequence": {"id": "A", "type_id": 0}}]}]},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
              "merges": [["a", "b"], ["ab", "c"]]}})";
  HS_ASSERT_OK(write_file_atomic(dir + "/tokenizer.json", tok));
  HS_ASSERT_OK(write_file_atomic(dir + "/generation_config.json",
                                 R"({"bos_token_id": 5, "eos_token_id": [6, 5, 6]})"));
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData t, load_hf_tokenizer(dir));
  EXPECT_EQ(t.kind, tokenizer::TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(t.pre_tokenizer, "llama3");
  EXPECT_THAT(t.merges, ::testing::ElementsAre("a b", "ab c"));
  EXPECT_EQ(t.pieces.size(), 8u);
  EXPECT_EQ(t.pieces[5], "<|begin_of_text|>");
  EXPECT_EQ(t.types[5], tokenizer::TokenType::kControl);
  EXPECT_EQ(t.types[7], tokenizer::TokenType::kUserDefined);
  EXPECT_EQ(t.types[4], tokenizer::TokenType::kNormal);
  EXPECT_EQ(t.bos_id, 5);
  EXPECT_EQ(t.eos_id, 6);
  EXPECT_THAT(t.extra_eos_ids, ::testing::ElementsAre(5));
  EXPECT_TRUE(t.add_bos);  // from the TemplateProcessing post-processor

  // tokenizer_config.json overrides: add_bos_token false, chat template as a named list.
  HS_ASSERT_OK(write_file_atomic(dir + "/tokenizer_config.json",
                                 R"({"add_bos_token": false, "eos_token": {"content": "<|eot_id|>"},
                                     "chat_template": [{"name": "tool_use", "template": "T"},
                                                       {"name": "default", "template": "D"}]})"));
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData t2, load_hf_tokenizer(dir));
  EXPECT_FALSE(t2.add_bos);
  EXPECT_EQ(t2.chat_template, "D");
  EXPECT_EQ(t2.eos_id, 6);

  HS_ASSERT_OK(write_file_atomic(dir + "/tokenizer_config.json", R"({"eos_token": "<nope>"})"));
  auto bad = load_hf_tokenizer(dir);
  EXPECT_EQ(bad.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(bad.error().message(), HasSubstr("eos_token '<nope>' is not in the vocabulary"));
}

TEST(HfTokenizer, RejectsBadVocabularies) {
  struct Case {
    const char* json;
    ErrorKind kind;
    const char* part;
  };
  const Case cases[] = {
      {R"({"model": {"type": "Unigram", "vocab": []}})", ErrorKind::kUnsupported,
       "model type 'Unigram' is not supported"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1026}}, "decoder": {"type": "ByteLevel"}})",
       ErrorKind::kCorrupt, "token 'b' has id 1026, outside 0..1025 (at most 1024 unused ids)"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}})", ErrorKind::kCorrupt,
       "id 0 is given to both"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})", ErrorKind::kParse,
       "merge 'a' is not two pieces"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}}})", ErrorKind::kUnsupported,
       "neither byte-level"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Sequence",
          "pretokenizers": [{"type": "Whitespace"}, {"type": "ByteLevel"}]}})",
       ErrorKind::kUnsupported, "is not one of the known byte-level ones"},
      {R"({"model": [1, 2]})", ErrorKind::kParse, "'model' object is missing"},
      {R"({"model": )", ErrorKind::kParse, "not valid JSON"},
  };
  for (const Case& c : cases) {
    const std::string dir = testing::temp_dir();
    HS_ASSERT_OK(write_file_atomic(dir + "/tokenizer.json", std::string(c.json)));
    auto r = load_hf_tokenizer(dir);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.kind(), c.kind) << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr(c.part));
    EXPECT_THAT(r.error().message(), HasSubstr("tokenizer.json"));
  }
}

// Ids may be left unused (o200k: 200000 vocabulary entries with ids up to 200018): the holes get
// empty kUnused pieces; more than 1024 unused ids is an error.
TEST(HfTokenizer, UnusedIdsBecomeEmptyUnusedPieces) {
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(write_file_atomic(
      dir + "/tokenizer.json",
      std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 3}, "merges": []},
          "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
          "added_tokens": [{"id": 4, "content": "<|x|>", "special": true}]})")));
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData t, load_hf_tokenizer(dir));
  ASSERT_EQ(t.pieces.size(), 5u);
  EXPECT_EQ(t.pieces[4], "<|x|>");
  EXPECT_EQ(t.types[4], tokenizer::TokenType::kControl);
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(t.pieces[i], "");
    EXPECT_EQ(t.types[i], tokenizer::TokenType::kUnused);
  }
  HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(t));
  EXPECT_EQ(tok->encode("<|x|>ab", false, /*parse_special=*/true),
            (std::vector<int32_t>{4, 0, 3}));
  HS_ASSERT_OK(write_file_atomic(
      dir + "/tokenizer.json",
      std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
          "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
          "added_tokens": [{"id": 1027, "content": "<|x|>", "special": true}]})")));
  auto far = load_hf_tokenizer(dir);
  ASSERT_FALSE(far.ok());
  EXPECT_THAT(far.error().message(), HasSubstr("token '<|x|>' has id 1027, outside 0..1026"));
}

// Writes a config.json that differs from a valid stories-like one by `patch`.
std::string config_dir(const std::string& patch_key, const std::string& patch_value) {
  const std::string dir = testing::temp_dir();
  nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", 64},
                      {"num_hidden_layers", 5},
                      {"num_attention_heads", 8},
                      {"num_key_value_heads", 4},
                      {"intermediate_size", 172},
                      {"vocab_size", 512},
                      {"hidden_act", "silu"}};
  if (!patch_key.empty()) {
    if (patch_value.empty()) {
      c.erase(patch_key);
    } else {
      c[patch_key] = nlohmann::json::parse(patch_value);
    }
  }
  HS_CHECK(write_file_atomic(dir + "/config.json", c.dump()).ok(), "write config");
  return dir;
}

TEST(HfConfig, DefaultsAndRopeScaling) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, load_hf_config(config_dir("", "") + "/config.json"));
  EXPECT_EQ(c.head_dim, 8);  // hidden_size / num_attention_heads
  EXPECT_EQ(c.rms_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_seq_len, 2048);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_FALSE(c.rope_scaling.has_value());
  HS_ASSERT_OK_AND_ASSIGN(
      LlamaConfig s,
      load_hf_config(config_dir("rope_scaling", R"({"rope_type": "llama3", "factor": 32.0,
          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192})") +
                     "/config.json"));
  ASSERT_TRUE(s.rope_scaling.has_value());
  EXPECT_EQ(s.rope_scaling->factor, 32.0);
  EXPECT_EQ(s.rope_scaling->original_max_position_embeddings, 8192);
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig model_type_only,
                          load_hf_config(config_dir("architectures", "") + "/config.json"));
  EXPECT_EQ(model_type_only.dim, 64);  // no architectures: model_type "llama" is enough
}

TEST(HfConfig, RejectsWhatItCannotRun) {
  struct Case {
    std::string key, value;
    ErrorKind kind;
    std::string part;
  };
  const Case cases[] = {
      {"architectures", R"(["MistralForCausalLM"])", ErrorKind::kUnsupported,
       "architecture [MistralForCausalLM] (model_type 'llama') is not supported"},
      {"hidden_act", R"("relu")", ErrorKind::kUnsupported, "activation 'relu' is not supported"},
      {"rope_scaling", R"({"rope_type": "yarn", "factor": 4})", ErrorKind::kUnsupported,
       "rope_scaling type 'yarn' is not supported"},
      {"hidden_size", "", ErrorKind::kNotFound, "'hidden_size' is missing"},
      {"hidden_size", R"("64")", ErrorKind::kParse,
       "'hidden_size' is a string, expected an integer"},
      {"num_key_value_heads", "3", ErrorKind::kInvalidArgument, "not a multiple of n_kv_heads 3"},
  };
  for (const Case& c : cases) {
    const std::string dir = config_dir(c.key, c.value);
    auto r = load_hf_config(dir + "/config.json");
    ASSERT_FALSE(r.ok()) << c.key;
    EXPECT_EQ(r.kind(), c.kind) << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr(c.part));
    EXPECT_THAT(r.error().message(), HasSubstr("config.json"));
  }
  // model_type without architectures must be a known family.
  const std::string dir = config_dir("architectures", "");
  nlohmann::json c = nlohmann::json::parse(*read_text_file(dir + "/config.json"));
  c["model_type"] = "mistral";
  HS_ASSERT_OK(write_file_atomic(dir + "/config.json", c.dump()));
  EXPECT_EQ(load_hf_config(dir + "/config.json").kind(), ErrorKind::kUnsupported);
}

TEST(HfModel, MissingAndMisshapenWeights) {
  HS_REQUIRE_SHARED();
  const LlamaModel src = stories_with_spm_tokenizer();
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(
      src, dir, {.shards = 2, .skip_tensor = "model.layers.1.mlp.up_proj.weight"}));
  auto r = load_hf_model(dir);
  EXPECT_EQ(r.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(r.error().message(),
              HasSubstr("tensor 'model.layers.1.mlp.up_proj.weight' is missing"));

  const std::string dir2 = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(src, dir2, {}));
  nlohmann::json c = nlohmann::json::parse(*read_text_file(dir2 + "/config.json"));
  c["intermediate_size"] = 170;
  HS_ASSERT_OK(write_file_atomic(dir2 + "/config.json", c.dump()));
  auto s = load_hf_model(dir2);
  EXPECT_EQ(s.kind(), ErrorKind::kShape);
  EXPECT_THAT(s.error().message(),
              HasSubstr("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172,64], "
                        "expected [170,64]"));

  // An index naming a shard that does not hold the tensor.
  const std::string dir3 = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(src, dir3, {.shards = 2}));
  nlohmann::json index =
      nlohmann::json::parse(*read_text_file(dir3 + "/model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  HS_ASSERT_OK(write_file_atomic(dir3 + "/model.safetensors.index.json", index.dump()));
  auto i = load_hf_model(dir3);
  EXPECT_EQ(i.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(i.error().message(),
              HasSubstr("'model.norm.weight' is mapped to "
                        "model-00001-of-00002.safetensors which does not hold it"));

  EXPECT_EQ(load_hf_model(testing::temp_dir()).kind(), ErrorKind::kNotFound);  // no config.json
}

}  // namespace
}  // namespace hs::frontend

// `headsplit info` in process: stories260K as llama2.c and GGUF (shapes, parameter count from
// the shapes, tensors as stored, tokenizer, recipe, support), vocabulary-only GGUF, a Hugging
// Face folder of an unsupported architecture (the reason), and a missing file.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "headsplit/support/file.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CliInfo, Llama2cCheckpoint) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli({"info", testing::shared_file("models/stories260K/stories260K.bin")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "format: llama2.c checkpoint\n")) << r.out;
  EXPECT_TRUE(has(r.out, "L=5 D=64 F=172 H=8 Hkv=4 Dh=8 V=512, trained context 512")) << r.out;
  // V*D + L*(2D + D*D + 2*(Hkv*Dh)*D + D*D + 3*F*D) + D, tied LM head.
  const int64_t d = 64, f = 172, l = 5, v = 512, kv = 32;
  const int64_t params = v * d + l * (2 * d + 2 * d * d + 2 * kv * d + 3 * f * d) + d;
  EXPECT_EQ(params, 260032);
  EXPECT_TRUE(has(r.out, "parameters: 260.03 K\n")) << r.out;
  EXPECT_TRUE(has(r.out, "tensors: 47, ")) << r.out;
  EXPECT_TRUE(has(r.out, "layers.4.w2        f32    [64, 172]")) << r.out;
  EXPECT_TRUE(has(r.out, "tokenizer: llama2.c (SentencePiece scores), 512 tokens")) << r.out;
  EXPECT_TRUE(has(r.out, "export would use: 16a4w, output=16a8w, 8-bit KV (recipe stories)"))
      << r.out;
  EXPECT_TRUE(has(r.out, "supported: yes")) << r.out;
}

TEST(CliInfo, GgufModelAndVocabularyOnly) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli({"info", testing::shared_file("models/stories260K/stories260K.gguf")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "gguf: version 3, ")) << r.out;
  EXPECT_TRUE(has(r.out, "L=5 D=64 F=172 H=8 Hkv=4 Dh=8 V=512")) << r.out;
  EXPECT_TRUE(has(r.out, "token_embd.weight")) << "tensors under their GGUF names\n" << r.out;
  EXPECT_TRUE(has(r.out, "tokenizer: SentencePiece BPE, 512 tokens")) << r.out;
  EXPECT_TRUE(has(r.out, "supported: yes")) << r.out;
  CliRun vocab = run_cli({"info", testing::shared_file("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")});
  ASSERT_EQ(vocab.code, 0) << vocab.err;
  EXPECT_TRUE(has(vocab.out, "0 tensors, general.architecture gpt2")) << vocab.out;
  EXPECT_TRUE(has(vocab.out, "byte-level BPE, 50257 tokens, 50000 merges")) << vocab.out;
  EXPECT_TRUE(has(vocab.out, "supported: as a tokenizer only")) << vocab.out;
}

TEST(CliInfo, UnsupportedArchitectureSaysWhy) {
  const std::string dir = testing::temp_dir() + "/mistral";
  std::filesystem::create_directories(dir);
  HS_ASSERT_OK(write_file_atomic(
      dir + "/config.json", R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64})"));
  CliRun r = run_cli({"info", dir});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "format: Hugging Face folder")) << r.out;
  EXPECT_TRUE(has(r.out, "supported: no: ")) << r.out;
  EXPECT_TRUE(has(r.out, "MistralForCausalLM")) << r.out;
  CliRun missing = run_cli({"info", dir + "/nope.gguf"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(has(missing.err, "nope.gguf: no such file or directory")) << missing.err;
}

// Every command of issue 19 has a --help with examples.
TEST(CliInfo, NewCommandsHaveHelpWithExamples) {
  for (const char* command : {"tokenize", "info", "perplexity", "bench"}) {
    CliRun r = run_cli({command, "--help"});
    EXPECT_EQ(r.code, 0) << command;
    EXPECT_TRUE(has(r.out, "Examples:\n  headsplit " + std::string(command))) << r.out;
  }
  CliRun top = run_cli({"--help"});
  for (const char* command : {"tokenize", "info", "perplexity", "bench"}) {
    EXPECT_TRUE(has(top.out, std::string("  ") + command)) << top.out;
  }
}

}  // namespace
}  // namespace hs::cli

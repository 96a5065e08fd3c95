// load_model: format detection (directory, .gguf, GGUF magic, llama2.c) and the llama2.c
// tokenizer lookup next to the checkpoint.
#include "headsplit/frontend/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "frontend/hf_writer.h"
#include "headsplit/frontend/llama2c.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string stories(const std::string& file) {
  return testing::shared_file("models/stories260K/" + file);
}

TEST(Loader, DetectsFormats) {
  HS_REQUIRE_SHARED();
  EXPECT_EQ(*detect_model_format(testing::temp_dir()), ModelFormat::kHuggingFace);
  EXPECT_EQ(*detect_model_format(stories("stories260K.gguf")), ModelFormat::kGguf);
  EXPECT_EQ(*detect_model_format(stories("stories260K.bin")), ModelFormat::kLlama2c);
  // GGUF magic under another extension.
  const std::string renamed = testing::temp_dir() + "/model.bin";
  fs::copy_file(stories("stories260K.gguf"), renamed);
  EXPECT_EQ(*detect_model_format(renamed), ModelFormat::kGguf);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel g, load_model(renamed));
  EXPECT_EQ(g.config.dim, 64);
  EXPECT_TRUE(g.tokenizer.has_value());
  auto missing = load_model("/nonexistent/model.gguf");
  EXPECT_EQ(missing.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("/nonexistent/model.gguf"));
}

TEST(Loader, Llama2cFindsTheTokenizerNextToIt) {
  HS_REQUIRE_SHARED();
  // tok512.bin sits next to stories260K.bin: found as tok<V>.bin.
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_model(stories("stories260K.bin")));
  ASSERT_TRUE(m.tokenizer.has_value());
  EXPECT_EQ(m.tokenizer->pieces.size(), 512u);

  // Alone in a folder: no tokenizer.
  const std::string dir = testing::temp_dir();
  fs::copy_file(stories("stories260K.bin"), dir + "/model.bin");
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel bare, load_model(dir + "/model.bin"));
  EXPECT_FALSE(bare.tokenizer.has_value());
  // tokenizer.bin next to it is picked up.
  fs::copy_file(stories("tok512.bin"), dir + "/tokenizer.bin");
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel with, load_model(dir + "/model.bin"));
  EXPECT_TRUE(with.tokenizer.has_value());
  // An explicit tokenizer path wins; a bad one is an error naming it.
  auto bad = load_model(dir + "/model.bin", dir + "/missing-tok.bin");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("missing-tok.bin"));
}

TEST(Loader, DirectoryIsHuggingFace) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel src, load_llama2c_model(stories("stories260K.bin"), ""));
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(testing::write_hf_folder(src, dir));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_model(dir));
  EXPECT_EQ(m.source, dir);
  EXPECT_TRUE(weights_bit_equal(m.weights.layers[2].wq, src.weights.layers[2].wq));
  auto empty = load_model(testing::temp_dir());
  EXPECT_EQ(empty.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(empty.error().message(), HasSubstr("config.json"));
}

}  // namespace
}  // namespace hs::frontend

// Hugging Face tokenizer.json of the Qwen2 / Qwen2.5 / Qwen3 kind: the Split regex with single
// digits after an NFC normalizer loads as pre-tokenizer "qwen2" and encodes with NFC; the same
// regex with another normalizer is refused naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "headsplit/frontend/hf.h"
#include "headsplit/support/file.h"
#include "headsplit/tokenizer/tokenizer.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// `normalizer` is the JSON of tokenizer.json's "normalizer".
std::string qwen_folder(const std::string& normalizer) {
  const std::string dir = testing::temp_dir();
  const std::string regex =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)re";
  // Pieces in GPT-2's byte form: "Ã©" is "é" (C3 A9), "Ì" and "ģ" are the bytes CC 81 of
  // U+0301, "1" and "2" digits.
  const std::string tok = R"({
    "added_tokens": [{"id": 8, "content": "<|im_start|>", "special": true}],
    "normalizer": )" + normalizer +
                          R"(,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": ")" +
                          regex + R"("}, "behavior": "Isolated"},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"e": 0, "\u00c3": 1, "\u00a9": 2, "\u00c3\u00a9": 3,
                                       "\u00cc": 4, "\u0123": 5, "1": 6, "2": 7},
              "merges": ["\u00c3 \u00a9", "1 2"]}})";
  HS_CHECK(write_file_atomic(dir + "/tokenizer.json", tok).ok(), "temp dir");
  return dir;
}

TEST(HfTokenizer, QwenSplitWithNfcIsQwen2) {
  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData t,
                          load_hf_tokenizer(qwen_folder(R"({"type": "NFC"})")));
  EXPECT_EQ(t.pre_tokenizer, "qwen2");
  HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(t));
  // "e" + U+0301 is "é" after NFC: one token; digits stay single although "1 2" is a merge.
  EXPECT_THAT(tok->encode("e\xcc\x81", false), ElementsAre(3));
  EXPECT_THAT(tok->encode("12", false), ElementsAre(6, 7));
  EXPECT_THAT(tok->encode("<|im_start|>e", false, true), ElementsAre(8, 0));
}

TEST(HfTokenizer, QwenSplitWithOtherNormalizerIsRefused) {
  for (const std::string& normalizer : {std::string("null"), std::string(R"({"type": "NFKC"})")}) {
    auto r = load_hf_tokenizer(qwen_folder(normalizer));
    ASSERT_FALSE(r.ok()) << normalizer;
    EXPECT_EQ(r.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(r.error().message(), HasSubstr("tokenizer.json"));
    EXPECT_THAT(r.error().message(), HasSubstr("only NFC"));
    EXPECT_THAT(r.error().message(), HasSubstr(normalizer == "null" ? "null" : "NFKC"));
  }
}

}  // namespace
}  // namespace hs::frontend

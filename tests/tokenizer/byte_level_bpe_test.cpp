// Byte-level BPE: GPT-2's byte map, the pre-tokenizer splits, and ranked merges on a
// hand-built vocabulary whose expected ids are derived by hand in the comments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "headsplit/tokenizer/pre_tokenizer.h"
#include "headsplit/tokenizer/tokenizer.h"
#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> split(std::string_view name, std::string_view text) {
  auto pre = PreTokenizer::create(name);
  HS_CHECK(pre.ok(), pre.ok() ? "" : pre.error().message());
  std::vector<std::string> words;
  for (std::string_view w : pre->split(text)) words.emplace_back(w);
  return words;
}

TEST(ByteMap, Gpt2BytesToUnicode) {
  EXPECT_EQ(bytes_to_unicode("a!~"), "a!~");    // printable ASCII maps to itself
  EXPECT_EQ(bytes_to_unicode(" "), "\u0120");   // 32 -> 256 + 32: "Ġ"
  EXPECT_EQ(bytes_to_unicode("\n"), "\u010a");  // 10 -> 266: "Ċ"
  EXPECT_EQ(bytes_to_unicode(std::string(1, '\0')), "\u0100");
  EXPECT_EQ(bytes_to_unicode("\x7f"), "\u0121");            // 127: the 34th unmapped byte -> 289
  EXPECT_EQ(bytes_to_unicode("\xa0"), "\u0142");            // 160: 256 + 33 + 1 + 32
  EXPECT_EQ(bytes_to_unicode("\xad"), "\u0143");            // 173, the last unmapped byte
  EXPECT_EQ(bytes_to_unicode("\xc3\xa9"), "\u00c3\u00a9");  // "é" -> "Ã©"
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(unicode_to_bytes(bytes_to_unicode(all)), all);
  EXPECT_EQ(unicode_to_bytes("\u4e2d"), "\u4e2d");  // not in the map: copied
}

TEST(PreTokenizer, Gpt2Splits) {
  EXPECT_THAT(split("gpt2", "Hello world"), ElementsAre("Hello", " world"));
  EXPECT_THAT(split("gpt2", "I'm 12"), ElementsAre("I", "'m", " 12"));
  // \s+(?!\S) leaves the last space to the word after it.
  EXPECT_THAT(split("gpt2", "  spaces"), ElementsAre(" ", " spaces"));
  EXPECT_THAT(split("gpt2", "a  "), ElementsAre("a", "  "));
  EXPECT_THAT(split("gpt-2", "x\n\ny!?"), ElementsAre("x", "\n", "\n", "y", "!?"));
  EXPECT_THAT(split("gpt2", "abc123 4567"), ElementsAre("abc", "123", " 4567"));
  EXPECT_THAT(split("gpt2", ""), IsEmpty());
  // Invalid UTF-8 matches nothing and is kept between the matches.
  EXPECT_THAT(split("gpt2",
                    "a\xff"
                    "b"),
              ElementsAre("a", "\xff", "b"));
}

TEST(PreTokenizer, Llama3AndSmolLmSplits) {
  // Numbers in groups of at most 3 digits; contractions in either case.
  EXPECT_THAT(split("llama3", "I'm 1234"), ElementsAre("I", "'m", " ", "123", "4"));
  EXPECT_THAT(split("llama-bpe", "HELLO'S world"), ElementsAre("HELLO", "'S", " world"));
  // A letter run takes one leading non-letter, non-digit character.
  EXPECT_THAT(split("llama3", "(hi)\n\n x"), ElementsAre("(hi", ")\n\n", " x"));
  // GLM-4 / GLM-edge (llama.cpp CHATGLM4): Llama-3's regex, but merges are never skipped.
  EXPECT_THAT(split("glm4", "I'm 1234"), ElementsAre("I", "'m", " ", "123", "4"));
  EXPECT_THAT(split("chatglm-bpe", "(hi)\n\n x"), ElementsAre("(hi", ")\n\n", " x"));
  EXPECT_TRUE(PreTokenizer::create("llama3")->ignore_merges());
  EXPECT_FALSE(PreTokenizer::create("glm4")->ignore_merges());
  // SmolLM: every digit alone first, then GPT-2's regex inside each piece.
  EXPECT_THAT(split("smollm", "abc123 4567"),
              ElementsAre("abc", "1", "2", "3", " ", "4", "5", "6", "7"));
  EXPECT_THAT(split("smollm", "Hello world"), ElementsAre("Hello", " world"));
  // llama.cpp's "default": punctuation runs first, then GPT-2, then digit runs.
  EXPECT_THAT(split("default", "x+=1, 'ok'"),
              ElementsAre("x", "+=", "1", ",", " ", "'", "ok", "'"));
  auto bad = PreTokenizer::create("deepseek-v3");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(bad.error().message(), HasSubstr("'deepseek-v3'"));
}

TEST(PreTokenizer, WordsConcatenateToTheText) {
  const std::vector<std::string> alphabet = {"a",
                                             "Z",
                                             " ",
                                             "  ",
                                             "\n",
                                             "\t",
                                             "1",
                                             "'s",
                                             "'",
                                             "!",
                                             "\xc3\xa9",
                                             "\u4e2d",
                                             "\xf0\x9f\x98\x80",
                                             "\xff",
                                             "\x80",
                                             "\r\n"};
  std::mt19937 rng(77);
  for (std::string_view name : {"gpt2", "llama3", "qwen2", "smollm"}) {
    auto pre = PreTokenizer::create(name);
    ASSERT_TRUE(pre.ok());
    for (int iter = 0; iter < 200; ++iter) {
      std::string text;
      const int n = static_cast<int>(rng() % 16);
      for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      std::string joined;
      for (std::string_view w : pre->split(text)) {
        ASSERT_FALSE(w.empty());
        joined += w;
      }
      ASSERT_EQ(joined, text) << name << " iteration " << iter;
    }
  }
}

// Pieces in byte-level form ("Ġ" is the space, "Ċ" the newline, "Ã©" is "é").
TokenizerData bpe_vocab() {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pieces = {"<|endoftext|>", "a",        "b",     "c",   "\u0120", "ab",
              "\u0120a",       "\u0120ab", "bc",    "abc", "aa",     "\u010a",
              "<|im_start|>",  "\u00c3",   "\u00a9"};
  using T = TokenType;
  d.types.assign(d.pieces.size(), T::kNormal);
  d.types[0] = T::kControl;
  d.types[12] = T::kControl;
  // Ranks 0..4. "Ġa b" is missing, so the piece "Ġab" is never reached.
  d.merges = {"a b", "b c", "\u0120 a", "a a", "ab c"};
  d.pre_tokenizer = "gpt2";
  d.bos_id = 0;
  d.eos_id = 0;
  d.add_bos = false;
  d.add_space_prefix = false;
  return d;
}

std::unique_ptr<Tokenizer> make(TokenizerData data) {
  auto tokenizer = Tokenizer::create(std::move(data));
  HS_CHECK(tokenizer.ok(), tokenizer.ok() ? "" : tokenizer.error().message());
  return std::move(tokenizer).value();
}

TEST(ByteLevelBpe, MergesByRank) {
  auto tok = make(bpe_vocab());
  // "abc": "a b" (0) before "b c" (1), then "ab c" (4) -> [abc].
  // " ab" -> "Ġ" "a" "b": "a b" (0) before "Ġ a" (2); "Ġ ab" has no rank -> [Ġ][ab].
  EXPECT_THAT(tok->encode("abc ab", false), ElementsAre(9, 4, 5));
  EXPECT_THAT(tok->encode(" a", false), ElementsAre(6));
  EXPECT_THAT(tok->encode("aaa", false), ElementsAre(10, 1));  // same rank: leftmost first
  EXPECT_THAT(tok->encode("a\nb", false), ElementsAre(1, 11, 2));
  EXPECT_THAT(tok->encode("\u00e9", false), ElementsAre(13, 14));
  EXPECT_THAT(tok->encode("", false), IsEmpty());
  // add_bos is false in this vocabulary: no BOS even when asked.
  EXPECT_THAT(tok->encode("ab", true), ElementsAre(5));
  TokenizerData with_bos = bpe_vocab();
  with_bos.add_bos = true;
  EXPECT_THAT(make(with_bos)->encode("ab", true), ElementsAre(0, 5));
}

TEST(ByteLevelBpe, SpecialTokensAndDecode) {
  auto tok = make(bpe_vocab());
  EXPECT_THAT(tok->encode("<|im_start|>ab", false, /*parse_special=*/true), ElementsAre(12, 5));
  // As plain text: words "<|", "im", "_", "start", "|>", "ab"; of their characters only the
  // "a" of "start" is a piece, the others are dropped (as llama.cpp does).
  EXPECT_THAT(tok->encode("<|im_start|>ab", false, false), ElementsAre(1, 5));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{9, 4, 5, 11, 13, 14}), "abc ab\n\u00e9");
  EXPECT_EQ(tok->decode_token(-1, 12), "");  // control
  EXPECT_EQ(tok->decode_token(-1, 15), "");
  EXPECT_EQ(tok->decode_token(-1, -3), "");
}

TEST(ByteLevelBpe, RejectsBadMergesAndPreTokenizer) {
  TokenizerData d = bpe_vocab();
  d.merges.push_back("abc");
  auto r = Tokenizer::create(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(r.error().message(), HasSubstr("merge 5 'abc' is not two parts"));
  d = bpe_vocab();
  d.pre_tokenizer = "tekken";
  r = Tokenizer::create(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(r.error().message(), HasSubstr("'tekken'"));
}

}  // namespace
}  // namespace hs::tokenizer

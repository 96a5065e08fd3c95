// llama2.c tokenizer.bin: loading tok512.bin, encode/decode against run.c, and corrupt files.
//
// Expected ids were computed by hand from the tok512 vocabulary and cross-checked with a
// line-by-line Python port of llama2.c run.c `encode` (independent of this code).
#include "headsplit/tokenizer/llama2c.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>

#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string tok512_path() { return testing::shared_file("models/stories260K/tok512.bin"); }

std::unique_ptr<Tokenizer> load_tok512() {
  auto data = load_llama2c_tokenizer(tok512_path(), 512);
  HS_CHECK(data.ok(), data.ok() ? "" : data.error().message());
  auto tokenizer = Tokenizer::create(std::move(data).value());
  HS_CHECK(tokenizer.ok(), tokenizer.ok() ? "" : tokenizer.error().message());
  return std::move(tokenizer).value();
}

TEST(Llama2cTokenizer, LoadsTok512) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(TokenizerData data, load_llama2c_tokenizer(tok512_path(), 512));
  EXPECT_EQ(data.kind, TokenizerKind::kLlama2c);
  EXPECT_EQ(data.max_token_length, 7);
  ASSERT_EQ(data.pieces.size(), 512u);
  ASSERT_EQ(data.scores.size(), 512u);
  EXPECT_EQ(data.pieces[0], "<unk>");
  EXPECT_EQ(data.pieces[1], "\n<s>\n");
  EXPECT_EQ(data.pieces[2], "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(data.pieces[3 + b], fmt::format("<0x{:02X}>", b)) << "byte " << b;
    EXPECT_EQ(data.types[3 + b], TokenType::kByte);
  }
  EXPECT_EQ(data.pieces[259], " t");
  EXPECT_EQ(data.scores[260], -1.0f);       // "he", second merge
  EXPECT_EQ(data.pieces[485], "\xc3\xa9");  // "é" is a piece of its own
  EXPECT_EQ(data.types[0], TokenType::kUnknown);
  EXPECT_EQ(data.types[1], TokenType::kControl);
  EXPECT_EQ(data.types[300], TokenType::kNormal);
  EXPECT_EQ(data.bos_id, 1);
  EXPECT_EQ(data.eos_id, 2);
  EXPECT_THAT(data.extra_eos_ids, ElementsAre(1));
  EXPECT_EQ(data.unk_id, 0);
}

TEST(Llama2cTokenizer, EncodeMatchesRunC) {
  HS_REQUIRE_SHARED();
  auto tok = load_tok512();
  // run.c: empty text gets no dummy prefix, so only BOS.
  EXPECT_THAT(tok->encode("", /*add_bos=*/true), ElementsAre(1));
  EXPECT_TRUE(tok->encode("", /*add_bos=*/false).empty());
  // " Once" " upon" " a" " time": the dummy prefix " " merges into the first word.
  EXPECT_THAT(tok->encode("Once upon a time", true), ElementsAre(1, 403, 407, 261, 378));
  EXPECT_THAT(tok->encode("Once upon a time", false), ElementsAre(403, 407, 261, 378));
  // " a" "b" " " " c" "d" then "\n" and "\t" are not pieces: <0x0A> = 13, <0x09> = 12.
  EXPECT_THAT(tok->encode("ab  cd\n\tx", true),
              ElementsAre(1, 261, 430, 410, 280, 418, 13, 12, 444));
  // "é" is piece 485 and "ñ" piece 493; U+1F600 is not a piece: its 4 bytes + 3.
  EXPECT_THAT(
      tok->encode("h\xc3\xa9llo \xc3\xb1 \xf0\x9f\x98\x80", true),
      ElementsAre(1, 270, 485, 306, 414, 410, 493, 410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3));
  EXPECT_THAT(tok->encode("\xf0\x9f\x98\x80", true), ElementsAre(1, 410, 243, 162, 155, 131));
  EXPECT_THAT(tok->encode("Lily's ball", true), ElementsAre(1, 317, 439, 419, 268, 388));
}

TEST(Llama2cTokenizer, DecodeFollowsRunC) {
  HS_REQUIRE_SHARED();
  auto tok = load_tok512();
  EXPECT_EQ(tok->decode_token(1, 403), "Once");     // leading space stripped after BOS
  EXPECT_EQ(tok->decode_token(403, 407), " upon");  // kept elsewhere
  EXPECT_EQ(tok->decode_token(-1, 403), " Once");
  EXPECT_EQ(tok->decode_token(1, 3 + 'A'), "A");  // <0x41>
  EXPECT_EQ(tok->decode_token(5, 3 + 0x0A), "\n");
  EXPECT_EQ(tok->decode_token(5, 3), std::string(1, '\0'));
  EXPECT_EQ(tok->decode_token(5, 258), "\xff");
  EXPECT_EQ(tok->decode_token(5, 1), "");  // control tokens print nothing
  EXPECT_EQ(tok->decode_token(5, 512), "");
  EXPECT_EQ(tok->decode_token(5, -7), "");
  EXPECT_EQ(tok->decode_token(5, 0), "<unk>");
  const std::vector<int32_t> ids = {1, 410, 243, 162, 155, 131};
  EXPECT_EQ(tok->decode(ids), "\xf0\x9f\x98\x80");
  EXPECT_TRUE(tok->is_eos(2));
  EXPECT_TRUE(tok->is_eos(1));
  EXPECT_FALSE(tok->is_eos(3));
}

std::vector<std::string> sample_lines() {
  auto text = read_text_file(testing::shared_file("data/tinystories/valid-sample.txt"));
  HS_CHECK(text.ok(), "cannot read valid-sample.txt");
  std::vector<std::string> lines;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

TEST(Llama2cTokenizer, RoundTripsTinyStories) {
  HS_REQUIRE_SHARED();
  auto tok = load_tok512();
  const std::vector<std::string> lines = sample_lines();
  ASSERT_EQ(lines.size(), 10u);
  // First line: 840 characters, 409 ids in the Python port of run.c.
  const std::vector<int32_t> first = tok->encode(lines[0], true);
  ASSERT_EQ(first.size(), 409u);
  EXPECT_THAT(std::vector<int32_t>(first.begin(), first.begin() + 12),
              ElementsAre(1, 353, 331, 407, 261, 378, 383, 286, 261, 376, 298, 315));
  EXPECT_THAT(std::vector<int32_t>(first.end() - 8, first.end()),
              ElementsAre(410, 449, 277, 420, 416, 411, 422, 426));
  size_t total = 0;
  for (const std::string& line : lines) {
    const std::vector<int32_t> ids = tok->encode(line, true);
    total += ids.size();
    EXPECT_EQ(tok->decode(ids), line);
  }
  EXPECT_EQ(total, 6852u);  // all 10 lines, BOS included, per the run.c port
}

TEST(Llama2cTokenizer, RoundTripsRandomBytes) {
  HS_REQUIRE_SHARED();
  auto tok = load_tok512();
  // Any bytes survive encode -> decode: pieces, merges and byte fallback (invalid UTF-8 too).
  const std::vector<std::string> alphabet = {"a",
                                             "b",
                                             " ",
                                             "  ",
                                             "e",
                                             "the",
                                             "\n",
                                             "\xc3\xa9",
                                             "\xe2\x80\x9c",
                                             "\xf0\x9f\x98\x80",
                                             "\xff",
                                             "\x80",
                                             "\xc3",
                                             "Z",
                                             "'",
                                             std::string(1, '\0')};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 300; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    const std::vector<int32_t> ids = tok->encode(text, true);
    ASSERT_EQ(tok->decode(ids), text) << "iteration " << iter;
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 512);
  }
}

}  // namespace
}  // namespace hs::tokenizer

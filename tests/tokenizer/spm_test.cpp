// SentencePiece-BPE merges (kLlama2c, kSpm) on hand-built vocabularies, special tokens, and
// the checks Tokenizer::create makes on a TokenizerData.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "headsplit/tokenizer/tokenizer.h"
#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::unique_ptr<Tokenizer> make(TokenizerData data) {
  auto tokenizer = Tokenizer::create(std::move(data));
  HS_CHECK(tokenizer.ok(), tokenizer.ok() ? "" : tokenizer.error().message());
  return std::move(tokenizer).value();
}

// kLlama2c: ids 3.. are " ", a, b, c and merged pieces with the scores below.
TokenizerData llama2c_vocab(bool space_prefix) {
  TokenizerData d;
  d.kind = TokenizerKind::kLlama2c;
  d.pieces = {"<unk>", "<s>", "</s>", " ", "a", "b", "c", "ab", "ba", "bc", "abc", " a"};
  d.scores = {0, 0, 0, 0, 0, 0, 0, 1.0f, 1.0f, 2.0f, 0.5f, 3.0f};
  d.bos_id = 1;
  d.eos_id = 2;
  d.unk_id = 0;
  d.add_space_prefix = space_prefix;
  return d;
}

TEST(SpmMerges, HighestScoreFirstLeftmostOnTies) {
  auto tok = make(llama2c_vocab(/*space_prefix=*/false));
  // "ab" and "ba" both score 1: the leftmost pair wins, the rest cannot merge further.
  EXPECT_THAT(tok->encode("aba", false), ElementsAre(7, 4));  // [ab][a], not [a][ba]
  EXPECT_THAT(tok->encode("bab", false), ElementsAre(8, 5));  // [ba][b], not [b][ab]
  // "bc" (2) beats "ab" (1); then "a"+"bc" = "abc" (0.5) merges.
  EXPECT_THAT(tok->encode("abc", false), ElementsAre(10));
  EXPECT_THAT(tok->encode("cab", false), ElementsAre(6, 7));
  EXPECT_THAT(tok->encode("abcab", false), ElementsAre(10, 7));
  // Byte fallback needs id byte + 3 < V; in this tiny vocabulary 'd' falls back to <unk>.
  EXPECT_THAT(tok->encode("d", false), ElementsAre(0));
}

// run.c's merge loop, written as plainly as possible: rescan all pairs, merge the best.
std::vector<int32_t> naive_merges(const TokenizerData& d, std::vector<int32_t> ids) {
  auto find = [&](const std::string& piece) {
    for (size_t i = 0; i < d.pieces.size(); ++i) {
      if (d.pieces[i] == piece) return static_cast<int32_t>(i);
    }
    return int32_t{-1};
  };
  for (;;) {
    float best = -1e10f;
    int32_t best_id = -1;
    size_t best_at = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const int32_t id = find(d.pieces[ids[i]] + d.pieces[ids[i + 1]]);
      if (id >= 0 && d.scores[id] > best) {
        best = d.scores[id];
        best_id = id;
        best_at = i;
      }
    }
    if (best_id < 0) return ids;
    ids[best_at] = best_id;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
}

TEST(SpmMerges, MatchesNaiveRunCLoopOnRandomVocabularies) {
  std::mt19937 rng(2024);
  const std::string alphabet = "ab c";
  for (int vocab_iter = 0; vocab_iter < 20; ++vocab_iter) {
    TokenizerData d;
    d.kind = TokenizerKind::kLlama2c;
    d.pieces = {"<unk>", "<s>", "</s>", "a", "b", " ", "c"};
    d.scores.assign(d.pieces.size(), 0.0f);
    std::set<std::string> seen(d.pieces.begin(), d.pieces.end());
    while (d.pieces.size() < 40) {  // random pieces of 2..4 chars, scores with many ties
      std::string piece;
      const size_t n = 2 + rng() % 3;
      for (size_t i = 0; i < n; ++i) piece += alphabet[rng() % alphabet.size()];
      if (!seen.insert(piece).second) continue;
      d.pieces.push_back(piece);
      d.scores.push_back(static_cast<float>(static_cast<int>(rng() % 5)));
    }
    d.bos_id = 1;
    d.eos_id = 2;
    d.add_space_prefix = false;
    auto tok = make(d);
    for (int text_iter = 0; text_iter < 30; ++text_iter) {
      std::string text;
      std::vector<int32_t> chars;
      const size_t n = rng() % 24;
      for (size_t i = 0; i < n; ++i) {
        const size_t c = rng() % alphabet.size();
        text += alphabet[c];
        chars.push_back(static_cast<int32_t>(c == 3 ? 6 : 3 + c));
      }
      ASSERT_EQ(tok->encode(text, false), naive_merges(d, chars))
          << "vocabulary " << vocab_iter << ", text \"" << text << "\"";
    }
  }
}

TEST(SpmMerges, DummyPrefixJoinsTheFirstWord) {
  auto tok = make(llama2c_vocab(/*space_prefix=*/true));
  // " " "a" "b": " a" (3) beats "ab" (1); " ab" is not a piece.
  EXPECT_THAT(tok->encode("ab", false), ElementsAre(11, 5));
  EXPECT_THAT(tok->encode("ab", true), ElementsAre(1, 11, 5));
  EXPECT_THAT(tok->encode("", true), ElementsAre(1));
  EXPECT_THAT(tok->encode("", false), IsEmpty());
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 11, 5}), "ab");
}

// kSpm: "▁" for spaces, byte pieces by name, a piece ("bé") containing a code point that is
// not a piece itself, control and user-defined pieces.
TokenizerData spm_vocab() {
  TokenizerData d;
  d.kind = TokenizerKind::kSpm;
  d.pieces = {"<unk>",   "<s>", "</s>",     "<0xC3>",  "<0xA9>", "\u2581", "a", "b",
              "\u2581a", "ab",  "\u2581ab", "b\u00e9", "<a>",    "<a>b",   "@u"};
  d.scores = {0, 0, 0, 0, 0, 0, 0, 0, -1.0f, -2.0f, -3.0f, -0.5f, 0, 0, 0};
  using T = TokenType;
  d.types = {T::kUnknown, T::kControl, T::kControl, T::kByte,    T::kByte,
             T::kNormal,  T::kNormal,  T::kNormal,  T::kNormal,  T::kNormal,
             T::kNormal,  T::kNormal,  T::kControl, T::kControl, T::kUserDefined};
  d.bos_id = 1;
  d.eos_id = 2;
  d.unk_id = 0;
  return d;
}

TEST(SpmMerges, SpmEscapesSpacesAndFallsBackToBytePieces) {
  auto tok = make(spm_vocab());
  // "▁ab▁é": "▁a" (-1) first, then "▁ab" (-3); "é" is no piece: <0xC3> <0xA9>.
  EXPECT_THAT(tok->encode("ab \u00e9", false), ElementsAre(10, 5, 3, 4));
  EXPECT_THAT(tok->encode("ab \u00e9", true), ElementsAre(1, 10, 5, 3, 4));
  // As llama.cpp: a code point that is not a piece still merges into "bé".
  EXPECT_THAT(tok->encode("b\u00e9", false), ElementsAre(5, 11));
  EXPECT_THAT(tok->encode(" ", false), ElementsAre(5, 5));
  EXPECT_THAT(tok->encode("", false), IsEmpty());
  // 'x' has neither <0x78> nor "x": <unk>.
  EXPECT_THAT(tok->encode("x", false), ElementsAre(5, 0));
}

// A truncated sequence ("\xc3" without its continuation byte) is one symbol of its own: it does
// not swallow the first byte of the "▁" after it, so the space survives and encode -> decode
// gives the raw bytes back.
TEST(SpmMerges, IllFormedSequenceStopsBeforeTheNextCharacter) {
  auto tok = make(spm_vocab());
  EXPECT_THAT(tok->encode("a\xc3 ab", true), ElementsAre(1, 8, 3, 10));
  EXPECT_EQ(tok->decode(tok->encode("a\xc3 ab", true)), "a\xc3 ab");
  EXPECT_THAT(tok->encode("\xc3\xa9", false), ElementsAre(5, 3, 4));  // well formed: é as before
}

TEST(SpmMerges, SpmDecode) {
  auto tok = make(spm_vocab());
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 10, 5, 3, 4}), "ab \u00e9");
  EXPECT_EQ(tok->decode_token(-1, 10), " ab");  // the space is only stripped after BOS
  EXPECT_EQ(tok->decode_token(1, 10), "ab");
  EXPECT_EQ(tok->decode_token(1, 2), "");        // control
  EXPECT_EQ(tok->decode_token(1, 0), "\u2585");  // <unk> prints as llama.cpp does
  EXPECT_EQ(tok->decode_token(1, 14), "@u");     // user-defined: its text
  EXPECT_EQ(tok->decode_token(1, 3), "\xc3");    // a byte piece is its byte
  EXPECT_EQ(tok->decode_token(1, 15), "");
  EXPECT_EQ(tok->decode_token(1, -1), "");
}

TEST(SpecialTokens, LongestPieceFirstOnlyWithParseSpecial) {
  auto tok = make(spm_vocab());
  // "<a>b" (13) is longer than "<a>" (12) and is matched first.
  EXPECT_THAT(tok->encode("<a>b<a>", false, /*parse_special=*/true), ElementsAre(13, 12));
  // Text after a special token gets the dummy prefix again (llama.cpp).
  EXPECT_THAT(tok->encode("ab<a>ab", false, true), ElementsAre(10, 12, 10));
  EXPECT_THAT(tok->encode("ab<a>ab", true, true), ElementsAre(1, 10, 12, 10));
  // Without parse_special the control pieces are plain text: "▁" "<" "a" ">".
  EXPECT_THAT(tok->encode("<a>", false, false), ElementsAre(5, 0, 6, 0));
  // User-defined pieces are split out either way.
  EXPECT_THAT(tok->encode("x@uab", false, false), ElementsAre(5, 0, 14, 10));
  EXPECT_THAT(tok->encode("@u", false, true), ElementsAre(14));
  EXPECT_THAT(tok->encode("<s>", false, true), ElementsAre(1));
}

TEST(TokenizerCreate, RejectsInconsistentData) {
  {
    TokenizerData d = llama2c_vocab(true);
    d.scores.pop_back();
    auto r = Tokenizer::create(d);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
    EXPECT_THAT(r.error().message(), HasSubstr("has 11 scores for 12 pieces"));
  }
  {
    TokenizerData d = llama2c_vocab(true);
    d.bos_id = 12;
    auto r = Tokenizer::create(d);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kOutOfRange);
    EXPECT_THAT(r.error().message(), HasSubstr("bos id 12 is outside the vocabulary [0, 12)"));
  }
  {
    TokenizerData d = llama2c_vocab(true);
    d.extra_eos_ids = {-1};
    auto r = Tokenizer::create(d);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message(), HasSubstr("extra eos id -1"));
  }
  {
    TokenizerData d = spm_vocab();
    d.types.resize(3);
    auto r = Tokenizer::create(d);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message(), HasSubstr("3 token types for 15 pieces"));
  }
  {
    TokenizerData d;
    auto r = Tokenizer::create(d);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(r.error().message(), HasSubstr("vocabulary is empty"));
  }
}

TEST(TokenizerCreate, FindPieceAndTypes) {
  auto tok = make(spm_vocab());
  EXPECT_EQ(tok->find_piece("<a>b"), 13);
  EXPECT_EQ(tok->find_piece("zzz"), -1);
  EXPECT_EQ(tok->find_piece(""), -1);
  EXPECT_EQ(tok->token_type(14), TokenType::kUserDefined);
  EXPECT_EQ(tok->token_type(99), TokenType::kNormal);
  EXPECT_EQ(tok->vocab_size(), 15);
  // Repeated pieces: the last id wins, as llama.cpp's token_to_id.
  TokenizerData d = llama2c_vocab(false);
  d.pieces.push_back("ab");
  d.scores.push_back(9.0f);
  auto dup = make(d);
  EXPECT_EQ(dup->find_piece("ab"), 12);
  EXPECT_THAT(dup->encode("ab", false), ElementsAre(12));
}

}  // namespace
}  // namespace hs::tokenizer

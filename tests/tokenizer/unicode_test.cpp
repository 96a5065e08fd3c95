// The Unicode steps of byte-level BPE: ill-formed UTF-8 -> U+FFFD (maximal subparts), NFC, the
// Qwen2 pre-tokenizer, and Unicode White_Space in the Llama-3 / Qwen2 regexes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "headsplit/tokenizer/pre_tokenizer.h"
#include "headsplit/tokenizer/tokenizer.h"
#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::ElementsAre;

constexpr std::string_view kFffd = "\xef\xbf\xbd";

std::vector<std::string> split(std::string_view name, std::string_view text) {
  auto pre = PreTokenizer::create(name);
  HS_CHECK(pre.ok(), pre.ok() ? "" : pre.error().message());
  std::vector<std::string> words;
  for (std::string_view w : pre->split(text)) words.emplace_back(w);
  return words;
}

std::string fffd(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += kFffd;
  return s;
}

TEST(ValidUtf8, ReplacesMaximalSubparts) {
  // Well-formed text is unchanged: ASCII, 2-, 3-, 4-byte sequences, the edges of each range.
  for (std::string_view ok : {"abc", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xc2\x80",
                              "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf", "\xe0\xa0\x80"}) {
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
    EXPECT_EQ(to_valid_utf8(ok), ok);
  }
  // Unicode 3.9 / WHATWG examples: one U+FFFD per maximal subpart.
  EXPECT_EQ(to_valid_utf8("a\xff"
                          "b"),
            "a" + fffd(1) + "b");
  EXPECT_EQ(to_valid_utf8("\xe4\xb8"
                          "a"),
            fffd(1) + "a");                               // cut 3-byte sequence
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98"), fffd(1));      // cut 4-byte at the end
  EXPECT_EQ(to_valid_utf8("\xc0\x80"), fffd(2));          // overlong: C0 never leads
  EXPECT_EQ(to_valid_utf8("\xe0\x80\x80"), fffd(3));      // overlong 3-byte
  EXPECT_EQ(to_valid_utf8("\xed\xa0\x80"), fffd(3));      // a surrogate
  EXPECT_EQ(to_valid_utf8("\xf4\x90\x80\x80"), fffd(4));  // above U+10FFFF
  EXPECT_EQ(to_valid_utf8("\x80\xbf"), fffd(2));          // stray continuations
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98\xe4\xb8\xad"), fffd(1) + "\xe4\xb8\xad");
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
}

TEST(ValidUtf8, OutputIsAlwaysValidAndValidInputUnchanged) {
  std::mt19937 rng(12);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text(rng() % 12, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 2 ? 0x80 + rng() % 0x80 : rng() % 256);
    const std::string valid = to_valid_utf8(text);
    ASSERT_TRUE(is_valid_utf8(valid));
    if (is_valid_utf8(text)) {
      ASSERT_EQ(valid, text);
    }
    ASSERT_EQ(to_valid_utf8(valid), valid);
  }
}

TEST(Nfc, ComposesAndReorders) {
  EXPECT_EQ(nfc_normalize("e\xcc\x81"), "\xc3\xa9");  // e + U+0301 -> é
  EXPECT_EQ(nfc_normalize("\xc3\xa9"), "\xc3\xa9");
  // U+1100 U+1161 (conjoining jamo) -> U+AC00 "가".
  EXPECT_EQ(nfc_normalize("\xe1\x84\x80\xe1\x85\xa1"), "\xea\xb0\x80");
  // Canonical order: a + U+0323 (ccc 220) after U+0307 (ccc 230) -> ạ̇ composed as U+1EA1 U+0307.
  EXPECT_EQ(nfc_normalize("a\xcc\x87\xcc\xa3"), "\xe1\xba\xa1\xcc\x87");
  // Singletons: U+212B ANGSTROM SIGN -> U+00C5; U+2126 OHM -> U+03A9.
  EXPECT_EQ(nfc_normalize("\xe2\x84\xab\xe2\x84\xa6"), "\xc3\x85\xce\xa9");
  // Compatibility characters stay (NFC, not NFKC): "ﬁ" U+FB01, fullwidth "Ａ".
  EXPECT_EQ(nfc_normalize("\xef\xac\x81\xef\xbc\xa1"), "\xef\xac\x81\xef\xbc\xa1");
  EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc_normalize("x\xff"
                          "e\xcc\x81"),
            "x" + fffd(1) + "\xc3\xa9");
}

TEST(PreTokenizer, Qwen2SplitsDigitsAloneAfterNfc) {
  auto pre = PreTokenizer::create("qwen2");
  ASSERT_TRUE(pre.ok());
  EXPECT_TRUE(pre->nfc());
  EXPECT_FALSE(pre->ignore_merges());
  EXPECT_THAT(split("qwen2", "I'm 1234"), ElementsAre("I", "'m", " ", "1", "2", "3", "4"));
  // " (" cannot lead a letter run (one leading non-letter only): punctuation with its space.
  EXPECT_THAT(split("qwen2", "HELLO'S (hi)\n\n x"),
              ElementsAre("HELLO", "'S", " (", "hi", ")\n\n", " x"));
  // \p{N} covers other digits too: Arabic-Indic, superscript two, Roman numeral five.
  EXPECT_THAT(split("qwen2", "\xd9\xa3\xd9\xa4\xc2\xb2\xe2\x85\xa4"),
              ElementsAre("\xd9\xa3", "\xd9\xa4", "\xc2\xb2", "\xe2\x85\xa4"));
  EXPECT_FALSE(PreTokenizer::create("llama3")->nfc());
}

TEST(PreTokenizer, WhiteSpaceIsUnicodeWhiteSpace) {
  // U+3000 (ideographic space) and U+0085 (NEL) are White_Space: a run of spaces before a word
  // leaves its last character to the word only when it is a plain space.
  for (std::string_view name : {"llama3", "qwen2"}) {
    EXPECT_THAT(split(name,
                      "a\xe3\x80\x80\xe3\x80\x80"
                      "b"),
                ElementsAre("a", "\xe3\x80\x80",
                            "\xe3\x80\x80"
                            "b"))
        << name;
    EXPECT_THAT(split(name,
                      "a\xc2\x85"
                      "b"),
                ElementsAre("a",
                            "\xc2\x85"
                            "b"))
        << name;
    // U+180E (Mongolian vowel separator, Cf) and U+FEFF (BOM, Cf) are not White_Space: they
    // join the space before them as punctuation (" ?[^\s\p{L}\p{N}]+"). Were they spaces
    // (PCRE2's \s has U+180E), the split would be "a", " ", "\u180eb".
    EXPECT_THAT(split(name,
                      "a \xe1\xa0\x8e"
                      "b"),
                ElementsAre("a", " \xe1\xa0\x8e", "b"))
        << name;
    EXPECT_THAT(split(name,
                      "a \xef\xbb\xbf"
                      "b"),
                ElementsAre("a", " \xef\xbb\xbf", "b"))
        << name;
  }
}

// A byte-level vocabulary of the 256 byte pieces, "é" (bytes C3 A9 = "Ã©") and U+FFFD (EF BF
// BD = "ï¿½") with their merges: NFC turns "e" U+0301 into "é", ill-formed bytes become U+FFFD.
TEST(ByteLevelBpe, Qwen2NormalizesAndReplacesBeforeBpe) {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre_tokenizer = "qwen2";
  for (int b = 0; b < 256; ++b) d.pieces.push_back(bytes_to_unicode(std::string(1, char(b))));
  d.pieces.push_back("\u00c3\u00a9");        // 256: "é"
  d.pieces.push_back("\u00ef\u00bf");        // 257
  d.pieces.push_back("\u00ef\u00bf\u00bd");  // 258: U+FFFD
  d.merges = {"\u00c3 \u00a9", "\u00ef \u00bf", "\u00ef\u00bf \u00bd"};
  d.add_bos = false;
  auto tok = Tokenizer::create(d);
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  EXPECT_THAT((*tok)->encode("e\xcc\x81", false), ElementsAre(256));
  EXPECT_THAT((*tok)->encode("\xe4\xb8", false), ElementsAre(258));
  EXPECT_EQ((*tok)->decode((*tok)->encode("x\xff"
                                          "e\xcc\x81",
                                          false)),
            "x" + fffd(1) + "\xc3\xa9");
  d.pre_tokenizer = "gpt2";  // no NFC, but still a Unicode string
  auto gpt2 = Tokenizer::create(d);
  ASSERT_TRUE(gpt2.ok());
  EXPECT_THAT((*gpt2)->encode("e\xcc\x81", false), ElementsAre('e', 0xcc, 0x81));
  EXPECT_THAT((*gpt2)->encode("\xc0", false), ElementsAre(258));
}

}  // namespace
}  // namespace hs::tokenizer

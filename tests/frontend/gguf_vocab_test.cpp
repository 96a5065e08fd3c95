// Tokenizers read from GGUF against llama.cpp's own test vectors (models/ggml-vocab-*.gguf
// with their .inp/.out files, as llama.cpp's test-tokenizer-0 runs them), and the GGUF copy of
// stories260K's tokenizer against the llama2.c tokenizer.bin it was converted from.
#include <gtest/gtest.h>

#include <sstream>

#include "headsplit/frontend/gguf.h"
#include "headsplit/support/file.h"
#include "headsplit/tokenizer/llama2c.h"
#include "headsplit/tokenizer/tokenizer.h"
#include "testing/testing.h"
#include "testing/vocab_vectors.h"

namespace hs::frontend {
namespace {

using tokenizer::Tokenizer;

using testing::VocabCase;

std::string escaped(const std::string& text) {
  std::string s;
  for (unsigned char c : text) {
    if (c == '\n') {
      s += "\\n";
    } else if (c == '\t') {
      s += "\\t";
    } else if (c < 0x20) {
      s += fmt::format("\\x{:02x}", c);
    } else {
      s += static_cast<char>(c);
    }
  }
  return s;
}

std::unique_ptr<Tokenizer> load(const std::string& gguf) {
  auto data = load_gguf_tokenizer(gguf);
  HS_CHECK(data.ok(), data.ok() ? "" : data.error().message());
  auto tok = Tokenizer::create(std::move(data).value());
  HS_CHECK(tok.ok(), tok.ok() ? "" : tok.error().message());
  return std::move(tok).value();
}

void check_vectors(const std::string& name, bool lossless_with_bos) {
  const std::string base =
      testing::shared_file(fmt::format("tokenizers/{0}/ggml-vocab-{0}.gguf", name));
  const std::vector<VocabCase> cases = testing::read_vocab_vectors(base);
  ASSERT_EQ(cases.size(), 46u);
  auto tok = load(base);
  int failures = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> ids = tok->encode(c.text, /*add_bos=*/false);
    if (ids != c.ids) {
      ++failures;
      ADD_FAILURE() << name << ": \"" << escaped(c.text)
                    << "\"\n  expected: " << fmt::format("{}", fmt::join(c.ids, " "))
                    << "\n  actual:   " << fmt::format("{}", fmt::join(ids, " "));
    }
    // Both vocabularies cover every byte, so decoding gives the text back.
    const std::vector<int32_t> with_bos = tok->encode(c.text, lossless_with_bos);
    EXPECT_EQ(tok->decode(with_bos), c.text) << name << ": \"" << escaped(c.text) << "\"";
  }
  EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << cases.size() << " lines differ";
}

TEST(GgufVocab, Gpt2MatchesLlamaCpp) {
  HS_REQUIRE_SHARED();
  check_vectors("gpt-2", /*lossless_with_bos=*/false);
}

TEST(GgufVocab, LlamaSpmMatchesLlamaCpp) {
  HS_REQUIRE_SHARED();
  // SPM decode drops the dummy-prefix space after BOS, so encode with BOS to round-trip.
  check_vectors("llama-spm", /*lossless_with_bos=*/true);
}

TEST(GgufVocab, Stories260KGgufEqualsTok512) {
  HS_REQUIRE_SHARED();
  auto gguf = load(testing::shared_file("models/stories260K/stories260K.gguf"));
  EXPECT_EQ(gguf->data().kind, tokenizer::TokenizerKind::kSpm);
  auto bin_data =
      tokenizer::load_llama2c_tokenizer(testing::shared_file("models/stories260K/tok512.bin"), 512);
  HS_ASSERT_OK(bin_data);
  HS_ASSERT_OK_AND_ASSIGN(auto bin, Tokenizer::create(std::move(bin_data).value()));
  auto text = read_text_file(testing::shared_file("data/tinystories/valid-sample.txt"));
  HS_ASSERT_OK(text);
  std::istringstream lines(*text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    ++n;
    const std::vector<int32_t> a = gguf->encode(line, true);
    const std::vector<int32_t> b = bin->encode(line, true);
    EXPECT_EQ(a, b) << "line " << n;
    EXPECT_EQ(gguf->decode(a), line) << "line " << n;
  }
  EXPECT_EQ(n, 10);
}

}  // namespace
}  // namespace hs::frontend

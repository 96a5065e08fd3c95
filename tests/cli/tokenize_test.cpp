// `headsplit tokenize` in process: every llama.cpp test vector of the vocabulary-only GGUF files
// in ../shared/tokenizers (models/ggml-vocab-*.gguf.inp/.out, as llama.cpp's test-tokenizer-0
// reads them) through the command, the --detokenize round trip of each, the output formats,
// every kind of source, and clear errors for files without a tokenizer and bad ids.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/cli/sources.h"
#include "headsplit/support/file.h"
#include "testing/cli_run.h"
#include "testing/stories_export.h"
#include "testing/testing.h"
#include "testing/vocab_vectors.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

// "[1, 2, 3]\n" -> "1 2 3".
std::string bare_ids(const std::string& list) {
  std::string s;
  for (char c : list) {
    if (c != '[' && c != ']' && c != ',' && c != '\n') s += c;
  }
  return s;
}

void check_vectors(const std::string& name) {
  const std::string gguf =
      testing::shared_file(fmt::format("tokenizers/{0}/ggml-vocab-{0}.gguf", name));
  const std::vector<testing::VocabCase> cases = testing::read_vocab_vectors(gguf);
  ASSERT_EQ(cases.size(), 46u);
  // The BOS the vocabulary prepends by default (none for GPT-2): the round trip starts with it,
  // as SentencePiece drops the dummy-prefix space only after BOS.
  CliRun bos = run_cli({"tokenize", "-m", gguf, "-p", "", "--ids"});
  ASSERT_EQ(bos.code, 0) << bos.err;
  const std::string bos_ids = bare_ids(bos.out);
  int failures = 0;
  for (const testing::VocabCase& c : cases) {
    const std::string want = fmt::format("{}", fmt::join(c.ids, " "));
    CliRun r = run_cli({"tokenize", "-m", gguf, "-p", c.text, "--ids", "--no-bos"});
    ASSERT_EQ(r.code, 0) << r.err;
    failures += bare_ids(r.out) != want;
    EXPECT_EQ(bare_ids(r.out), want) << name << ": '" << c.text << "'";
    const std::string ids = bos_ids.empty() || want.empty() ? bos_ids + want : bos_ids + " " + want;
    CliRun back = run_cli({"tokenize", "-m", gguf, "--detokenize", "-p", ids});
    ASSERT_EQ(back.code, 0) << back.err;
    EXPECT_EQ(back.out, c.text + "\n") << name << ": ids " << ids;
  }
  EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << cases.size() << " differ";
}

TEST(CliTokenize, Gpt2VocabMatchesLlamaCppVectors) {
  HS_REQUIRE_SHARED();
  check_vectors("gpt-2");
}

TEST(CliTokenize, LlamaSpmVocabMatchesLlamaCppVectors) {
  HS_REQUIRE_SHARED();
  check_vectors("llama-spm");
}

TEST(CliTokenize, PrintsIdTextAndBytes) {
  HS_REQUIRE_SHARED();
  const std::string spm = testing::shared_file("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  CliRun r = run_cli({"tokenize", "-m", spm, "-p", "Hello world\n"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "     1 -> '<s>'\n"
            " 15043 -> 'Hello'  48 65 6c 6c 6f\n"
            "  3186 -> ' world'  20 77 6f 72 6c 64\n"
            "    13 -> '\\n'  0a\n");
  CliRun j = run_cli({"tokenize", "-m", spm, "-p", "Hello", "--json", "--no-bos"});
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["ids"], nlohmann::json::array({15043}));
  EXPECT_EQ(json["tokens"][0]["piece"], "\xe2\x96\x81Hello");  // "▁Hello"
  EXPECT_EQ(json["tokens"][0]["text"], " Hello");              // no BOS before it: the space stays
  EXPECT_EQ(json["tokens"][0]["bytes"].size(), 6u);
}

TEST(CliTokenize, SpecialTokensOnlyWithSpecial) {
  HS_REQUIRE_SHARED();
  const std::string spm = testing::shared_file("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  CliRun plain = run_cli({"tokenize", "-m", spm, "-p", "</s>", "--ids", "--no-bos"});
  CliRun special = run_cli({"tokenize", "-m", spm, "-p", "</s>", "--ids", "--no-bos", "--special"});
  ASSERT_EQ(special.code, 0) << special.err;
  EXPECT_EQ(special.out, "[2]\n");
  EXPECT_NE(plain.out, "[2]\n") << "without --special the text is ordinary characters";
}

TEST(CliTokenize, EverySourceKindAgrees) {
  HS_REQUIRE_SHARED();
  const std::string text = "Once upon a time, Lily saw a cat.";
  std::vector<std::string> outs;
  for (const std::string& m : {testing::shared_file("models/stories260K/tok512.bin"),
                               testing::shared_file("models/stories260K/stories260K.bin"),
                               testing::shared_file("models/stories260K/stories260K.gguf")}) {
    CliRun r = run_cli({"tokenize", "-m", m, "-p", text, "--ids"});
    ASSERT_EQ(r.code, 0) << m << ": " << r.err;
    outs.push_back(r.out);
  }
  // The artifact stores the tokenizer it was exported with (here from tok512.bin).
  const testing::Exported& exported = testing::exported("16a8w", /*split=*/true);
  ASSERT_FALSE(exported.path.empty());
  CliRun hsa = run_cli({"tokenize", "-m", exported.path, "-p", text, "--ids"});
  ASSERT_EQ(hsa.code, 0) << hsa.err;
  EXPECT_EQ(hsa.out, outs[0]);
  EXPECT_EQ(outs[0].rfind("[1, ", 0), 0u) << outs[0];
  EXPECT_EQ(outs[1], outs[0]);
  EXPECT_EQ(outs[2], outs[0]);
  const std::string file = testing::temp_dir() + "/text.txt";
  HS_ASSERT_OK(write_file_atomic(file, text));
  CliRun f = run_cli({"tokenize", "-m", testing::shared_file("models/stories260K/tok512.bin"), "-f",
                      file, "--ids"});
  EXPECT_EQ(f.out, outs[0]);
}

TEST(CliTokenize, ClearErrors) {
  const std::string dir = testing::temp_dir();
  const std::string text = dir + "/notes.txt";
  HS_ASSERT_OK(write_file_atomic(text, "just some text, no tokenizer here"));
  CliRun none = run_cli({"tokenize", "-m", text, "-p", "hi"});
  EXPECT_EQ(none.code, 1);
  EXPECT_EQ(none.err.rfind("headsplit: error: " + text, 0), 0u) << none.err;
  CliRun missing = run_cli({"tokenize", "-m", dir + "/nope.gguf", "-p", "hi"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no such file or directory"), std::string::npos) << missing.err;
  CliRun folder = run_cli({"tokenize", "-m", dir, "-p", "hi"});
  EXPECT_EQ(folder.code, 1);
  EXPECT_NE(folder.err.find("holds no tokenizer (the folder has no tokenizer.json)"),
            std::string::npos)
      << folder.err;
  HS_ASSERT_OK(write_file_atomic(dir + "/config.json", "{}"));
  CliRun json = run_cli({"tokenize", "-m", dir + "/config.json", "-p", "hi"});
  EXPECT_EQ(json.code, 1);
  EXPECT_NE(json.err.find("config.json: a JSON file other than tokenizer.json"), std::string::npos)
      << json.err;
  CliRun both = run_cli({"tokenize", "-m", text, "-p", "a", "-f", text});
  EXPECT_EQ(both.code, 1);
  EXPECT_NE(both.err.find("-p TEXT or -f FILE"), std::string::npos) << both.err;
  HS_REQUIRE_SHARED();
  const std::string tok = testing::shared_file("models/stories260K/tok512.bin");
  CliRun range = run_cli({"tokenize", "-m", tok, "--detokenize", "-p", "1 512"});
  EXPECT_EQ(range.code, 1);
  EXPECT_NE(range.err.find("token id 512 is outside the vocabulary [0, 512)"), std::string::npos)
      << range.err;
  CliRun word = run_cli({"tokenize", "-m", tok, "--detokenize", "-p", "1 two"});
  EXPECT_EQ(word.code, 1);
  EXPECT_NE(word.err.find("'two' at offset 2 is not a token id"), std::string::npos) << word.err;
}

TEST(CliTokenize, Llama2cTokenizerPieceCount) {
  // int32 max length, then {f32 score, i32 length, bytes} records that end at the end of file.
  std::vector<std::byte> b(4);
  auto add = [&](std::string_view piece, int32_t length) {
    b.resize(b.size() + 8);
    std::memcpy(b.data() + b.size() - 4, &length, 4);
    for (char c : piece) b.push_back(static_cast<std::byte>(c));
  };
  add("ab", 2);
  add("c", 1);
  EXPECT_EQ(llama2c_tokenizer_pieces(b), 2);
  b.push_back(std::byte{0});
  EXPECT_EQ(llama2c_tokenizer_pieces(b), std::nullopt) << "a byte left over";
  b.pop_back();
  add("", -1);
  EXPECT_EQ(llama2c_tokenizer_pieces(b), std::nullopt) << "negative length";
  EXPECT_EQ(llama2c_tokenizer_pieces(std::span<const std::byte>(b.data(), 6)), std::nullopt);
}

}  // namespace
}  // namespace hs::cli

// Corrupt llama2.c tokenizer files: each is a clear kCorrupt error naming the file, the token
// and the byte offset, never a crash or a huge allocation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "headsplit/support/file.h"
#include "headsplit/tokenizer/llama2c.h"
#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::HasSubstr;

std::string tok512_bytes() {
  auto bytes = read_text_file(testing::shared_file("models/stories260K/tok512.bin"));
  HS_CHECK(bytes.ok(), "cannot read tok512.bin");
  return *bytes;
}

// Byte offset of token `id`'s record (its score) in a well-formed file, parsed here
// independently of the loader.
size_t record_offset(const std::string& file, int id) {
  size_t offset = 4;
  for (int i = 0; i < id; ++i) {
    int32_t length = 0;
    std::memcpy(&length, file.data() + offset + 4, 4);
    offset += 8 + static_cast<size_t>(length);
  }
  return offset;
}

void put_i32(std::string& file, size_t offset, int32_t value) {
  std::memcpy(file.data() + offset, &value, 4);
}

std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  HS_CHECK(write_file_atomic(path, std::string_view(bytes)).ok(), "cannot write test file");
  return path;
}

TEST(Llama2cCorrupt, TruncatedFiles) {
  HS_REQUIRE_SHARED();
  const std::string good = tok512_bytes();
  ASSERT_EQ(good.size(), 6227u);
  struct Case {
    size_t size;
    std::string expect;  // a substring of the message
  };
  const size_t rec5 = record_offset(good, 5);  // pieces 0..4: "<unk>", BOS, EOS, <0x00>, <0x01>
  ASSERT_EQ(rec5, 4u + 8 + 5 + 8 + 5 + 8 + 6 + 8 + 6 + 8 + 6);
  const std::vector<Case> cases = {
      {0, "0 bytes, expected at least 4 for max_token_length"},
      {3, "3 bytes, expected at least 4"},
      {4, "ends at byte offset 4 after 0 pieces, expected vocab_size 512"},
      {4 + 3, "truncated at token 0 (byte offset 4): 3 bytes left, expected 8"},
      {4 + 8 + 2, "token 0 at byte offset 4 has length 5 but only 2 bytes are left"},
      {rec5, fmt::format("ends at byte offset {} after 5 pieces", rec5)},
      {rec5 + 7, fmt::format("truncated at token 5 (byte offset {})", rec5)},
      {good.size() - 1, "token 511 at byte offset"},
  };
  for (const Case& c : cases) {
    const std::string path = write("cut.bin", good.substr(0, c.size));
    auto result = load_llama2c_tokenizer(path, 512);
    ASSERT_FALSE(result.ok()) << "size " << c.size;
    EXPECT_EQ(result.kind(), ErrorKind::kCorrupt) << result.error().message();
    EXPECT_THAT(result.error().message(), HasSubstr(path)) << "size " << c.size;
    EXPECT_THAT(result.error().message(), HasSubstr(c.expect)) << "size " << c.size;
  }
}

TEST(Llama2cCorrupt, BadLengths) {
  HS_REQUIRE_SHARED();
  const std::string good = tok512_bytes();
  {
    std::string bad = good;
    const size_t rec = record_offset(good, 37);
    put_i32(bad, rec + 4, -5);
    const std::string path = write("negative.bin", bad);
    auto result = load_llama2c_tokenizer(path, 512);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.kind(), ErrorKind::kCorrupt);
    EXPECT_THAT(
        result.error().message(),
        HasSubstr(fmt::format("token 37 has negative length -5 at byte offset {}", rec + 4)));
  }
  {
    std::string bad = good;
    const size_t rec = record_offset(good, 300);
    put_i32(bad, rec + 4, 8);  // max_token_length is 7
    const std::string path = write("long.bin", bad);
    auto result = load_llama2c_tokenizer(path, 512);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.kind(), ErrorKind::kCorrupt);
    EXPECT_THAT(result.error().message(),
                HasSubstr(fmt::format("token 300 has length 8 at byte offset {}, more than "
                                      "max_token_length 7",
                                      rec + 4)));
  }
  {
    std::string bad = good;
    put_i32(bad, 0, 0);
    auto result = load_llama2c_tokenizer(write("zero_max.bin", bad), 512);
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(result.error().message(), HasSubstr("max_token_length is 0 at byte offset 0"));
  }
  {
    // A header allowing long pieces and a last piece running past the end of the file.
    std::string bad(4, '\0');
    put_i32(bad, 0, 1000);
    for (int id = 0; id < 3; ++id) {
      std::string record(8, '\0');
      put_i32(record, 4, id < 2 ? 1 : 500);
      bad += record + (id < 2 ? "x" : "only ten b");
    }
    const std::string path = write("past_end.bin", bad);
    auto result = load_llama2c_tokenizer(path, 3);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.kind(), ErrorKind::kCorrupt);
    EXPECT_THAT(result.error().message(),
                HasSubstr("token 2 at byte offset 22 has length 500 but only 10 bytes are left"));
  }
}

TEST(Llama2cCorrupt, WrongPieceCount) {
  HS_REQUIRE_SHARED();
  const std::string path = testing::shared_file("models/stories260K/tok512.bin");
  auto fewer = load_llama2c_tokenizer(path, 511);
  ASSERT_FALSE(fewer.ok());
  EXPECT_EQ(fewer.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(fewer.error().message(), HasSubstr("more pieces than vocab_size 511"));
  EXPECT_THAT(fewer.error().message(), HasSubstr("follow token 510 at byte offset"));

  auto more = load_llama2c_tokenizer(path, 513);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(more.error().message(),
              HasSubstr("ends at byte offset 6227 after 512 pieces, expected vocab_size 513"));

  // A vocabulary size the file could never hold: an error, not a 2-billion-entry allocation.
  auto huge = load_llama2c_tokenizer(path, 2'000'000'000);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.kind(), ErrorKind::kCorrupt);

  auto absurd = load_llama2c_tokenizer(path, int64_t{1} << 40);
  ASSERT_FALSE(absurd.ok());
  EXPECT_EQ(absurd.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(absurd.error().message(), HasSubstr("vocab_size 1099511627776 is out of range"));

  auto missing = load_llama2c_tokenizer(testing::temp_dir() + "/nope.bin", 512);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.kind(), ErrorKind::kIo);
  EXPECT_THAT(missing.error().message(), HasSubstr("nope.bin"));
}

}  // namespace
}  // namespace hs::tokenizer

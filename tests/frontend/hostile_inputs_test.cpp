// Hostile inputs to the model readers (issue 16): nested JSON, non-regular files, sizes beyond
// the model, damaged weights and the messages that report them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <fstream>

#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

// Class 1: nesting is bounded before parsing (a million levels would overflow the stack when
// printed); 64 levels are fine; brackets inside strings do not count.
TEST(HostileJson, DeepNestingIsRefusedWithTheLimit) {
  const std::string deep = write_text("deep_config.json", R"({"x":)" + nested(1000000) + "}");
  auto r = load_hf_config(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kParse);
  EXPECT_THAT(r.error().message(), HasSubstr("nested deeper than 64 levels"));
  EXPECT_THAT(r.error().message(), HasSubstr(deep));

  // 63 levels under the top object: parsed, then refused for a missing key, not for depth.
  const std::string ok = write_text(
      "ok_config.json",
      R"({"x":)" + nested(63) +
          R"(,"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})");
  auto r2 = load_hf_config(ok);
  ASSERT_FALSE(r2.ok());
  EXPECT_THAT(r2.error().message(), Not(HasSubstr("nested deeper")));
  EXPECT_THAT(r2.error().message(), HasSubstr("architecture"));  // parsed: the next check
}

// Class 1: a huge offending value is quoted clipped, not dumped whole.
TEST(HostileJson, QuotedValuesAreClipped) {
  const std::string big(200000, 'x');
  std::string header = R"({"w":{"dtype":"F32","shape":[")" + big + R"("],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header + std::string(4, '\0');
  auto r = SafetensorsFile::open(write_text("clip.safetensors", file));
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message().size(), 1000u) << r.error().message().substr(0, 300);
  EXPECT_THAT(r.error().message(), HasSubstr("..."));
}

// Class 3: a FIFO is refused at once (open() on it would block forever) and named as such;
// so is a character device. A missing file is "no such file or directory".
TEST(HostileFiles, FifoAndDeviceAreNamedNotOpened) {
  const std::string fifo = testing::temp_dir() + "/model_fifo.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ::alarm(20);  // a regression would hang: fail loudly instead
  auto r = load_model(fifo);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("is a FIFO (named pipe), expected a regular file"));
  auto dev = load_model("/dev/null");
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(dev.error().message(), HasSubstr("/dev/null: is a character device"));
  auto tok = load_model(testing::temp_dir() + "/nothing.bin");
  EXPECT_EQ(tok.kind(), ErrorKind::kNotFound);
  // A FIFO where a folder's config.json should be.
  const std::string dir = testing::temp_dir() + "/fifo_model";
  ::mkdir(dir.c_str(), 0755);
  ASSERT_EQ(::mkfifo((dir + "/config.json").c_str(), 0600), 0);
  auto hf = load_model(dir);
  ASSERT_FALSE(hf.ok());
  EXPECT_THAT(hf.error().message(), HasSubstr("config.json: is a FIFO"));
  ::alarm(0);
}

LlamaModel tiny(int64_t max_seq_len) {
  LlamaConfig c;
  c.dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 8;
  c.hidden_dim = 32, c.vocab_size = 32, c.max_seq_len = max_seq_len;
  return make_random_llama(c, 1);
}

// Class 2: the context length is bounded by the trained context and a memory estimate, with
// an error that says the limit; nothing is allocated first.
TEST(HostileSizes, ContextLengthIsCheckedAgainstTheModelAndMemory) {
  const LlamaModel m = tiny(64);
  HS_ASSERT_OK_AND_ASSIGN(StepLengths ok, step_lengths(m, 64, 8));
  EXPECT_EQ(ok.context_len, 64);
  auto above = step_lengths(m, 65, 8);
  EXPECT_EQ(above.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(above.error().message(),
              HasSubstr("context length 65 is above the model's trained context 64"));

  // Unknown trained context: the memory estimate is the bound.
  const LlamaModel open = tiny(int64_t{1} << 40);
  auto huge = step_lengths(open, int64_t{1} << 40, 32);
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.error().message(), HasSubstr("GiB of memory of this machine"));
  EXPECT_THAT(huge.error().message(), HasSubstr("context length 1099511627776"));
}

// Class 7: hidden 16 over 3 heads is reported as that, not as "head_dim 5 is odd".
TEST(HostileMessages, IndivisibleHiddenSizeIsTheReportedFault) {
  LlamaConfig c;
  c.dim = 16, c.n_layers = 1, c.n_heads = 3, c.n_kv_heads = 1, c.head_dim = 16 / 3;
  c.hidden_dim = 32, c.vocab_size = 32, c.max_seq_len = 64;
  Status s = c.validate("cfg");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("dim 16 is not divisible by n_heads 3"));
  EXPECT_THAT(s.error().message(), Not(HasSubstr("odd")));
}

// Class 6: a NaN weight is reported at load naming the file and the tensor.
TEST(HostileWeights, NanWeightNamesFileAndTensor) {
  HS_REQUIRE_SHARED();
  auto bytes = read_text_file(testing::shared_file("models/stories260K/stories260K.bin"));
  HS_ASSERT_OK(bytes);
  std::string damaged = *bytes;
  const float nan = std::nanf("");
  std::memcpy(damaged.data() + 28 + 4 * 5, &nan, 4);  // tok_embeddings element 5
  const std::string path = write_text("nan_stories260K.bin", damaged);
  auto r = load_model(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(r.error().message(), HasSubstr(path));
  EXPECT_THAT(r.error().message(), HasSubstr("tensor 'tok_embeddings' has nan at element 5"));
}

// The vectorized finiteness scan finds a -inf in the last lane of the last 16-group too.
TEST(HostileWeights, InfiniteLastWeightOfATensorIsReported) {
  HS_REQUIRE_SHARED();
  auto bytes = read_text_file(testing::shared_file("models/stories260K/stories260K.bin"));
  HS_ASSERT_OK(bytes);
  std::string damaged = *bytes;
  const float inf = -std::numeric_limits<float>::infinity();
  std::memcpy(damaged.data() + 28 + 4 * 32767, &inf, 4);  // tok_embeddings [512, 64]: the last
  const std::string path = write_text("inf_stories260K.bin", damaged);
  auto r = load_model(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(r.error().message(),
              HasSubstr("tensor 'tok_embeddings' has -inf at element 32767 of 32768"));
}

}  // namespace
}  // namespace hs::frontend

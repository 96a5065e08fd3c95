// Hostile artifacts (issue 16, class 4): fields that their own checks accept but the rest of
// the file contradicts. Each is refused by check_program, which both the reader (before any
// memory is committed) and the writer run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "artifact/artifact_testing.h"
#include "headsplit/artifact/format.h"
#include "headsplit/artifact/reader.h"
#include "testing/testing.h"

namespace hs::artifact {
namespace {

using ::testing::HasSubstr;

Status check(const Program& p) {
  uint64_t data_size = 0;
  Program sized = p;
  auto size = assign_weight_offsets(sized.weights);
  if (size.ok()) data_size = *size;
  return check_program(sized, CheckOptions{data_size}, "hostile.hsa");
}

TEST(HostileArtifact, SampleProgramPasses) { HS_EXPECT_OK(check(testing::sample_program())); }

// An arena far larger than its tensors would be allocated and zeroed at load.
TEST(HostileArtifact, ArenaLargerThanItsTensorsIsRefused) {
  Program p = testing::sample_program();
  const int64_t planned = p.graphs[0].arena_bytes;
  p.graphs[0].arena_bytes = int64_t{1} << 40;
  Status s = check(p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kCorrupt);
  // The sample's last arena tensor ends at 96; the planner rounds to the 64-byte alignment.
  EXPECT_THAT(s.error().message(),
              HasSubstr(fmt::format("arena_bytes {} but its tensors end at byte 96 (at most {} "
                                    "with alignment)",
                                    int64_t{1} << 40, planned)));
  p.graphs[0].arena_bytes = planned + 64;  // one alignment unit too many
  EXPECT_FALSE(check(p).ok());
  // And the reader refuses such a file before planning (the writer refuses to write it).
  auto written = write_artifact(hs::testing::temp_dir() + "/arena.hsa", p,
                                testing::memory_source(testing::sample_weight_data(p, 1)));
  EXPECT_FALSE(written.ok());
}

TEST(HostileArtifact, ArLengthsThatDisagreeWithTheGraphsAreRefused) {
  Program p = testing::sample_program();
  p.metadata.ar_lengths = {4, 1};
  Status s = check(p);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(),
              HasSubstr("metadata ar_lengths [4, 1] but the graphs have [2, 1]"));
}

TEST(HostileArtifact, TokenizerKindMustMatchItsPieces) {
  Program p = testing::sample_program();
  p.tokenizer.scores.clear();  // spm without scores: not an spm vocabulary
  p.tokenizer.types.clear();
  Status s = check(p);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("spm tokenizer with 0 scores for 5 pieces"));

  Program v = testing::sample_program();
  v.metadata.vocab_size = 7;
  EXPECT_THAT(check(v).error().message(), HasSubstr("tokenizer has 5 pieces but vocab_size is 7"));
}

}  // namespace
}  // namespace hs::artifact

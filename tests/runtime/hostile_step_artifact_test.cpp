// Hostile artifacts (issue 16, class 4): a real step-graph artifact whose metadata disagrees
// with its graphs' tensor shapes (context length, AR length, vocabulary) is refused by the
// checks the reader runs before any memory is committed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "headsplit/artifact/format.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime {
namespace {

using ::testing::HasSubstr;

TEST(HostileStepArtifact, MetadataMustMatchTheGraphShapes) {
  HS_REQUIRE_SHARED();
  const testing::Exported& e = testing::exported("16a8w", true);
  ASSERT_NE(e.artifact, nullptr);
  const artifact::Program& good = e.artifact->program();
  const artifact::CheckOptions options{e.artifact->header().data_size};
  HS_ASSERT_OK(artifact::check_program(good, options, "stories.hsa"));

  artifact::Program ctx = good;
  ctx.metadata.context_len += 1;
  Status s = artifact::check_program(ctx, options, "stories.hsa");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(),
              HasSubstr(fmt::format("metadata context_len is {} but the graph's I/O shapes say {}",
                                    good.metadata.context_len + 1, good.metadata.context_len)));

  artifact::Program ar = good;
  ar.graphs[0].ar_len += 1;
  s = artifact::check_program(ar, options, "stories.hsa");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("but its tokens input has T ="));

  artifact::Program vocab = good;
  vocab.metadata.vocab_size = 1000;
  EXPECT_FALSE(artifact::check_program(vocab, options, "stories.hsa").ok());
}

}  // namespace
}  // namespace hs::runtime

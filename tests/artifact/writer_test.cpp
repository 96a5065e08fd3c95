// The writer's atomicity and argument checks: a failed write (weight source error, wrong
// byte count, invalid program) leaves no file at the destination and no temporary file, and
// leaves an existing destination untouched.
#include "headsplit/artifact/writer.h"

#include <filesystem>
#include <random>

#include "artifact/artifact_testing.h"
#include "headsplit/artifact/reader.h"
#include "testing/testing.h"

namespace hs::artifact {
namespace {

// Serves the sample weights but fails at weight `fail_at`, counting the calls.
struct FailingSource {
  const std::vector<std::vector<std::byte>>* data;
  int fail_at;
  int calls = 0;

  WeightSource source() {
    return [this](int index, const WeightDesc& w) -> Result<std::span<const std::byte>> {
      ++calls;
      if (index == fail_at) {
        return errorf(ErrorKind::kIo, "reading '{}' from the checkpoint failed", w.name);
      }
      return std::span<const std::byte>((*data)[static_cast<size_t>(index)]);
    };
  }
};

TEST(ArtifactWriter, SourceErrorLeavesNoFile) {
  std::string dir = hs::testing::temp_dir();
  Program program = testing::sample_program();
  auto data = testing::sample_weight_data(program, 1);
  FailingSource failing{&data, 2};
  std::string path = dir + "/model.hsa";
  auto written = write_artifact(path, program, failing.source());
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.kind(), ErrorKind::kIo);  // the source's error kind is kept
  EXPECT_EQ(written.error().message(),
            path +
                ": weight #2 'layers.0.feed_forward.w1': reading 'layers.0.feed_forward.w1' "
                "from the checkpoint failed");
  EXPECT_EQ(failing.calls, 3);  // weights 0 and 1 were written before the failure
  EXPECT_TRUE(testing::list_dir(dir).empty());
}

TEST(ArtifactWriter, SourceErrorLeavesExistingFileUntouched) {
  std::string dir = hs::testing::temp_dir();
  std::string path = testing::write_sample(dir, "model.hsa");
  std::vector<std::byte> before = testing::read_bytes(path);
  Program program = testing::sample_program();
  program.metadata.model_name = "replacement";
  auto data = testing::sample_weight_data(program, 5);
  for (int fail_at : {0, 3}) {
    FailingSource failing{&data, fail_at};
    EXPECT_EQ(write_artifact(path, program, failing.source()).kind(), ErrorKind::kIo);
    EXPECT_EQ(testing::read_bytes(path), before);
    EXPECT_EQ(testing::list_dir(dir), std::vector<std::string>{"model.hsa"});
  }
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  EXPECT_EQ(loaded.program().metadata.model_name, "sample");
}

TEST(ArtifactWriter, WrongByteCountIsRejected) {
  std::string dir = hs::testing::temp_dir();
  Program program = testing::sample_program();
  auto data = testing::sample_weight_data(program, 1);
  data[2].resize(27);  // i4 one per byte instead of packed: 27 bytes, expected 3 rows * 5
  std::string path = dir + "/model.hsa";
  auto written = write_artifact(path, program, testing::memory_source(data));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(written.error().message(),
            path +
                ": weight #2 'layers.0.feed_forward.w1': source gave 27 bytes, expected 15 "
                "(i4[3,9] packed in rows)");
  EXPECT_TRUE(testing::list_dir(dir).empty());
}

TEST(ArtifactWriter, InvalidProgramIsRefusedBeforeAnyWrite) {
  std::string dir = hs::testing::temp_dir();
  Program program = testing::sample_program();
  program.graphs[0].nodes[0].inputs[0] = 42;
  int calls = 0;
  auto written =
      write_artifact(dir + "/model.hsa", program,
                     [&calls](int, const WeightDesc&) -> Result<std::span<const std::byte>> {
                       ++calls;
                       return std::span<const std::byte>();
                     });
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(written.error().message().find("input tensor index 42 outside [0, 10)"),
            std::string::npos)
      << written.error().message();
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(testing::list_dir(dir).empty());
}

TEST(ArtifactWriter, MissingSourceIsRejected) {
  std::string dir = hs::testing::temp_dir();
  auto written = write_artifact(dir + "/model.hsa", testing::sample_program(), {});
  EXPECT_EQ(written.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(written.error().message().find("no weight source for 4 weights"), std::string::npos);
  EXPECT_TRUE(testing::list_dir(dir).empty());
}

TEST(ArtifactWriter, MissingDirectoryIsIo) {
  std::string path = hs::testing::temp_dir() + "/no/such/dir/model.hsa";
  auto written = write_artifact(path, Program{}, {});
  EXPECT_EQ(written.kind(), ErrorKind::kIo);
  EXPECT_NE(written.error().message().find(path), std::string::npos);
}

// Seeded property: random weight lists (types, shapes, layouts) round trip byte for byte and
// every weight lands 64-byte aligned in the mapping.
TEST(ArtifactWriter, RandomWeightListsRoundTrip) {
  std::string dir = hs::testing::temp_dir();
  std::mt19937 rng(11);
  for (int iter = 0; iter < 20; ++iter) {
    Program program;
    int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      WeightDesc w;
      w.name = fmt::format("w{}", i);
      w.dtype = static_cast<ElementType>(rng() % kNumElementTypes);
      w.layout = w.dtype == ElementType::kI4 ? WeightLayout::kInt4Packed : WeightLayout::kPlain;
      if (opset::dtype_is_integer_storage(w.dtype)) {  // integer storage carries its params
        const int bits =
            w.dtype == ElementType::kI4 ? 4 : static_cast<int>(opset::dtype_size(w.dtype)) * 8;
        w.quant = Quant::per_tensor(0.5f, 0, bits, static_cast<int32_t>(opset::dtype_min(w.dtype)),
                                    static_cast<int32_t>(opset::dtype_max(w.dtype)));
      }
      int rank = static_cast<int>(rng() % 4);
      for (int d = 0; d < rank; ++d) w.shape.push_back(static_cast<int64_t>(rng() % 70));
      program.weights.push_back(w);
    }
    auto data = testing::sample_weight_data(program, iter);
    std::string path = dir + fmt::format("/random{}.hsa", iter);
    HS_ASSERT_OK(write_artifact(path, program, testing::memory_source(data)));
    HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
    ASSERT_EQ(loaded.program().weights.size(), data.size());
    for (int i = 0; i < n; ++i) {
      std::span<const std::byte> bytes = loaded.weight_bytes(i);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(bytes.data()) % 64, 0u);
      EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), data[i].begin(), data[i].end()))
          << "iteration " << iter << " weight " << i;
    }
  }
}

}  // namespace
}  // namespace hs::artifact

// Write -> load round trips: every field of the program comes back equal, weight bytes come
// back equal and 64-byte aligned inside the mapping, and the header describes the layout.
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "artifact/artifact_testing.h"
#include "headsplit/artifact/format.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/artifact/writer.h"
#include "testing/testing.h"

namespace hs::artifact {
namespace {

using testing::memory_source;
using testing::sample_program;
using testing::sample_weight_data;

void expect_tokenizer_eq(const tokenizer::TokenizerData& a, const tokenizer::TokenizerData& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.pieces, b.pieces);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.pre_tokenizer, b.pre_tokenizer);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.extra_eos_ids, b.extra_eos_ids);
  EXPECT_EQ(a.unk_id, b.unk_id);
  EXPECT_EQ(a.pad_id, b.pad_id);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  EXPECT_EQ(a.max_token_length, b.max_token_length);
  EXPECT_EQ(a.chat_template, b.chat_template);
}

void expect_program_eq(const Program& a, const Program& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  expect_tokenizer_eq(a.tokenizer, b.tokenizer);
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) EXPECT_EQ(a.weights[i], b.weights[i]) << i;
  ASSERT_EQ(a.graphs.size(), b.graphs.size());
  for (size_t g = 0; g < a.graphs.size(); ++g) {
    const GraphDesc& ga = a.graphs[g];
    const GraphDesc& gb = b.graphs[g];
    EXPECT_EQ(ga.name, gb.name);
    EXPECT_EQ(ga.ar_len, gb.ar_len);
    EXPECT_EQ(ga.inputs, gb.inputs);
    EXPECT_EQ(ga.outputs, gb.outputs);
    EXPECT_EQ(ga.arena_bytes, gb.arena_bytes);
    ASSERT_EQ(ga.tensors.size(), gb.tensors.size());
    for (size_t i = 0; i < ga.tensors.size(); ++i) EXPECT_EQ(ga.tensors[i], gb.tensors[i]) << i;
    ASSERT_EQ(ga.nodes.size(), gb.nodes.size());
    for (size_t i = 0; i < ga.nodes.size(); ++i) EXPECT_EQ(ga.nodes[i], gb.nodes[i]) << i;
  }
}

TEST(ArtifactLayout, AssignsAlignedOffsetsByHand) {
  Program p = sample_program();
  HS_ASSERT_OK_AND_ASSIGN(uint64_t data_size, assign_weight_offsets(p.weights));
  // Weights first: f32[5,4] = 80 B at 0; i8[4,4] = 16 B at 128; i4[3,9] = 3 rows of
  // ceil(9/2) = 15 B at 192; u16[4] = 8 B at 256 (per-tensor params stay inline). Then the
  // params: the i8's 4 per-axis scales (zero points all 0, not stored) 16 B at 320, the i4's 9
  // per-block scales 36 B at 384; the data section ends at 420.
  EXPECT_EQ(p.weights[0].offset, 0u);
  EXPECT_EQ(p.weights[0].size_bytes, 80u);
  EXPECT_EQ(p.weights[0].params_size, 0u);
  EXPECT_EQ(p.weights[1].offset, 128u);
  EXPECT_EQ(p.weights[1].size_bytes, 16u);
  EXPECT_EQ(p.weights[1].params_offset, 320u);
  EXPECT_EQ(p.weights[1].params_size, 16u);
  EXPECT_EQ(p.weights[2].offset, 192u);
  EXPECT_EQ(p.weights[2].size_bytes, 15u);
  EXPECT_EQ(p.weights[2].params_offset, 384u);
  EXPECT_EQ(p.weights[2].params_size, 36u);
  EXPECT_EQ(p.weights[3].offset, 256u);
  EXPECT_EQ(p.weights[3].size_bytes, 8u);
  EXPECT_EQ(p.weights[3].params_size, 0u);
  EXPECT_EQ(data_size, 420u);
  // Non-zero zero points are stored after the scales: 8 bytes per channel.
  p.weights[1].quant.zero_points = {0, 1, 0, -1};
  HS_ASSERT_OK_AND_ASSIGN(data_size, assign_weight_offsets(p.weights));
  EXPECT_EQ(p.weights[1].params_size, 32u);
  EXPECT_EQ(p.weights[2].params_offset, 384u);  // 320 + 32 rounded up to 64
  EXPECT_EQ(data_size, 420u);
}

TEST(ArtifactRoundTrip, EveryFieldAndWeightByteComesBack) {
  Program program = sample_program();
  auto data = sample_weight_data(program, 7);
  std::string path = hs::testing::temp_dir() + "/sample.hsa";
  HS_ASSERT_OK_AND_ASSIGN(WriteSummary summary, write_artifact(path, program, memory_source(data)));
  EXPECT_EQ(summary.file_size, std::filesystem::file_size(path));
  EXPECT_EQ(summary.data_offset % 64, 0u);
  EXPECT_EQ(summary.data_size, 420u);  // AssignsAlignedOffsetsByHand
  EXPECT_EQ(summary.data_offset + summary.data_size, summary.file_size);
  EXPECT_GE(summary.data_offset, kHeaderSize + summary.program_size);
  EXPECT_LT(summary.data_offset, kHeaderSize + summary.program_size + 64);

  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  EXPECT_EQ(loaded.file_size(), summary.file_size);
  EXPECT_EQ(loaded.path(), path);
  const FileHeader& h = loaded.header();
  EXPECT_EQ(h.major, kFormatMajor);
  EXPECT_EQ(h.minor, kFormatMinor);
  EXPECT_EQ(h.header_size, kHeaderSize);
  EXPECT_EQ(h.checksum, summary.checksum);
  EXPECT_EQ(h.program_offset, kHeaderSize);
  EXPECT_EQ(h.program_size, summary.program_size);
  EXPECT_EQ(h.data_offset, summary.data_offset);

  Program expected = program;
  HS_ASSERT_OK(assign_weight_offsets(expected.weights));
  expect_program_eq(loaded.program(), expected);

  for (size_t i = 0; i < data.size(); ++i) {
    std::span<const std::byte> bytes = loaded.weight_bytes(static_cast<int>(i));
    ASSERT_EQ(bytes.size(), data[i].size()) << i;
    EXPECT_EQ(std::memcmp(bytes.data(), data[i].data(), bytes.size()), 0) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(bytes.data()) % 64, 0u) << "weight " << i;
  }
  EXPECT_NE(loaded.program().find_graph("decode"), nullptr);
  EXPECT_EQ(loaded.program().find_graph("decode")->ar_len, 1);
  EXPECT_EQ(loaded.program().find_graph("verify"), nullptr);
  // Read into huge pages (the default) or mapped: the same program and bytes.
  EXPECT_EQ(loaded.residence(), Residence::kHugePages);
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact mapped,
                          load_artifact(path, {.residence = Residence::kMapped}));
  EXPECT_EQ(mapped.residence(), Residence::kMapped);
  EXPECT_EQ(mapped.path(), path);
  expect_program_eq(mapped.program(), expected);
  for (size_t i = 0; i < data.size(); ++i) {
    std::span<const std::byte> bytes = mapped.weight_bytes(static_cast<int>(i));
    ASSERT_EQ(bytes.size(), data[i].size()) << i;
    EXPECT_EQ(std::memcmp(bytes.data(), data[i].data(), bytes.size()), 0) << i;
  }
  EXPECT_STREQ(residence_name(Residence::kHugePages), "huge pages");
  EXPECT_STREQ(residence_name(Residence::kMapped), "mapped");
}

// Per-axis and per-block params are stored once, in the data section after their weight,
// however many graphs use the weight: each weight's scale bytes occur exactly once in the file,
// zero points only when one is not zero, and every constant comes back with its weight's params.
TEST(ArtifactRoundTrip, QuantParamsAreStoredOnceInTheDataSection) {
  Program program = sample_program();
  program.weights[1].quant.zero_points = {0, 1, 0, -1};
  for (GraphDesc& g : program.graphs) {
    for (TensorDesc& t : g.tensors) {
      if (t.weight == 1) t.quant = program.weights[1].quant;
    }
  }
  auto data = sample_weight_data(program, 3);
  std::string path = hs::testing::temp_dir() + "/params.hsa";
  HS_ASSERT_OK(write_artifact(path, program, memory_source(data)));
  const std::vector<std::byte> file = testing::read_bytes(path);
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  auto count = [&](std::span<const std::byte> needle) {
    int n = 0;
    for (auto it = file.begin();
         (it = std::search(it, file.end(), needle.begin(), needle.end())) != file.end(); ++it)
      ++n;
    return n;
  };
  const uint64_t data_offset = loaded.header().data_offset;
  for (int i : {1, 2}) {
    const WeightDesc& w = loaded.program().weights[static_cast<size_t>(i)];
    const Quant& q = program.weights[static_cast<size_t>(i)].quant;
    EXPECT_EQ(w.quant, q) << i;
    auto scales = std::as_bytes(std::span(q.scales));
    EXPECT_EQ(count(scales), 1) << i;
    ASSERT_GT(w.params_size, 0u) << i;
    EXPECT_EQ(std::memcmp(file.data() + data_offset + w.params_offset, scales.data(),
                          scales.size()),
              0)
        << i;
  }
  EXPECT_EQ(loaded.program().weights[1].params_size, 32u);  // 4 scales + 4 zero points
  EXPECT_EQ(loaded.program().weights[2].params_size, 36u);  // 9 scales, zero points all 0
  EXPECT_EQ(count(std::as_bytes(std::span(program.weights[1].quant.zero_points))), 1);
  int constants = 0;
  for (const GraphDesc& g : loaded.program().graphs) {
    for (const TensorDesc& t : g.tensors) {
      if (t.role != TensorRole::kConstant) continue;
      ++constants;
      EXPECT_EQ(t.quant, loaded.program().weights[static_cast<size_t>(t.weight)].quant) << t.name;
    }
  }
  EXPECT_GE(constants, 6);
}

TEST(ArtifactRoundTrip, WeightViewOutlivesTheArtifact) {
  std::string path = testing::write_sample(hs::testing::temp_dir(), "view.hsa");
  auto data = sample_weight_data(sample_program(), 1);
  BufferView view;
  {
    HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
    view = loaded.weight_view(2);
  }
  ASSERT_EQ(view.size, data[2].size());
  EXPECT_EQ(std::memcmp(view.bytes().data(), data[2].data(), view.size), 0);
}

TEST(ArtifactRoundTrip, EmptyProgram) {
  std::string path = hs::testing::temp_dir() + "/empty.hsa";
  Program empty;
  HS_ASSERT_OK_AND_ASSIGN(WriteSummary summary, write_artifact(path, empty, {}));
  EXPECT_EQ(summary.data_size, 0u);
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  expect_program_eq(loaded.program(), empty);
}

TEST(ArtifactRoundTrip, RewritingReplacesTheFile) {
  std::string dir = hs::testing::temp_dir();
  std::string path = testing::write_sample(dir, "again.hsa");
  Program program = sample_program();
  program.metadata.model_name = "second";
  auto data = sample_weight_data(program, 99);
  HS_ASSERT_OK(write_artifact(path, program, memory_source(data)));
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  EXPECT_EQ(loaded.program().metadata.model_name, "second");
  EXPECT_EQ(std::memcmp(loaded.weight_bytes(0).data(), data[0].data(), data[0].size()), 0);
  EXPECT_EQ(testing::list_dir(dir), std::vector<std::string>{"again.hsa"});
}

TEST(ArtifactHeader, EncodesFieldsAtDocumentedOffsets) {
  FileHeader h{1, 2, 64, 0x1122334455667788ull, 1000, 64, 300, 384, 616};
  auto bytes = encode_header(h);
  EXPECT_EQ(std::memcmp(bytes.data(), "\x89HSA\r\n\x1a\n", 8), 0);
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), 1);   // major, little-endian
  EXPECT_EQ(static_cast<uint8_t>(bytes[10]), 2);  // minor
  EXPECT_EQ(static_cast<uint8_t>(bytes[12]), 64);
  EXPECT_EQ(static_cast<uint8_t>(bytes[16]), 0x88);  // checksum low byte first
  EXPECT_EQ(static_cast<uint8_t>(bytes[23]), 0x11);
  EXPECT_EQ(testing::get_u64(bytes, kFileSizeOffset), 1000u);
  EXPECT_EQ(testing::get_u64(bytes, kDataSizeOffset), 616u);
  EXPECT_EQ(decode_header(bytes), h);
}

TEST(ArtifactHeader, ChecksumSkipsOnlyItsOwnField) {
  std::vector<std::byte> file(100, std::byte{3});
  uint64_t base = compute_checksum(file);
  file[kChecksumOffset + 3] = std::byte{9};  // inside the checksum field: ignored
  EXPECT_EQ(compute_checksum(file), base);
  file[kChecksumOffset - 1] = std::byte{9};  // just before it
  EXPECT_NE(compute_checksum(file), base);
  file[kChecksumOffset - 1] = std::byte{3};
  file[kChecksumOffset + 8] = std::byte{9};  // just after it
  EXPECT_NE(compute_checksum(file), base);
}

}  // namespace
}  // namespace hs::artifact

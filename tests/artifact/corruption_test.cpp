// The reader on damaged files: bad magic, other versions, truncation, flipped bytes, header
// offsets outside the file or overflowing. Each case checks the error kind and that the
// message names the file; none may crash (these tests also run under ASan/UBSan).
#include <flatbuffers/flatbuffers.h>

#include <random>

#include "artifact/artifact_testing.h"
#include "headsplit/artifact/reader.h"
#include "testing/testing.h"

namespace hs::artifact {
namespace {

using testing::fix_checksum;
using testing::put_u16;
using testing::put_u64;

class ArtifactCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hs::testing::temp_dir();
    good_ = testing::read_bytes(testing::write_sample(dir_, "good.hsa"));
    ASSERT_GT(good_.size(), 512u);
    path_ = dir_ + "/bad.hsa";
  }
  // Writes `bytes` to the bad file and loads it.
  Result<LoadedArtifact> load(const std::vector<std::byte>& bytes, LoadOptions options = {}) {
    testing::write_bytes(path_, bytes);
    return load_artifact(path_, options);
  }
  // Loads `bytes` and expects an error of `kind` whose message starts with the path.
  void expect_error(const std::vector<std::byte>& bytes, ErrorKind kind,
                    std::string_view fragment = {}, LoadOptions options = {}) {
    auto loaded = load(bytes, options);
    ASSERT_FALSE(loaded.ok()) << "expected " << error_kind_name(kind);
    EXPECT_EQ(loaded.kind(), kind) << loaded.error().message();
    EXPECT_EQ(loaded.error().message().rfind(path_ + ": ", 0), 0u) << loaded.error().message();
    EXPECT_NE(loaded.error().message().find(fragment), std::string::npos)
        << loaded.error().message() << " (expected '" << fragment << "')";
  }
  uint64_t program_size() const { return testing::get_u64(good_, kProgramSizeOffset); }
  uint64_t data_offset() const { return testing::get_u64(good_, kDataOffsetOffset); }

  std::string dir_;
  std::string path_;
  std::vector<std::byte> good_;
};

TEST_F(ArtifactCorruption, GoodFileLoads) { HS_ASSERT_OK(load(good_)); }

TEST_F(ArtifactCorruption, MissingFileIsIo) {
  auto loaded = load_artifact(dir_ + "/absent.hsa");
  EXPECT_EQ(loaded.kind(), ErrorKind::kIo);
  EXPECT_NE(loaded.error().message().find("absent.hsa"), std::string::npos);
}

TEST_F(ArtifactCorruption, BadMagic) {
  std::vector<std::byte> bytes = good_;
  bytes[1] = std::byte{'G'};  // "\x89GSA..."
  expect_error(bytes, ErrorKind::kBadMagic, "magic is 89 47 53 41 0d 0a 1a 0a");
  std::vector<std::byte> text(100, std::byte{'a'});
  expect_error(text, ErrorKind::kBadMagic, "not a .hsa artifact");
}

TEST_F(ArtifactCorruption, OtherMajorVersionIsRejected) {
  std::vector<std::byte> bytes = good_;
  put_u16(bytes, kMajorOffset, kFormatMajor + 1);
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kVersion, "format version 4.0, this build reads 3.0 to 3.0");
  put_u16(bytes, kMajorOffset, 0);
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kVersion, "format version 0.0");
}

// Format 1 and 2 files (quant params repeated in the program; an uncompressed, unshared
// program) are named as older, with both versions and what to do.
TEST_F(ArtifactCorruption, OlderMajorVersionSaysReExport) {
  std::vector<std::byte> bytes = good_;
  for (uint16_t major : {1, 2}) {
    put_u16(bytes, kMajorOffset, major);
    put_u16(bytes, kMinorOffset, 0);
    fix_checksum(bytes);
    expect_error(bytes, ErrorKind::kVersion,
                 fmt::format("format version {}.0 is older than this build's 3.0 (it reads 3.0 "
                             "to 3.0",
                             major));
    expect_error(bytes, ErrorKind::kVersion, "re-export with headsplit export");
  }
}

// Quant params in the data section: the count, size, alignment and range are checked before a
// byte is read.
TEST_F(ArtifactCorruption, QuantParamsOutsideTheDataSection) {
  Program p = testing::sample_program();
  HS_ASSERT_OK(assign_weight_offsets(p.weights));
  const auto data = testing::data_section(p, testing::sample_weight_data(p, 1));
  auto with = [&](uint64_t offset, uint64_t size) {
    Program q = p;
    q.weights[2].params_offset = offset;
    q.weights[2].params_size = size;
    return testing::assemble_file(encode_program(q), data);
  };
  HS_ASSERT_OK(load(with(p.weights[2].params_offset, 36)));  // the writer's values
  expect_error(with((data.size() + 63) / 64 * 64, 36), ErrorKind::kOutOfRange,
               "weight #2 'layers.0.feed_forward.w1': quant params of 36 bytes at data offset");
  expect_error(with(~uint64_t{0} - 63, 36), ErrorKind::kOutOfRange, "go past the data section");
  expect_error(with(p.weights[2].params_offset + 4, 36), ErrorKind::kAlignment,
               "quant params offset");
  expect_error(with(p.weights[2].params_offset, 40), ErrorKind::kCorrupt,
               "quant params of 40 bytes for 9 scales, expected 36 or 72");
}

TEST_F(ArtifactCorruption, NewerMinorVersionIsAccepted) {
  std::vector<std::byte> bytes = good_;
  put_u16(bytes, kMinorOffset, kFormatMinor + 3);
  fix_checksum(bytes);
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load(bytes));
  EXPECT_EQ(loaded.header().minor, kFormatMinor + 3);
  EXPECT_EQ(loaded.program().graphs.size(), 2u);
}

// A newer minor version may add fields; this reader must ignore them. Program with only an
// unknown field (slot 9: a string) and no known ones.
TEST_F(ArtifactCorruption, UnknownProgramFieldsAreIgnored) {
  flatbuffers::FlatBufferBuilder b;
  auto future = b.CreateString("a field from format 1.1");
  auto start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(9), future);
  auto root = flatbuffers::Offset<flatbuffers::Table>(b.EndTable(start));
  b.Finish(root, "HSAP");
  std::vector<std::byte> program(b.GetSize());
  std::memcpy(program.data(), b.GetBufferPointer(), program.size());
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load(testing::assemble_file(program, {})));
  EXPECT_TRUE(loaded.program().graphs.empty());
  EXPECT_EQ(loaded.program().tokenizer.bos_id, -1);  // schema default
  EXPECT_TRUE(loaded.program().tokenizer.add_bos);   // schema default
}

TEST_F(ArtifactCorruption, TruncatedAnywhere) {
  std::vector<size_t> sizes;
  for (size_t n = 0; n < 256; ++n) sizes.push_back(n);
  for (size_t k = 0; k < 64; ++k) sizes.push_back(good_.size() * k / 64);
  sizes.push_back(good_.size() - 1);
  for (size_t n : sizes) {
    SCOPED_TRACE(n);
    std::vector<std::byte> bytes(good_.begin(), good_.begin() + static_cast<ptrdiff_t>(n));
    expect_error(bytes, ErrorKind::kCorrupt, n < kHeaderSize ? "smaller than" : "truncated");
  }
}

TEST_F(ArtifactCorruption, AppendedBytesAreCorrupt) {
  std::vector<std::byte> bytes = good_;
  bytes.push_back(std::byte{0});
  expect_error(bytes, ErrorKind::kCorrupt, "truncated or appended to");
}

TEST_F(ArtifactCorruption, FlippedBytesFailTheChecksum) {
  std::vector<size_t> positions;
  for (size_t i = 0; i < 256; ++i) positions.push_back(i);
  for (size_t k = 0; k < 97; ++k) positions.push_back(good_.size() * k / 97);
  positions.push_back(good_.size() - 1);
  for (size_t pos : positions) {
    SCOPED_TRACE(pos);
    std::vector<std::byte> bytes = good_;
    bytes[pos] ^= std::byte{0x20};
    auto loaded = load(bytes);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error().message().rfind(path_ + ": ", 0), 0u) << loaded.error().message();
    if (pos < kMagic.size()) {
      EXPECT_EQ(loaded.kind(), ErrorKind::kBadMagic);
    } else if (pos >= kChecksumOffset + 8 && pos < kFileSizeOffset + 8) {
      EXPECT_EQ(loaded.kind(), ErrorKind::kCorrupt);  // the file size field
    } else if (pos >= kHeaderSize || pos == kMinorOffset || pos == kMinorOffset + 1 ||
               (pos >= kChecksumOffset && pos < kChecksumOffset + 8)) {
      EXPECT_EQ(loaded.kind(), ErrorKind::kChecksum) << loaded.error().message();
      EXPECT_NE(loaded.error().message().find("computed over the file"), std::string::npos);
    }
  }
}

// Without the checksum, damage to the program must be caught by the FlatBuffers verifier or
// the semantic checks (or be harmless, like a changed letter of a name): never a crash or a
// read outside the file. Every program byte with three masks and seeded multi-byte damage go
// through the steps load_artifact runs after the header (decode_program, check_program) in
// memory; a sample of them goes through load_artifact on a file.
TEST_F(ArtifactCorruption, FlippedProgramBytesWithoutChecksumNeverCrash) {
  const size_t begin = kHeaderSize + kProgramEnvelopeSize;  // the stored program
  const size_t end = kHeaderSize + program_size();
  const uint64_t data_size = testing::get_u64(good_, kDataSizeOffset);
  int rejected = 0;
  int accepted = 0;
  auto check_in_memory = [&](const std::vector<std::byte>& file) {
    // A vector's storage is aligned for any scalar, as the program in a mapping is.
    std::vector<std::byte> program(file.begin() + begin, file.begin() + end);
    std::span<const std::byte> data(file.begin() + static_cast<ptrdiff_t>(data_offset()),
                                    file.end());
    auto decoded = decode_program(program, "bad.hsa", data);
    Status status = decoded.ok() ? check_program(*decoded, {data_size}, "bad.hsa")
                                 : Status(std::move(decoded).error());
    if (status.ok()) {
      ++accepted;
      for (const WeightDesc& w : decoded->weights) EXPECT_LE(w.offset + w.size_bytes, data_size);
      return;
    }
    ++rejected;
    EXPECT_EQ(status.error().message().rfind("bad.hsa: ", 0), 0u) << status.error().message();
  };
  auto check_file = [&](const std::vector<std::byte>& file) {
    auto loaded = load(file, LoadOptions{.verify_checksum = false});
    if (!loaded.ok()) {
      EXPECT_EQ(loaded.error().message().rfind(path_ + ": ", 0), 0u) << loaded.error().message();
      return;
    }
    // The checks promise every weight lies inside the mapping: read all of them (ASan).
    size_t total = 0;
    for (size_t i = 0; i < loaded->program().weights.size(); ++i) {
      for (std::byte b : loaded->weight_bytes(static_cast<int>(i))) total += static_cast<size_t>(b);
    }
    EXPECT_LE(total, 255 * loaded->file_size());
  };
  for (size_t pos = begin; pos < end; ++pos) {
    for (std::byte mask : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
      std::vector<std::byte> bytes = good_;
      bytes[pos] ^= mask;
      check_in_memory(bytes);
      if (pos % 8 == 0 && mask == std::byte{0xff}) check_file(bytes);
    }
  }
  std::mt19937_64 rng(2024);
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<std::byte> bytes = good_;
    int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) {
      bytes[begin + rng() % (end - begin)] = static_cast<std::byte>(rng());
    }
    check_in_memory(bytes);
    if (iter % 10 == 0) check_file(bytes);
  }
  // Both outcomes occur: the checks catch damage, and some damage (a letter of a name, a bit
  // of a scale) is legitimately invisible without the checksum.
  EXPECT_GT(rejected, 1000) << accepted;
  EXPECT_GT(accepted, 100) << rejected;
}

TEST_F(ArtifactCorruption, HeaderOffsetsOutsideTheFile) {
  uint64_t size = good_.size();
  struct Case {
    size_t field;
    uint64_t value;
    ErrorKind kind;
    std::string_view fragment;
  };
  const Case cases[] = {
      {kProgramOffsetOffset, size + 64, ErrorKind::kOutOfRange, "program at offset"},
      {kProgramOffsetOffset, 0, ErrorKind::kOutOfRange, "program at offset 0"},
      {kProgramOffsetOffset, UINT64_MAX - 7, ErrorKind::kOutOfRange, "program at offset"},
      {kProgramSizeOffset, 0, ErrorKind::kCorrupt, "program section is 0 bytes, smaller than"},
      {kProgramSizeOffset, 4, ErrorKind::kCorrupt, "program section is 4 bytes, smaller than"},
      {kProgramSizeOffset, 20, ErrorKind::kCorrupt, "in a payload of 4 bytes"},
      {kProgramSizeOffset, size, ErrorKind::kOutOfRange, "program at offset 64"},
      {kProgramSizeOffset, UINT64_MAX, ErrorKind::kOutOfRange, "program at offset 64"},
      {kProgramSizeOffset, UINT64_MAX - 63, ErrorKind::kOutOfRange, "program at offset 64"},
      {kDataOffsetOffset, size + 64, ErrorKind::kOutOfRange, "data section at offset"},
      {kDataOffsetOffset, 64, ErrorKind::kOutOfRange, "data section at offset 64"},
      {kDataOffsetOffset, UINT64_MAX - 63, ErrorKind::kOutOfRange, "data section"},
      {kDataSizeOffset, UINT64_MAX, ErrorKind::kOutOfRange, "data section"},
      {kDataSizeOffset, size, ErrorKind::kOutOfRange, "data section"},
      {kFileSizeOffset, size + 1, ErrorKind::kCorrupt, "truncated"},
      {kFileSizeOffset, UINT64_MAX, ErrorKind::kCorrupt, "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("field at {} = {}", c.field, c.value));
    std::vector<std::byte> bytes = good_;
    put_u64(bytes, c.field, c.value);
    fix_checksum(bytes);
    expect_error(bytes, c.kind, c.fragment);
  }
}

TEST_F(ArtifactCorruption, HeaderSizeOutOfRange) {
  std::vector<std::byte> bytes = good_;
  bytes[kHeaderSizeOffset] = std::byte{32};  // header_size 32 < 64
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kOutOfRange, "header_size 32");
}

TEST_F(ArtifactCorruption, MisalignedSections) {
  std::vector<std::byte> bytes = good_;
  put_u64(bytes, kProgramOffsetOffset, kHeaderSize + 4);
  put_u64(bytes, kProgramSizeOffset, program_size() - 4);
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kAlignment, "program offset 68 is not a multiple of 8");

  bytes = good_;
  uint64_t data_size = testing::get_u64(good_, kDataSizeOffset);
  put_u64(bytes, kDataOffsetOffset, data_offset() + 8);
  put_u64(bytes, kDataSizeOffset, data_size - 8);
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kAlignment,
               fmt::format("data offset {} is not a multiple of 64", data_offset() + 8));
}

TEST_F(ArtifactCorruption, ProgramThatIsNotAFlatBuffer) {
  std::vector<std::byte> bytes = good_;
  for (size_t i = kHeaderSize + kProgramEnvelopeSize; i < kHeaderSize + program_size(); ++i) {
    bytes[i] = std::byte{0xab};
  }
  fix_checksum(bytes);
  expect_error(bytes, ErrorKind::kCorrupt, "fails the flatbuffers verifier");
  // A valid FlatBuffer with another file identifier.
  flatbuffers::FlatBufferBuilder b;
  b.Finish(flatbuffers::Offset<flatbuffers::Table>(b.EndTable(b.StartTable())), "XXXX");
  std::vector<std::byte> other(b.GetSize());
  std::memcpy(other.data(), b.GetBufferPointer(), other.size());
  expect_error(testing::assemble_file(other, {}), ErrorKind::kCorrupt, "expected 'HSAP'");
}

}  // namespace
}  // namespace hs::artifact

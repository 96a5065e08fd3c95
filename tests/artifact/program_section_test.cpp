// The program section of format 3.0: the envelope (codec, program size) around a stored or
// zlib-compressed program, the encoder's sharing of repeated objects, and the merges blob.
// Round trips compare every field; damaged envelopes and streams are rejected with kCorrupt /
// kUnsupported / kOutOfRange naming the file, before any oversized allocation.
#include <flatbuffers/flatbuffers.h>

#include <cstring>

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

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

// An envelope with the given fields around `payload`.
std::vector<std::byte> envelope(uint32_t codec, uint32_t reserved, uint64_t size,
                                std::span<const std::byte> payload) {
  std::vector<std::byte> out(kProgramEnvelopeSize + payload.size());
  std::memcpy(out.data(), &codec, 4);
  std::memcpy(out.data() + 4, &reserved, 4);
  std::memcpy(out.data() + 8, &size, 8);
  if (!payload.empty()) std::memcpy(out.data() + 16, payload.data(), payload.size());
  return out;
}

// A program with a few KiB of repetitive content, so that zlib has something to do.
std::vector<std::byte> some_program_bytes() {
  Program p = sample_program();
  for (int i = 0; i < 200; ++i) p.tokenizer.chat_template += fmt::format("{{{{ message {} }}}}", i);
  return encode_program(p);
}

void expect_error(const Result<UnpackedProgram>& r, ErrorKind kind, std::string_view fragment) {
  ASSERT_FALSE(r.ok()) << "expected " << error_kind_name(kind);
  EXPECT_EQ(r.kind(), kind) << r.error().message();
  EXPECT_EQ(r.error().message().rfind("x.hsa: ", 0), 0u) << r.error().message();
  EXPECT_NE(r.error().message().find(fragment), std::string::npos)
      << r.error().message() << " (expected '" << fragment << "')";
}

TEST(ArtifactProgramSection, StoredAndZlibUnpackToTheSameBytes) {
  const std::vector<std::byte> program = some_program_bytes();
  for (ProgramCodec codec : {ProgramCodec::kStored, ProgramCodec::kZlib}) {
    SCOPED_TRACE(program_codec_name(codec));
    const std::vector<std::byte> section = pack_program(program, codec);
    uint32_t stored_codec = 0;
    uint64_t stored_size = 0;
    std::memcpy(&stored_codec, section.data(), 4);
    std::memcpy(&stored_size, section.data() + 8, 8);
    EXPECT_EQ(stored_codec, static_cast<uint32_t>(codec));
    EXPECT_EQ(stored_size, program.size());
    HS_ASSERT_OK_AND_ASSIGN(UnpackedProgram unpacked, unpack_program(section, "x.hsa"));
    EXPECT_EQ(unpacked.codec, codec);
    ASSERT_EQ(unpacked.bytes().size(), program.size());
    EXPECT_EQ(std::memcmp(unpacked.bytes().data(), program.data(), program.size()), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(unpacked.bytes().data()) % 8, 0u);
    if (codec == ProgramCodec::kZlib) {
      EXPECT_LT(section.size(), program.size() / 2);  // the repeated template compresses
    } else {
      EXPECT_EQ(section.size(), kProgramEnvelopeSize + program.size());
    }
  }
}

TEST(ArtifactProgramSection, BadEnvelopesAreRejected) {
  const std::vector<std::byte> program = some_program_bytes();
  const std::vector<std::byte> zlib = pack_program(program, ProgramCodec::kZlib);
  const std::span<const std::byte> payload = std::span(zlib).subspan(kProgramEnvelopeSize);
  expect_error(unpack_program(std::span(zlib).first(15), "x.hsa"), ErrorKind::kCorrupt,
               "program section is 15 bytes, smaller than its 16-byte envelope");
  expect_error(unpack_program(envelope(7, 0, program.size(), payload), "x.hsa"),
               ErrorKind::kUnsupported, "program codec 7 is unknown (known: 0 stored, 1 zlib)");
  expect_error(unpack_program(envelope(1, 3, program.size(), payload), "x.hsa"),
               ErrorKind::kCorrupt, "reserved field is 3, expected 0");
  expect_error(unpack_program(envelope(1, 0, kMaxProgramBytes + 1, payload), "x.hsa"),
               ErrorKind::kOutOfRange, "the limit is 2147483647");
  expect_error(unpack_program(envelope(0, 0, program.size() + 1, program), "x.hsa"),
               ErrorKind::kCorrupt,
               fmt::format("stored program of {} bytes in a payload of {} bytes",
                           program.size() + 1, program.size()));
  // A decompression bomb: 2 GiB - 1 announced from 10 bytes. Rejected by the ratio bound
  // before the buffer is allocated (this test would need 2 GiB otherwise).
  expect_error(unpack_program(envelope(1, 0, kMaxProgramBytes, payload.first(10)), "x.hsa"),
               ErrorKind::kCorrupt, "more than zlib's 1032:1 limit");
  // The bound itself: 1032 * n is allowed through to inflate, one more byte is not.
  expect_error(unpack_program(envelope(1, 0, 1032 * 10 + 1, payload.first(10)), "x.hsa"),
               ErrorKind::kCorrupt, "more than zlib's 1032:1 limit");
  expect_error(unpack_program(envelope(1, 0, 1032 * 10, payload.first(10)), "x.hsa"),
               ErrorKind::kCorrupt, "truncated after");
}

TEST(ArtifactProgramSection, DamagedZlibStreamsAreRejected) {
  const std::vector<std::byte> program = some_program_bytes();
  const std::vector<std::byte> zlib = pack_program(program, ProgramCodec::kZlib);
  const std::span<const std::byte> payload = std::span(zlib).subspan(kProgramEnvelopeSize);
  const uint64_t n = program.size();
  // Cut short, announced too small, announced too large, garbage after the end.
  expect_error(unpack_program(envelope(1, 0, n, payload.first(payload.size() - 5)), "x.hsa"),
               ErrorKind::kCorrupt, "the zlib stream is truncated after");
  expect_error(unpack_program(envelope(1, 0, n - 1, payload), "x.hsa"), ErrorKind::kCorrupt,
               fmt::format("inflates to more than {} program bytes", n - 1));
  expect_error(unpack_program(envelope(1, 0, n + 1, payload), "x.hsa"), ErrorKind::kCorrupt,
               fmt::format("the zlib stream ends after {} of {} program bytes", n, n + 1));
  std::vector<std::byte> longer(payload.begin(), payload.end());
  longer.push_back(std::byte{0});
  longer.push_back(std::byte{0});
  expect_error(unpack_program(envelope(1, 0, n, longer), "x.hsa"), ErrorKind::kCorrupt,
               "2 bytes follow the end of the zlib stream");
  expect_error(unpack_program(envelope(1, 0, n, bytes_of("not a zlib stream at all")), "x.hsa"),
               ErrorKind::kCorrupt, "the zlib stream is damaged");
  // Every single flipped byte of the stream: an error (the Adler-32 check catches what the
  // inflater does not) or, rarely, the same length of bytes; never a crash.
  int rejected = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    std::vector<std::byte> bad(payload.begin(), payload.end());
    bad[i] ^= std::byte{0x5a};
    auto r = unpack_program(envelope(1, 0, n, bad), "x.hsa");
    if (!r.ok()) {
      EXPECT_EQ(r.kind(), ErrorKind::kCorrupt) << r.error().message();
      ++rejected;
    } else {
      EXPECT_EQ(r->bytes().size(), n);
    }
  }
  EXPECT_GT(rejected, static_cast<int>(payload.size() * 9 / 10));
}

// Whole files: both codecs load to the same program; damage to a zlib program section is a
// kCorrupt naming the file (with the checksum skipped, as a reader that trusts the file would).
TEST(ArtifactProgramSection, FilesOfBothCodecsLoadTheSameProgram) {
  const std::string dir = hs::testing::temp_dir();
  Program program = sample_program();
  auto data = sample_weight_data(program, 3);
  HS_ASSERT_OK_AND_ASSIGN(WriteSummary stored,
                          write_artifact(dir + "/s.hsa", program, memory_source(data),
                                         {.program_codec = ProgramCodec::kStored}));
  HS_ASSERT_OK_AND_ASSIGN(WriteSummary zlib,
                          write_artifact(dir + "/z.hsa", program, memory_source(data)));
  EXPECT_EQ(stored.program_bytes, zlib.program_bytes);
  EXPECT_EQ(stored.program_size, kProgramEnvelopeSize + stored.program_bytes);
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact s, load_artifact(dir + "/s.hsa"));
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact z, load_artifact(dir + "/z.hsa"));
  EXPECT_EQ(s.program_codec(), ProgramCodec::kStored);
  EXPECT_EQ(z.program_codec(), ProgramCodec::kZlib);
  EXPECT_EQ(s.program_bytes(), stored.program_bytes);
  EXPECT_EQ(z.program_bytes(), zlib.program_bytes);
  EXPECT_EQ(s.program().metadata, z.program().metadata);
  EXPECT_EQ(s.program().tokenizer.pieces, z.program().tokenizer.pieces);
  EXPECT_EQ(s.program().tokenizer.scores, z.program().tokenizer.scores);
  EXPECT_EQ(s.program().tokenizer.merges, z.program().tokenizer.merges);
  EXPECT_EQ(s.program().weights, z.program().weights);
  EXPECT_EQ(s.program().graphs, z.program().graphs);
  EXPECT_EQ(z.program().tokenizer.merges, program.tokenizer.merges);
  EXPECT_EQ(z.program().graphs, program.graphs);

  std::vector<std::byte> bytes = testing::read_bytes(dir + "/z.hsa");
  bytes[kHeaderSize + kProgramEnvelopeSize + 3] ^= std::byte{0xff};
  testing::write_bytes(dir + "/bad.hsa", bytes);
  auto loaded = load_artifact(dir + "/bad.hsa", {.verify_checksum = false});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.kind(), ErrorKind::kCorrupt);
  EXPECT_EQ(loaded.error().message().rfind(dir + "/bad.hsa: zlib program", 0), 0u)
      << loaded.error().message();
}

// The encoder writes each repeated object once: a second graph equal to the first but for its
// name costs its own table and two offset vectors (4 bytes per tensor and per node), not a
// second copy of the tensors, nodes, names, shapes, quant params and attributes.
TEST(ArtifactProgramSection, RepeatedGraphsAreSharedNotCopied) {
  Program one = sample_program();
  one.graphs.resize(1);
  Program two = one;
  two.graphs.push_back(one.graphs[0]);
  two.graphs[1].name = "again";
  const size_t base = encode_program(one).size();
  const size_t graph_bytes = base - encode_program([&] {
                                      Program none = one;
                                      none.graphs.clear();
                                      return none;
                                    }())
                                        .size();
  const GraphDesc& g = one.graphs[0];
  const size_t growth = encode_program(two).size() - base;
  EXPECT_LE(growth, 4 * (g.tensors.size() + g.nodes.size()) + 96)
      << "graph alone " << graph_bytes << " bytes";
  EXPECT_GT(graph_bytes, 2 * growth);  // the check above is not vacuous
  // And it decodes to two full, equal graphs.
  const std::vector<std::byte> flat = encode_program(two);
  std::vector<std::byte> aligned(flat.begin(), flat.end());
  HS_ASSERT_OK_AND_ASSIGN(Program back, decode_program(aligned, "x.hsa"));
  ASSERT_EQ(back.graphs.size(), 2u);
  EXPECT_EQ(back.graphs[1].name, "again");
  back.graphs[1].name = back.graphs[0].name;
  EXPECT_EQ(back.graphs[0], back.graphs[1]);
  EXPECT_EQ(back.graphs[0], one.graphs[0]);
}

// Tokenizer merges are one blob plus M + 1 offsets, checked like the pieces. Hand-built
// programs with only a tokenizer (Program field 1; Tokenizer fields 16 merge_bytes and 17
// merge_offsets).
std::vector<std::byte> program_with_merges(std::string_view blob,
                                           const std::vector<uint32_t>& offsets) {
  flatbuffers::FlatBufferBuilder b;
  auto bytes = b.CreateVector(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  auto offs = b.CreateVector(offsets);
  auto tok_start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(16), bytes);
  b.AddOffset(flatbuffers::FieldIndexToOffset(17), offs);
  auto tok = flatbuffers::Offset<flatbuffers::Table>(b.EndTable(tok_start));
  auto start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(1), tok);
  b.Finish(flatbuffers::Offset<flatbuffers::Table>(b.EndTable(start)), "HSAP");
  std::vector<std::byte> out(b.GetSize());
  std::memcpy(out.data(), b.GetBufferPointer(), out.size());
  return out;
}

TEST(ArtifactProgramSection, MergesBlobRoundTripsAndIsChecked) {
  HS_ASSERT_OK_AND_ASSIGN(Program p,
                          decode_program(program_with_merges("a bc d", {0, 3, 6}), "x.hsa"));
  EXPECT_EQ(p.tokenizer.merges, (std::vector<std::string>{"a b", "c d"}));
  HS_ASSERT_OK_AND_ASSIGN(Program none, decode_program(program_with_merges("", {}), "x.hsa"));
  EXPECT_TRUE(none.tokenizer.merges.empty());
  struct Case {
    std::string_view blob;
    std::vector<uint32_t> offsets;
    std::string_view fragment;
  };
  const Case cases[] = {
      {"a b", {}, "tokenizer has 3 merge bytes but no merge offsets"},
      {"a bc d", {1, 3, 6}, "tokenizer merge offsets span [1, 6), expected [0, 6)"},
      {"a bc d", {0, 3, 5}, "tokenizer merge offsets span [0, 5), expected [0, 6)"},
      {"a bc d", {0, 7, 6}, "tokenizer merge 0 spans [0, 7), outside [0, 6) or reversed"},
      {"a bc d", {0, 4, 2, 6}, "tokenizer merge 1 spans [4, 2), outside [0, 6) or reversed"},
  };
  for (const Case& c : cases) {
    auto r = decode_program(program_with_merges(c.blob, c.offsets), "x.hsa");
    ASSERT_FALSE(r.ok()) << c.fragment;
    EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
    EXPECT_NE(r.error().message().find(c.fragment), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace hs::artifact

namespace hs::artifact {
namespace {

// A hostile program that references one tensor with a 100000-dim shape (800 KB) from 100000
// places: 80 GB if decoded naively. The decode budget (64 x the program + 64 MiB here) stops
// it after a few hundred tensors. Graph fields: 0 name, 2 tensors; Tensor: 0 name, 2 shape.
TEST(ArtifactProgramSection, SharedObjectsCannotAmplifyTheDecode) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<int64_t> dims(100000, 1);
  auto shape = b.CreateVector(dims);
  auto name = b.CreateString("t");
  auto t_start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(0), name);
  b.AddOffset(flatbuffers::FieldIndexToOffset(2), shape);
  const flatbuffers::uoffset_t tensor = b.EndTable(t_start);
  std::vector<flatbuffers::Offset<flatbuffers::Table>> refs(
      100000, flatbuffers::Offset<flatbuffers::Table>(tensor));
  auto tensors = b.CreateVector(refs);
  auto g_start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(2), tensors);
  auto graph = flatbuffers::Offset<flatbuffers::Table>(b.EndTable(g_start));
  std::vector<flatbuffers::Offset<flatbuffers::Table>> graphs = {graph};
  auto graph_vec = b.CreateVector(graphs);
  auto start = b.StartTable();
  b.AddOffset(flatbuffers::FieldIndexToOffset(3), graph_vec);
  b.Finish(flatbuffers::Offset<flatbuffers::Table>(b.EndTable(start)), "HSAP");
  std::vector<std::byte> program(b.GetSize());
  std::memcpy(program.data(), b.GetBufferPointer(), program.size());
  ASSERT_LT(program.size(), 1'300'000u);
  auto r = decode_program(program, "x.hsa");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kCorrupt);
  EXPECT_NE(r.error().message().find("x.hsa: program decodes to more than"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("one object referenced too many times"), std::string::npos);
}

}  // namespace
}  // namespace hs::artifact

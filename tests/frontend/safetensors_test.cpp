// Safetensors reader: hand-built files (values, views vs copies, metadata) and every hostile
// header (error kind and message).
#include "headsplit/frontend/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "frontend/hf_writer.h"
#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<float> values_of(const Weight& w) { return {w.f32().begin(), w.f32().end()}; }

// 8-byte length + header text + data, written as given (no validation).
std::string raw_file(uint64_t header_len, const std::string& header, size_t data_bytes) {
  std::vector<std::byte> bytes(8 + header.size() + data_bytes, std::byte{0});
  std::memcpy(bytes.data(), &header_len, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  const std::string path = testing::temp_dir() + "/t.safetensors";
  HS_CHECK(write_file_atomic(path, bytes).ok(), "write");
  return path;
}
std::string raw_file(const std::string& header, size_t data_bytes) {
  return raw_file(header.size(), header, data_bytes);
}

TEST(Safetensors, ReadsValuesInEveryFloatDtype) {
  const float a[] = {1.0f, -2.5f, 0.125f, 3.0f, 1e-3f, -7.0f};
  const std::string path = testing::temp_dir() + "/m.safetensors";
  HS_ASSERT_OK(testing::write_safetensors(
      path,
      {{"a.f32", "F32", {2, 3}, testing::encode_floats(a, StoredDType::kF32)},
       {"b.f16", "F16", {3}, testing::encode_floats(std::span(a, 3), StoredDType::kF16)},
       {"c.bf16", "BF16", {1, 3}, testing::encode_floats(std::span(a, 3), StoredDType::kBF16)},
       {"d.i32", "I32", {1}, std::vector<std::byte>(4)}}));
  HS_ASSERT_OK_AND_ASSIGN(SafetensorsFile f, SafetensorsFile::open(path));
  EXPECT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.data_offset() % 8, 0u);
  HS_ASSERT_OK_AND_ASSIGN(Weight w, f.load("a.f32"));
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_THAT(values_of(w), ElementsAre(1.0f, -2.5f, 0.125f, 3.0f, 1e-3f, -7.0f));
  EXPECT_NE(dynamic_cast<const MappedFile*>(w.data.buffer.get()), nullptr);  // a view
  HS_ASSERT_OK_AND_ASSIGN(Weight h, f.load("b.f16"));
  EXPECT_THAT(values_of(h), ElementsAre(1.0f, -2.5f, 0.125f));  // exact in f16
  HS_ASSERT_OK_AND_ASSIGN(Weight b, f.load("c.bf16"));
  EXPECT_THAT(values_of(b), ElementsAre(1.0f, -2.5f, 0.125f));
  auto i = f.load("d.i32");
  EXPECT_EQ(i.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(i.error().message(), HasSubstr("tensor 'd.i32' has dtype I32"));
  EXPECT_EQ(f.load("nope").kind(), ErrorKind::kNotFound);
}

TEST(Safetensors, MisalignedF32IsCopied) {
  const float a[] = {4.0f, -1.0f};
  const std::string path = testing::temp_dir() + "/odd.safetensors";
  // Header not padded: pick a name length that makes 8 + header length odd.
  for (std::string name = "x"; name.size() < 8; name += "x") {
    HS_ASSERT_OK(testing::write_safetensors(
        path, {{name, "F32", {2}, testing::encode_floats(a, StoredDType::kF32)}}, 1));
    HS_ASSERT_OK_AND_ASSIGN(SafetensorsFile f, SafetensorsFile::open(path));
    HS_ASSERT_OK_AND_ASSIGN(Weight w, f.load(name));
    EXPECT_THAT(values_of(w), ElementsAre(4.0f, -1.0f));
    const bool view = dynamic_cast<const MappedFile*>(w.data.buffer.get()) != nullptr;
    EXPECT_EQ(view, f.data_offset() % 4 == 0) << "data offset " << f.data_offset();
  }
}

TEST(Safetensors, RejectsHostileHeaders) {
  struct Case {
    const char* name;
    std::string path;
    ErrorKind kind;
    std::string part;
  };
  const std::string ok_entry = R"("w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]})";
  const std::vector<Case> cases = {
      {"shorter than the length",
       [] {
         const std::string path = testing::temp_dir() + "/s.safetensors";
         HS_CHECK(write_file_atomic(path, std::string("abc")).ok(), "write");
         return path;
       }(),
       ErrorKind::kCorrupt, "file has 3 bytes, shorter than the 8-byte header length"},
      {"header length past the file", raw_file(1000, "{}", 0), ErrorKind::kCorrupt,
       "header length 1000 is past the end of the file (2 bytes after the length)"},
      {"header length 2^63", raw_file(uint64_t{1} << 63, "{}", 0), ErrorKind::kCorrupt,
       "header length 9223372036854775808 is past the end"},
      {"not json", raw_file("{\"w\": [", 0), ErrorKind::kCorrupt, "header: not valid JSON"},
      {"json array", raw_file("[1, 2]", 0), ErrorKind::kCorrupt,
       "header is a JSON array, expected an object"},
      {"entry not an object", raw_file(R"({"w": 3})", 0), ErrorKind::kCorrupt,
       "tensor 'w' is a JSON integer, expected an object"},
      {"unknown dtype",
       raw_file(R"({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}})", 1),
       ErrorKind::kUnsupported, "tensor 'w' has unknown dtype 'F7'"},
      {"missing dtype", raw_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
       ErrorKind::kCorrupt, "'dtype' is missing"},
      {"offsets out of range", raw_file("{" + ok_entry + "}", 8), ErrorKind::kOutOfRange,
       "tensor 'w' has data_offsets [0, 16] past the end of the 8-byte data section"},
      {"size does not match",
       raw_file(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16),
       ErrorKind::kCorrupt,
       "has 12 bytes in data_offsets [0, 12], expected 16 (4 x F32 of 4 bytes)"},
      {"bf16 size",
       raw_file(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 12]}})", 16),
       ErrorKind::kCorrupt, "expected 6"},
      {"reversed offsets",
       raw_file(R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [8, 4]}})", 8),
       ErrorKind::kCorrupt, "0 <= begin <= end"},
      {"negative dim",
       raw_file(R"({"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}})", 0),
       ErrorKind::kCorrupt, "not a non-negative integer"},
      {"shape overflow",
       raw_file(
           R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}})",
           0),
       ErrorKind::kCorrupt, "overflows 64 bits"},
      {"offsets not a pair",
       raw_file(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0]}})", 1),
       ErrorKind::kCorrupt, "2-element 'data_offsets'"},
      {"overlap",
       raw_file(
           "{" + ok_entry + R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
           16),
       ErrorKind::kCorrupt, "tensors 'w' [0, 16) and 'v' [8, 16) overlap"},
  };
  for (const Case& c : cases) {
    auto r = SafetensorsFile::open(c.path);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.kind(), c.kind) << c.name << ": " << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr(c.part)) << c.name;
    EXPECT_THAT(r.error().message(), HasSubstr(c.path)) << c.name;
  }
  // Zero-size tensors may share an offset; a gap between tensors is allowed.
  HS_EXPECT_OK(SafetensorsFile::open(raw_file(
      R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
      8)));
}

}  // namespace
}  // namespace hs::frontend

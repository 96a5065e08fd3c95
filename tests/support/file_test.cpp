#include "headsplit/support/file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "headsplit/support/buffer.h"
#include "headsplit/support/hash.h"
#include "testing/testing.h"

namespace hs {
namespace {

TEST(AtomicFileWriter, CommitWritesAndRenames) {
  std::string dir = testing::temp_dir();
  std::string path = dir + "/out.bin";
  {
    HS_ASSERT_OK_AND_ASSIGN(AtomicFileWriter w, AtomicFileWriter::create(path));
    HS_ASSERT_OK(w.write("abc"));
    HS_ASSERT_OK(w.pad_to(8));
    EXPECT_EQ(w.offset(), 8u);
    EXPECT_FALSE(file_exists(path)) << "destination must not exist before commit";
    HS_ASSERT_OK(w.commit());
  }
  HS_ASSERT_OK_AND_ASSIGN(std::string text, read_text_file(path));
  EXPECT_EQ(text, std::string("abc\0\0\0\0\0", 8));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
}

TEST(AtomicFileWriter, AbandonedWriteLeavesNothing) {
  std::string dir = testing::temp_dir();
  std::string path = dir + "/out.bin";
  {
    HS_ASSERT_OK_AND_ASSIGN(AtomicFileWriter w, AtomicFileWriter::create(path));
    HS_ASSERT_OK(w.write("partial"));
  }  // destroyed without commit: simulates a failed export
  EXPECT_FALSE(file_exists(path));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 0);
}

TEST(AtomicFileWriter, AbandonedWriteKeepsOldFile) {
  std::string dir = testing::temp_dir();
  std::string path = dir + "/out.bin";
  HS_ASSERT_OK(write_file_atomic(path, std::string_view("old")));
  {
    HS_ASSERT_OK_AND_ASSIGN(AtomicFileWriter w, AtomicFileWriter::create(path));
    HS_ASSERT_OK(w.write("new but unfinished"));
  }
  EXPECT_EQ(*read_text_file(path), "old");
}

TEST(AtomicFileWriter, MissingDirectoryIsIoError) {
  auto w = AtomicFileWriter::create("/nonexistent-dir-xyz/out.bin");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.kind(), ErrorKind::kIo);
  EXPECT_NE(w.error().message().find("/nonexistent-dir-xyz/out.bin"), std::string::npos);
}

TEST(MappedFile, MapsContents) {
  std::string path = testing::temp_dir() + "/data.bin";
  HS_ASSERT_OK(write_file_atomic(path, std::string_view("hello mapped")));
  HS_ASSERT_OK_AND_ASSIGN(auto file, MappedFile::open(path));
  ASSERT_EQ(file->size(), 12u);
  EXPECT_EQ(std::memcmp(file->data(), "hello mapped", 12), 0);
  BufferView view{file, 6, 6};
  EXPECT_EQ(std::memcmp(view.bytes().data(), "mapped", 6), 0);
}

// release_pages is a residency hint: the bytes read the same afterwards, whatever the range
// (unaligned, inside one page, past the end, empty).
TEST(MappedFile, ReleasedPagesReadTheSame) {
  std::string path = testing::temp_dir() + "/pages.bin";
  std::string data(5 * 4096 + 123, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  {
    HS_ASSERT_OK_AND_ASSIGN(AtomicFileWriter w, AtomicFileWriter::create(path));
    HS_ASSERT_OK(w.write(data));
    HS_ASSERT_OK(w.commit());
  }
  HS_ASSERT_OK_AND_ASSIGN(auto file, MappedFile::open(path));
  ASSERT_EQ(file->size(), data.size());
  auto same = [&] { return std::memcmp(file->data(), data.data(), data.size()) == 0; };
  ASSERT_TRUE(same());
  file->release_pages(100, 3 * 4096);        // pages 1 and 2 whole, the ends partial
  EXPECT_TRUE(same());
  file->release_pages(0, data.size());       // all
  EXPECT_TRUE(same());
  file->release_pages(4096 + 10, 20);        // inside one page: nothing to drop
  file->release_pages(data.size() - 5, 4096);  // past the end
  file->release_pages(data.size() + 1, 10);
  file->release_pages(0, 0);
  EXPECT_TRUE(same());
  HeapBuffer heap(64);
  heap.release_pages(0, 64);  // a no-op
}

TEST(MappedFile, MissingFileIsIoError) {
  auto r = MappedFile::open("/nonexistent/file.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kIo);
}

// FileCopy reads the whole file, in huge-page-aligned memory or not; missing files and
// directories are kIo errors naming the path; an empty file is an empty buffer.
TEST(FileCopy, ReadsTheWholeFileAligned) {
  std::string path = testing::temp_dir() + "/copy.bin";
  std::string data(3 * 4096 + 77, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 37 + 11) & 0xff);
  HS_ASSERT_OK(write_file_atomic(path, data));
  for (const bool huge : {true, false}) {
    HS_ASSERT_OK_AND_ASSIGN(auto file, FileCopy::read(path, huge));
    ASSERT_EQ(file->size(), data.size());
    EXPECT_EQ(std::memcmp(file->data(), data.data(), data.size()), 0);
    EXPECT_EQ(file->path(), path);
    EXPECT_EQ(file->huge_pages(), huge);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file->data()) % (huge ? (2u << 20) : 4096u), 0u);
    BufferView view{file, 100, 50};
    EXPECT_EQ(std::memcmp(view.bytes().data(), data.data() + 100, 50), 0);
  }
  auto missing = FileCopy::read("/nonexistent/copy.bin", true);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.kind(), ErrorKind::kIo);
  EXPECT_NE(missing.error().message().find("/nonexistent/copy.bin"), std::string::npos);
  EXPECT_EQ(FileCopy::read(testing::temp_dir(), true).kind(), ErrorKind::kIo);  // a directory
  const std::string empty = testing::temp_dir() + "/empty.bin";
  HS_ASSERT_OK(write_file_atomic(empty, std::string_view()));
  HS_ASSERT_OK_AND_ASSIGN(auto none, FileCopy::read(empty, true));
  EXPECT_EQ(none->size(), 0u);
}

TEST(Hash, StreamingEqualsOneShot) {
  std::string text = "the quick brown fox jumps over the lazy dog";
  auto bytes = std::as_bytes(std::span<const char>(text.data(), text.size()));
  Hasher h;
  h.update(bytes.first(10));
  h.update(bytes.subspan(10));
  EXPECT_EQ(h.digest(), hash64(bytes));
  EXPECT_NE(hash64(bytes), hash64(bytes.first(10)));
}

TEST(HeapBuffer, IsAligned) {
  HeapBuffer b(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  EXPECT_EQ(b.size(), 100u);
}

}  // namespace
}  // namespace hs

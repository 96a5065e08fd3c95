// File helpers: whole-file reads, atomic writes (temp file + rename), path helpers.
#pragma once

#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"

namespace hs {

Result<std::string> read_text_file(const std::string& path);
Result<std::vector<std::byte>> read_binary_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes a file so that readers see either the old contents or the complete new ones:
// data goes to "<path>.tmp-<pid>" and is renamed over <path> by commit(). If the writer is
// destroyed without commit() (an error, an early return), the temporary file is removed.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::string& path);
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Status write(std::span<const std::byte> bytes);
  Status write(std::string_view text);
  // Pads with zero bytes up to a multiple of `alignment`.
  Status pad_to(size_t alignment);
  size_t offset() const { return offset_; }
  // Overwrites bytes already written, [offset, offset + size) within offset() (e.g. a checksum
  // in a header known only at the end); later writes still append at offset().
  Status rewrite_at(size_t offset, std::span<const std::byte> bytes);
  // Flushes, fsyncs and renames the temporary file to the destination.
  Status commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, std::FILE* file)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), file_(file) {}
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  size_t offset_ = 0;
  bool committed_ = false;
};

Status write_file_atomic(const std::string& path, std::span<const std::byte> bytes);
Status write_file_atomic(const std::string& path, std::string_view text);

}  // namespace hs

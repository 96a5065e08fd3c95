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

// Whole-file reads. Anything but a regular file (a FIFO, a device, a socket, a directory) is
// refused before it is opened (a FIFO would block open() forever): see check_regular_file.
Result<std::string> read_text_file(const std::string& path);
Result<std::vector<std::byte>> read_binary_file(const std::string& path);
// True for an existing regular file (resp. directory), following symlinks.
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// True when anything exists at `path` (stat succeeds).
bool path_exists(const std::string& path);

// "regular file", "directory", "FIFO (named pipe)", "character device", "block device",
// "socket", "symbolic link", "unknown file type" for an st_mode.
std::string_view file_kind_name(unsigned mode);
// OK when `path` is a regular file (after symlinks). kNotFound: "<path>: no such file";
// kInvalidArgument: "<path>: is a FIFO (named pipe), expected a regular file"; kIo otherwise.
Status check_regular_file(const std::string& path);
// The same for a directory: "<path>: is a regular file, expected a directory".
Status check_directory(const std::string& path);
// Opens `path` read-only without blocking on a FIFO, and refuses anything but a regular file
// (checked on the opened descriptor, so a swap between stat and open is caught). Returns the fd
// and sets *size; the caller closes the fd. kIo when missing or a directory (as open() would),
// kInvalidArgument naming the kind for a FIFO, device or socket.
Result<int> open_regular_file(const std::string& path, size_t* size);

// True when `a` and `b` name the same file (same device and inode); false when either does
// not exist.
bool same_file(const std::string& a, const std::string& b);

// Writes a file so that readers see either the old contents or the complete new ones:
// data goes to "<path>.tmp-<pid>" and is renamed over <path> by commit(). If the writer is
// destroyed without commit() (an error, an early return), the temporary file is removed; on
// SIGINT/SIGTERM a signal handler removes it before the process dies (see
// install_temp_file_cleanup). create() refuses a destination that exists and is not a regular
// file (a device, a FIFO, a directory): renaming over it would replace the node.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::string& path);
  // Also refuses a destination that is the same file (inode) as one of `inputs`: "export -o"
  // naming its own checkpoint would otherwise replace it.
  static Result<AtomicFileWriter> create(const std::string& path,
                                         std::span<const std::string> inputs);
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
  int slot_ = -1;  // the signal-cleanup slot holding temp_path_, or -1
};

Status write_file_atomic(const std::string& path, std::span<const std::byte> bytes);
Status write_file_atomic(const std::string& path, std::string_view text);

// Checks an output path before any work: refused when it exists and is not a regular file,
// or is the same file as one of `inputs` (kInvalidArgument naming both paths).
Status check_output_file(const std::string& path, std::span<const std::string> inputs = {});

// Installs (once) SIGINT/SIGTERM handlers that unlink the temporary files of live
// AtomicFileWriters, then re-raise the signal with its default action. Called by create();
// harmless to call again.
void install_temp_file_cleanup();

}  // namespace hs

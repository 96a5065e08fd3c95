#include "headsplit/support/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hs {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errorf(ErrorKind::kIo, "{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return errorf(ErrorKind::kIo, "{}: read failed", path);
  return ss.str();
}

Result<std::vector<std::byte>> read_binary_file(const std::string& path) {
  HS_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  std::vector<std::byte> bytes(text.size());
  if (!text.empty()) std::memcpy(bytes.data(), text.data(), text.size());
  return bytes;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<AtomicFileWriter> AtomicFileWriter::create(const std::string& path) {
  std::string temp = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) {
    return errorf(ErrorKind::kIo, "{}: cannot create temporary file '{}': {}", path, temp,
                  std::strerror(errno));
  }
  return AtomicFileWriter(path, temp, f);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      file_(other.file_),
      offset_(other.offset_),
      committed_(other.committed_) {
  other.file_ = nullptr;
  other.committed_ = true;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_ && !temp_path_.empty()) std::remove(temp_path_.c_str());
}

Status AtomicFileWriter::write(std::span<const std::byte> bytes) {
  if (file_ == nullptr) return errorf(ErrorKind::kInternal, "{}: write after commit", path_);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return errorf(ErrorKind::kIo, "{}: write of {} bytes at offset {} failed: {}", temp_path_,
                  bytes.size(), offset_, std::strerror(errno));
  }
  offset_ += bytes.size();
  return {};
}

Status AtomicFileWriter::write(std::string_view text) {
  return write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

Status AtomicFileWriter::pad_to(size_t alignment) {
  static const std::byte zeros[256] = {};
  while (offset_ % alignment != 0) {
    size_t n = std::min(alignment - offset_ % alignment, sizeof(zeros));
    HS_TRY(write(std::span<const std::byte>(zeros, n)));
  }
  return {};
}

Status AtomicFileWriter::rewrite_at(size_t offset, std::span<const std::byte> bytes) {
  if (file_ == nullptr) return errorf(ErrorKind::kInternal, "{}: rewrite after commit", path_);
  if (offset > offset_ || bytes.size() > offset_ - offset) {
    return errorf(ErrorKind::kInternal, "{}: rewrite of {} bytes at {} past the end {}", path_,
                  bytes.size(), offset, offset_);
  }
  if (std::fflush(file_) != 0) {
    return errorf(ErrorKind::kIo, "{}: flush failed: {}", temp_path_, std::strerror(errno));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(::fileno(file_), bytes.data() + done, bytes.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return errorf(ErrorKind::kIo, "{}: rewrite of {} bytes at offset {} failed: {}", temp_path_,
                    bytes.size(), offset, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status AtomicFileWriter::commit() {
  if (file_ == nullptr) return errorf(ErrorKind::kInternal, "{}: commit twice", path_);
  bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    return errorf(ErrorKind::kIo, "{}: flush failed: {}", temp_path_, std::strerror(errno));
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return errorf(ErrorKind::kIo, "{}: rename from '{}' failed: {}", path_, temp_path_,
                  std::strerror(errno));
  }
  committed_ = true;
  return {};
}

Status write_file_atomic(const std::string& path, std::span<const std::byte> bytes) {
  HS_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::create(path));
  HS_TRY(writer.write(bytes));
  return writer.commit();
}

Status write_file_atomic(const std::string& path, std::string_view text) {
  return write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace hs

#include "headsplit/support/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace hs {

std::string_view file_kind_name(unsigned mode) {
  if (S_ISREG(mode)) return "regular file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "FIFO (named pipe)";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISLNK(mode)) return "symbolic link";
  return "unknown file type";
}

namespace {

Status check_kind(const std::string& path, bool want_dir) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return errorf(ErrorKind::kNotFound, "{}: no such {}", path, want_dir ? "directory" : "file");
    }
    return errorf(ErrorKind::kIo, "{}: cannot stat: {}", path, std::strerror(err));
  }
  if (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) return {};
  return errorf(ErrorKind::kInvalidArgument, "{}: is a {}, expected a {}", path,
                file_kind_name(st.st_mode), want_dir ? "directory" : "regular file");
}

}  // namespace

Status check_regular_file(const std::string& path) { return check_kind(path, false); }
Status check_directory(const std::string& path) { return check_kind(path, true); }

Result<int> open_regular_file(const std::string& path, size_t* size) {
  struct stat pre {};
  if (::stat(path.c_str(), &pre) != 0) {
    return errorf(ErrorKind::kIo, "{}: cannot open: {}", path, std::strerror(errno));
  }
  if (S_ISDIR(pre.st_mode)) {
    return errorf(ErrorKind::kIo, "{}: is a directory, expected a file", path);
  }
  if (!S_ISREG(pre.st_mode)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: is a {}, expected a regular file", path,
                  file_kind_name(pre.st_mode));
  }
  // O_NONBLOCK: should the path become a FIFO after the check, open() still returns.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errorf(ErrorKind::kIo, "{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode) && st.st_mode != 0) {
      return errorf(ErrorKind::kInvalidArgument, "{}: is a {}, expected a regular file", path,
                    file_kind_name(st.st_mode));
    }
    return errorf(ErrorKind::kIo, "{}: cannot stat: {}", path, std::strerror(err));
  }
  // Back to blocking reads (regular files never block anyway).
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = static_cast<size_t>(st.st_size);
  return fd;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {};
  struct stat sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> read_text_file(const std::string& path) {
  size_t size = 0;
  HS_ASSIGN_OR_RETURN(int fd, open_regular_file(path, &size));
  std::string text;
  text.reserve(size);
  char chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return errorf(ErrorKind::kIo, "{}: read failed: {}", path, std::strerror(err));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
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

// The temporary paths of live writers, in fixed storage a signal handler may read: a slot is
// claimed (state 0 -> 1) by a writer, filled, then published (state 2); the handler unlinks
// published slots only.
namespace {

constexpr int kTempSlots = 16;
constexpr size_t kTempPathMax = 4096;
struct TempSlot {
  std::atomic<int> state{0};
  char path[kTempPathMax];
};
TempSlot g_temp_slots[kTempSlots];

int register_temp(const std::string& temp) {
  if (temp.size() >= kTempPathMax) return -1;
  for (int i = 0; i < kTempSlots; ++i) {
    int expected = 0;
    if (g_temp_slots[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_temp_slots[i].path, temp.c_str(), temp.size() + 1);
      g_temp_slots[i].state.store(2);
      return i;
    }
  }
  return -1;  // more than kTempSlots live writers: this one is only cleaned on error paths
}

void unregister_temp(int slot) {
  if (slot >= 0) g_temp_slots[slot].state.store(0);
}

extern "C" void hs_temp_cleanup_handler(int sig) {
  for (TempSlot& slot : g_temp_slots) {
    if (slot.state.load() == 2) ::unlink(slot.path);  // async-signal-safe
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::atomic<bool> g_cleanup_installed{false};

}  // namespace

void install_temp_file_cleanup() {
  if (g_cleanup_installed.exchange(true)) return;
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    // Leave handlers someone else installed (an interactive prompt) alone.
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO) != 0) continue;
    struct sigaction sa {};
    sa.sa_handler = hs_temp_cleanup_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

Status check_output_file(const std::string& path, std::span<const std::string> inputs) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: output is a {}, expected a regular file or a new path", path,
                    file_kind_name(st.st_mode));
    }
    for (const std::string& input : inputs) {
      if (!input.empty() && same_file(path, input)) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{}: output is the same file as the input '{}'; writing would destroy it",
                      path, input);
      }
    }
  }
  return {};
}

Result<AtomicFileWriter> AtomicFileWriter::create(const std::string& path) {
  return create(path, {});
}

Result<AtomicFileWriter> AtomicFileWriter::create(const std::string& path,
                                                  std::span<const std::string> inputs) {
  HS_TRY(check_output_file(path, inputs));
  install_temp_file_cleanup();
  std::string temp = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
  // O_EXCL|O_NOFOLLOW: never write through a link or a node planted at the temporary name.
  ::unlink(temp.c_str());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  std::FILE* f = fd < 0 ? nullptr : ::fdopen(fd, "wb");
  if (f == nullptr) {
    int err = errno;
    if (fd >= 0) {
      ::close(fd);
      ::unlink(temp.c_str());
    }
    return errorf(ErrorKind::kIo, "{}: cannot create temporary file '{}': {}", path, temp,
                  std::strerror(err));
  }
  AtomicFileWriter writer(path, temp, f);
  writer.slot_ = register_temp(temp);
  return writer;
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      file_(other.file_),
      offset_(other.offset_),
      committed_(other.committed_),
      slot_(other.slot_) {
  other.file_ = nullptr;
  other.committed_ = true;
  other.slot_ = -1;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_ && !temp_path_.empty()) std::remove(temp_path_.c_str());
  unregister_temp(slot_);
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
  // The destination may have changed since create(): never rename over a device or a FIFO.
  HS_TRY(check_output_file(path_));
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return errorf(ErrorKind::kIo, "{}: rename from '{}' failed: {}", path_, temp_path_,
                  std::strerror(errno));
  }
  committed_ = true;
  unregister_temp(slot_);
  slot_ = -1;
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

#include "headsplit/support/buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <new>

#include "headsplit/support/file.h"

namespace hs {

HeapBuffer::HeapBuffer(size_t size) : size_(size) {
  if (size == 0) return;
  size_t rounded = (size + 63) / 64 * 64;
  data_ = static_cast<std::byte*>(std::aligned_alloc(64, rounded));
  if (data_ == nullptr) throw std::bad_alloc();  // out of memory is not recoverable here
  std::memset(data_ + size, 0, rounded - size);
}

HeapBuffer::~HeapBuffer() { std::free(data_); }

std::shared_ptr<HeapBuffer> HeapBuffer::copy_of(std::span<const std::byte> bytes) {
  auto buffer = std::make_shared<HeapBuffer>(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer->data_, bytes.data(), bytes.size());
  return buffer;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr && size_ > 0) munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::release_pages(size_t offset, size_t size) const {
  if (offset >= size_ || size == 0) return;
  size = std::min(size, size_ - offset);
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data_) + offset;
  const uintptr_t first = (begin + page - 1) / page * page, last = (begin + size) / page * page;
  // A private read-only file mapping: the dropped pages are read from the file again if touched.
  if (first < last) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  size_t size = 0;
  HS_ASSIGN_OR_RETURN(int fd, open_regular_file(path, &size));
  const std::byte* data = nullptr;
  if (size > 0) {
    void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return errorf(ErrorKind::kIo, "{}: cannot mmap {} bytes: {}", path, size, std::strerror(err));
    }
    data = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  return std::shared_ptr<MappedFile>(new MappedFile(path, data, size));
}

AnonymousPages::~AnonymousPages() {
  if (data_ != nullptr && mapped_ > 0) munmap(data_, mapped_);
}

AnonymousPages::AnonymousPages(AnonymousPages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

AnonymousPages& AnonymousPages::operator=(AnonymousPages&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr && mapped_ > 0) munmap(data_, mapped_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

Result<AnonymousPages> AnonymousPages::map(size_t size, bool huge_pages) {
  AnonymousPages pages;
  if (size == 0) return pages;
  const size_t align = huge_pages ? size_t{2} << 20 : static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t mapped = (size + align - 1) / align * align;
  // Over-allocate by one alignment unit, then give back the unaligned head and the tail.
  const size_t extra = huge_pages ? align : 0;
  void* raw = mmap(nullptr, mapped + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (raw == MAP_FAILED) {
    return errorf(ErrorKind::kIo, "cannot map {} bytes of memory: {}", mapped + extra,
                  std::strerror(errno));
  }
  const auto begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t at = (begin + align - 1) / align * align;
  if (at > begin) munmap(raw, at - begin);
  if (begin + mapped + extra > at + mapped) {
    munmap(reinterpret_cast<void*>(at + mapped), begin + mapped + extra - (at + mapped));
  }
  pages.data_ = reinterpret_cast<std::byte*>(at);
  pages.size_ = size;
  pages.mapped_ = mapped;
  if (huge_pages) madvise(pages.data_, mapped, MADV_HUGEPAGE);  // advice: no error if not granted
  return pages;
}

FileCopy::~FileCopy() = default;

Result<std::shared_ptr<FileCopy>> FileCopy::read(const std::string& path, bool huge_pages) {
  size_t size = 0;
  HS_ASSIGN_OR_RETURN(int fd, open_regular_file(path, &size));
  auto pages = AnonymousPages::map(size, huge_pages);
  if (!pages.ok()) {
    ::close(fd);
    return errorf(ErrorKind::kIo, "{}: cannot allocate {} bytes to read it into: {}", path, size,
                  pages.error().message());
  }
  std::byte* data = pages->data();
  size_t got = 0;
  while (got < size) {
    const ssize_t r = pread(fd, data + got, size - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = r < 0 ? errno : 0;
      ::close(fd);
      if (r == 0) {
        return errorf(ErrorKind::kIo, "{}: the file ended after {} of its {} bytes while being read",
                      path, got, size);
      }
      return errorf(ErrorKind::kIo, "{}: read failed after {} of {} bytes: {}", path, got, size,
                    std::strerror(err));
    }
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return std::shared_ptr<FileCopy>(new FileCopy(path, std::move(*pages), huge_pages));
}

}  // namespace hs

// Byte buffers that own their storage: heap vectors or read-only memory-mapped files.
// Constants in a graph and weights in a loaded artifact point into a Buffer through a
// shared_ptr, so slicing a weight (for example one head's rows) is a view, not a copy.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "headsplit/support/result.h"

namespace hs {

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual std::span<const std::byte> bytes() const = 0;
  size_t size() const { return bytes().size(); }
  const std::byte* data() const { return bytes().data(); }
  // A hint that bytes [offset, offset + size) will not be read again soon (e.g. a checkpoint's
  // F16 weights once converted to F32): a mapped file gives the whole pages inside the range
  // back to the kernel, so they stop counting in the resident set; the bytes stay readable
  // (re-read from the file on the next access). A no-op for heap buffers.
  virtual void release_pages(size_t /*offset*/, size_t /*size*/) const {}
};

// A buffer owning a 64-byte aligned heap allocation.
class HeapBuffer final : public Buffer {
 public:
  explicit HeapBuffer(size_t size);
  ~HeapBuffer() override;
  HeapBuffer(const HeapBuffer&) = delete;
  HeapBuffer& operator=(const HeapBuffer&) = delete;

  std::span<const std::byte> bytes() const override { return {data_, size_}; }
  std::span<std::byte> mutable_bytes() { return {data_, size_}; }

  // Copies `bytes` into a new buffer.
  static std::shared_ptr<HeapBuffer> copy_of(std::span<const std::byte> bytes);

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// A read-only memory-mapped file. An empty file maps to an empty span.
class MappedFile final : public Buffer {
 public:
  ~MappedFile() override;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);

  std::span<const std::byte> bytes() const override { return {data_, size_}; }
  const std::string& path() const { return path_; }
  void release_pages(size_t offset, size_t size) const override;

 private:
  MappedFile(std::string path, const std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Anonymous zero-filled memory (mmap) of `size` bytes: 2 MiB aligned and advised for
// transparent huge pages with huge_pages (Linux MADV_HUGEPAGE; where the kernel does not grant
// them it stays in 4 KiB pages), else page aligned. Move-only; unmapped when destroyed. Large
// data read in full over and over (weights) goes through far fewer TLB entries and page faults.
class AnonymousPages {
 public:
  AnonymousPages() = default;
  // kIo when the kernel refuses the mapping (out of memory); size 0 maps nothing.
  static Result<AnonymousPages> map(size_t size, bool huge_pages);
  ~AnonymousPages();
  AnonymousPages(AnonymousPages&& other) noexcept;
  AnonymousPages& operator=(AnonymousPages&& other) noexcept;
  AnonymousPages(const AnonymousPages&) = delete;
  AnonymousPages& operator=(const AnonymousPages&) = delete;

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes of the mapping at data_
};

// A file read into anonymous memory, 64-byte aligned. With huge_pages the memory is 2 MiB
// aligned and advised for transparent huge pages (Linux MADV_HUGEPAGE; where the kernel does
// not grant them it stays in 4 KiB pages). For data read in full over and over, like the
// weights of a decode step: a stream of ~100 MiB per token through 4 KiB pages takes a TLB miss
// every 4 KiB (on AMD Zen 4, 16a8w SmolLM2-shape decode ran 1.6x faster from huge pages).
class FileCopy final : public Buffer {
 public:
  ~FileCopy() override;
  FileCopy(const FileCopy&) = delete;
  FileCopy& operator=(const FileCopy&) = delete;

  // kIo naming the path: cannot open, not a regular file, out of memory, read error, or the
  // file changed size while it was read.
  static Result<std::shared_ptr<FileCopy>> read(const std::string& path, bool huge_pages);

  std::span<const std::byte> bytes() const override { return {pages_.data(), pages_.size()}; }
  const std::string& path() const { return path_; }
  // Whether huge pages were asked for (the kernel decides whether it grants them).
  bool huge_pages() const { return huge_pages_; }

 private:
  FileCopy(std::string path, AnonymousPages pages, bool huge_pages)
      : path_(std::move(path)), pages_(std::move(pages)), huge_pages_(huge_pages) {}
  std::string path_;
  AnonymousPages pages_;
  bool huge_pages_ = false;
};

// A window [offset, offset+size) of a Buffer, keeping the buffer alive.
struct BufferView {
  std::shared_ptr<const Buffer> buffer;
  size_t offset = 0;
  size_t size = 0;

  std::span<const std::byte> bytes() const {
    if (!buffer) return {};
    return buffer->bytes().subspan(offset, size);
  }
  bool empty() const { return size == 0; }
  // A sub-window of this view; the caller guarantees it fits.
  BufferView sub(size_t sub_offset, size_t sub_size) const {
    return BufferView{buffer, offset + sub_offset, sub_size};
  }
};

}  // namespace hs

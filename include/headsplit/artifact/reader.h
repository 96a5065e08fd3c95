// Loads a .hsa artifact, read into memory in huge pages (the default: decode streams every weight
// each token) or memory-mapped, and verifies everything before trusting a byte: size, magic,
// version, header offsets (overflow-safe), checksum, the FlatBuffers verifier, then the semantic
// checks of check_program. Weights are used in place from that memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/program.h"
#include "headsplit/support/buffer.h"
#include "headsplit/support/result.h"

namespace hs::artifact {

// Where the file's bytes live once loaded.
enum class Residence : uint8_t {
  kHugePages,  // read into anonymous memory advised for 2 MiB transparent huge pages
  kMapped,     // memory-mapped (shared with the page cache, read on first touch)
};

struct LoadOptions {
  // Hash the whole file (XXH3, near memory bandwidth) and compare with the header.
  bool verify_checksum = true;
  // kHugePages for running (the weights are read in full every decode step: with 4 KiB pages
  // their TLB misses cost AMD Zen 4 a third of 16a8w decode time); kMapped to inspect or
  // convert, or to share one cached copy between processes.
  Residence residence = Residence::kHugePages;
};

// "huge pages" or "mapped", for reports.
const char* residence_name(Residence r);

class LoadedArtifact {
 public:
  const Program& program() const { return program_; }
  const FileHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  Residence residence() const { return residence_; }
  uint64_t file_size() const { return header_.file_size; }
  // How the program section stores the program, and the program's unpacked size.
  ProgramCodec program_codec() const { return program_codec_; }
  uint64_t program_bytes() const { return program_bytes_; }

  // The stored bytes of weight `index`, pointing into the loaded file (zero copy, 64-byte
  // aligned). Valid while this LoadedArtifact (or a view from weight_view) lives.
  std::span<const std::byte> weight_bytes(int index) const;
  // The same bytes as a view that keeps the loaded file alive.
  BufferView weight_view(int index) const;

 private:
  friend Result<LoadedArtifact> load_artifact(const std::string& path, LoadOptions options);
  std::shared_ptr<const Buffer> file_;
  std::string path_;
  Residence residence_ = Residence::kMapped;
  FileHeader header_;
  Program program_;
  ProgramCodec program_codec_ = ProgramCodec::kStored;
  uint64_t program_bytes_ = 0;
};

// Errors (each message starts with `path`): kIo (cannot open, map or read), kCorrupt (too small,
// size mismatch, verifier or consistency failure), kBadMagic, kVersion (another major),
// kOutOfRange (an offset or index outside its container), kChecksum, kAlignment,
// kUnsupported (an op code or enum value from a newer format minor).
Result<LoadedArtifact> load_artifact(const std::string& path, LoadOptions options = {});

}  // namespace hs::artifact

// Loads a .hsa artifact by memory-mapping it and verifying everything before trusting a byte:
// size, magic, version, header offsets (overflow-safe), checksum, the FlatBuffers verifier,
// then the semantic checks of check_program. Weights are used in place from the mapping.
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

struct LoadOptions {
  // Hash the whole file (XXH3, near memory bandwidth) and compare with the header.
  bool verify_checksum = true;
};

class LoadedArtifact {
 public:
  const Program& program() const { return program_; }
  const FileHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return header_.file_size; }
  // How the program section stores the program, and the program's unpacked size.
  ProgramCodec program_codec() const { return program_codec_; }
  uint64_t program_bytes() const { return program_bytes_; }

  // The stored bytes of weight `index`, pointing into the mapping (zero copy, 64-byte
  // aligned). Valid while this LoadedArtifact (or a view from weight_view) lives.
  std::span<const std::byte> weight_bytes(int index) const;
  // The same bytes as a view that keeps the mapping alive.
  BufferView weight_view(int index) const;

 private:
  friend Result<LoadedArtifact> load_artifact(const std::string& path, LoadOptions options);
  std::shared_ptr<MappedFile> file_;
  FileHeader header_;
  Program program_;
  ProgramCodec program_codec_ = ProgramCodec::kStored;
  uint64_t program_bytes_ = 0;
};

// Errors (each message starts with `path`): kIo (cannot open/map), kCorrupt (too small,
// size mismatch, verifier or consistency failure), kBadMagic, kVersion (another major),
// kOutOfRange (an offset or index outside its container), kChecksum, kAlignment,
// kUnsupported (an op code or enum value from a newer format minor).
Result<LoadedArtifact> load_artifact(const std::string& path, LoadOptions options = {});

}  // namespace hs::artifact

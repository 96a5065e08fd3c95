// load_artifact: map the file, then check in order size, magic, version, header offsets
// (overflow-safe), checksum, the program envelope (bounded inflate), the FlatBuffers verifier and the program's semantics, each
// failure naming the file, the field and the values. Only then are weights handed out.
#include "headsplit/artifact/reader.h"

#include <cstring>

namespace hs::artifact {
namespace {

std::string hex_bytes(std::span<const std::byte> bytes) {
  std::string out;
  for (std::byte b : bytes) {
    if (!out.empty()) out += ' ';
    out += fmt::format("{:02x}", static_cast<unsigned>(b));
  }
  return out;
}

// [offset, offset + size) inside [0, limit), without overflow.
bool range_fits(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

Result<FileHeader> read_header(std::span<const std::byte> file, const std::string& path) {
  if (file.size() < kHeaderSize) {
    return errorf(ErrorKind::kCorrupt, "{}: file is {} bytes, smaller than the {}-byte header",
                  path, file.size(), kHeaderSize);
  }
  if (std::memcmp(file.data(), kMagic.data(), kMagic.size()) != 0) {
    return errorf(ErrorKind::kBadMagic, "{}: magic is {}, expected {} (not a .hsa artifact)", path,
                  hex_bytes(file.first(kMagic.size())),
                  hex_bytes(std::as_bytes(std::span(kMagic))));
  }
  FileHeader h = decode_header(file);
  if (h.major < kFormatMajor) {
    return errorf(ErrorKind::kVersion,
                  "{}: format version {}.{} is older than this build's {}.{} (it reads {}.0 to "
                  "{}.{}: since 3.0 the program section is compact and zlib-compressed); "
                  "re-export with headsplit export",
                  path, h.major, h.minor, kFormatMajor, kFormatMinor, kFormatMajor, kFormatMajor,
                  kFormatMinor);
  }
  if (h.major != kFormatMajor) {
    return errorf(ErrorKind::kVersion,
                  "{}: format version {}.{}, this build reads {}.0 to {}.{} (a newer headsplit "
                  "wrote it)",
                  path, h.major, h.minor, kFormatMajor, kFormatMajor, kFormatMinor);
  }
  uint64_t size = file.size();
  if (h.file_size != size) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: header says the file is {} bytes but it is {} (truncated or appended to)",
                  path, h.file_size, size);
  }
  if (h.header_size < kHeaderSize || h.header_size > size) {
    return errorf(ErrorKind::kOutOfRange, "{}: header_size {} outside [{}, {}] (the file size)",
                  path, h.header_size, kHeaderSize, size);
  }
  if (h.program_offset < h.header_size || !range_fits(h.program_offset, h.program_size, size)) {
    return errorf(ErrorKind::kOutOfRange,
                  "{}: program at offset {} size {} is outside [{}, {}) (header to end of file)",
                  path, h.program_offset, h.program_size, h.header_size, size);
  }
  if (h.program_offset % 8 != 0) {
    return errorf(ErrorKind::kAlignment, "{}: program offset {} is not a multiple of 8", path,
                  h.program_offset);
  }
  uint64_t program_end = h.program_offset + h.program_size;  // fits: checked above
  if (h.data_offset < program_end || !range_fits(h.data_offset, h.data_size, size)) {
    return errorf(ErrorKind::kOutOfRange,
                  "{}: data section at offset {} size {} is outside [{}, {}) (program end to end "
                  "of file)",
                  path, h.data_offset, h.data_size, program_end, size);
  }
  if (h.data_offset % kDataAlignment != 0) {
    return errorf(ErrorKind::kAlignment, "{}: data offset {} is not a multiple of {}", path,
                  h.data_offset, kDataAlignment);
  }
  return h;
}

}  // namespace

std::span<const std::byte> LoadedArtifact::weight_bytes(int index) const {
  HS_CHECK(index >= 0 && static_cast<size_t>(index) < program_.weights.size(),
           "weight index out of range");
  const WeightDesc& w = program_.weights[index];
  return file_->bytes().subspan(header_.data_offset + w.offset, w.size_bytes);
}

BufferView LoadedArtifact::weight_view(int index) const {
  std::span<const std::byte> bytes = weight_bytes(index);
  return BufferView{file_, static_cast<size_t>(bytes.data() - file_->data()), bytes.size()};
}

const char* residence_name(Residence r) {
  return r == Residence::kHugePages ? "huge pages" : "mapped";
}

Result<LoadedArtifact> load_artifact(const std::string& path, LoadOptions options) {
  std::shared_ptr<const Buffer> file;
  if (options.residence == Residence::kHugePages) {
    HS_ASSIGN_OR_RETURN(file, FileCopy::read(path, /*huge_pages=*/true));
  } else {
    HS_ASSIGN_OR_RETURN(file, MappedFile::open(path));
  }
  std::span<const std::byte> bytes = file->bytes();
  HS_ASSIGN_OR_RETURN(FileHeader header, read_header(bytes, path));
  if (options.verify_checksum) {
    uint64_t computed = compute_checksum(bytes);
    if (computed != header.checksum) {
      return errorf(ErrorKind::kChecksum,
                    "{}: checksum {:016x} in the header but {:016x} computed over the file", path,
                    header.checksum, computed);
    }
  }
  HS_ASSIGN_OR_RETURN(
      UnpackedProgram unpacked,
      unpack_program(bytes.subspan(header.program_offset, header.program_size), path));
  HS_ASSIGN_OR_RETURN(Program program,
                      decode_program(unpacked.bytes(), path,
                                     bytes.subspan(header.data_offset, header.data_size)));
  HS_TRY(check_program(program, CheckOptions{header.data_size}, path));
  LoadedArtifact artifact;
  artifact.file_ = std::move(file);
  artifact.path_ = path;
  artifact.residence_ = options.residence;
  artifact.header_ = header;
  artifact.program_ = std::move(program);
  artifact.program_codec_ = unpacked.codec;
  artifact.program_bytes_ = unpacked.bytes().size();
  return artifact;
}

}  // namespace hs::artifact

// The .hsa file layout (docs/artifact.md is the spec): a fixed 64-byte header, the program
// as a FlatBuffers table, and 64-byte aligned weight data.
//
//   [0, 64)                          header (little-endian, fields below)
//   [program_offset, +program_size)  program section: a 16-byte envelope (codec, size), then
//                                    the FlatBuffers Program (schema src/artifact/schema/),
//                                    stored or zlib-compressed
//   zero padding to a multiple of 64
//   [data_offset, +data_size)        weights, each at a 64-byte aligned offset
//
// The pieces here are what write_artifact and load_artifact are made of; tools and tests use
// them to inspect files or to build deliberately broken ones.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "headsplit/artifact/program.h"
#include "headsplit/support/result.h"

namespace hs::artifact {

// "\x89HSA\r\n\x1a\n": a high-bit byte catches 7-bit transfers, CR LF and LF catch line-ending
// conversion, ^Z stops a DOS `type` (the PNG signature trick).
inline constexpr std::array<uint8_t, 8> kMagic = {0x89, 'H', 'S', 'A', '\r', '\n', 0x1a, '\n'};
// 2.0: per-axis / per-block quant params stored once in the data section (docs/artifact.md).
// 3.0: the program section is an envelope (stored or zlib) around a program whose repeated
// strings, shapes, quant params and attributes are shared; tokenizer merges as one blob.
inline constexpr uint16_t kFormatMajor = 3;
inline constexpr uint16_t kFormatMinor = 0;
inline constexpr uint32_t kHeaderSize = 64;
inline constexpr uint64_t kDataAlignment = 64;

// Byte offsets of the header fields.
inline constexpr size_t kMagicOffset = 0;           // u8[8]
inline constexpr size_t kMajorOffset = 8;           // u16
inline constexpr size_t kMinorOffset = 10;          // u16
inline constexpr size_t kHeaderSizeOffset = 12;     // u32
inline constexpr size_t kChecksumOffset = 16;       // u64 XXH3-64 of the file minus this field
inline constexpr size_t kFileSizeOffset = 24;       // u64
inline constexpr size_t kProgramOffsetOffset = 32;  // u64
inline constexpr size_t kProgramSizeOffset = 40;    // u64
inline constexpr size_t kDataOffsetOffset = 48;     // u64
inline constexpr size_t kDataSizeOffset = 56;       // u64

struct FileHeader {
  uint16_t major = kFormatMajor;
  uint16_t minor = kFormatMinor;
  uint32_t header_size = kHeaderSize;
  uint64_t checksum = 0;
  uint64_t file_size = 0;
  uint64_t program_offset = 0;
  uint64_t program_size = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;

  bool operator==(const FileHeader&) const = default;
};

// The 64 header bytes (magic included).
std::array<std::byte, kHeaderSize> encode_header(const FileHeader& header);
// Reads the fields of a header; the caller guarantees bytes.size() >= kHeaderSize. Does not
// check the magic or any value.
FileHeader decode_header(std::span<const std::byte> bytes);

// XXH3-64 over the whole file except the 8 checksum bytes: [0, 16) then [24, size).
// The caller guarantees bytes.size() >= kHeaderSize.
uint64_t compute_checksum(std::span<const std::byte> file);

// The program section (format 3.0): a 16-byte envelope, then the payload.
//   [0, 4)   u32 codec (ProgramCodec)
//   [4, 8)   u32 reserved, 0
//   [8, 16)  u64 program bytes: the size of the FlatBuffers Program the payload holds
//   [16, ..) payload: the program itself (kStored: exactly that many bytes) or a zlib stream
//            that inflates to exactly that many bytes (kZlib)
enum class ProgramCodec : uint32_t { kStored = 0, kZlib = 1 };
inline constexpr int kNumProgramCodecs = 2;
inline constexpr size_t kProgramEnvelopeSize = 16;
// The largest program a reader accepts (the FlatBuffers limit, 2 GiB - 1).
inline constexpr uint64_t kMaxProgramBytes = (uint64_t{1} << 31) - 1;
// Deflate cannot expand more than 1032:1 (a 258-byte match per 2 bits): a zlib payload of n
// bytes claiming more than 1032 * n program bytes is rejected before anything is allocated,
// so a hostile file cannot make the reader allocate much more than ~1000x its own size.
inline constexpr uint64_t kZlibMaxRatio = 1032;

std::string_view program_codec_name(ProgramCodec codec);  // "stored", "zlib", "unknown"

// Wraps FlatBuffers program bytes in the envelope, compressed with `codec`.
std::vector<std::byte> pack_program(std::span<const std::byte> program, ProgramCodec codec);

// The FlatBuffers program bytes of a program section: a view into the section (kStored) or
// inflated into `owned` (kZlib). Both are 8-byte aligned when the section is.
struct UnpackedProgram {
  ProgramCodec codec = ProgramCodec::kStored;
  std::span<const std::byte> stored;  // kStored: the program inside the section
  std::vector<std::byte> owned;       // kZlib: the inflated program

  std::span<const std::byte> bytes() const {
    return codec == ProgramCodec::kStored ? stored : std::span<const std::byte>(owned);
  }
};

// Checks the envelope (size, codec known, reserved 0, program size within kMaxProgramBytes
// and, for zlib, within kZlibMaxRatio of the payload) and inflates; a stream that is damaged,
// ends early, inflates to another size or has bytes after its end is kCorrupt. `what` (the
// file path) starts every error message.
Result<UnpackedProgram> unpack_program(std::span<const std::byte> section, std::string_view what);

// Assigns each weight's `offset` (64-byte aligned, in order), `size_bytes` and, for per-axis /
// per-block params, `params_offset` (64-byte aligned, after every weight's bytes, in weight
// order) and `params_size`; returns the data section size (the end of the last weight or
// params). Errors name the weight.
Result<uint64_t> assign_weight_offsets(std::vector<WeightDesc>& weights);

// Encodes a program as a FlatBuffers buffer (no checks: check_program first).
std::vector<std::byte> encode_program(const Program& program);
// Runs the FlatBuffers verifier over `bytes` and unpacks the program (no semantic checks):
// weights' params stored in the data section are read from `data` (the file's data section;
// their count, size, alignment and range are checked first), constants get their weight's
// params. `what` (the file path) starts every error message. The caller guarantees `bytes`
// starts at an 8-byte aligned address.
Result<Program> decode_program(std::span<const std::byte> bytes, std::string_view what,
                               std::span<const std::byte> data = {});

struct CheckOptions {
  // Size of the data section every weight must fit in.
  uint64_t data_size = 0;
};

// The semantic checks a reader runs before trusting a program: enum values known, names
// unique, weights inside the data section, 64-byte aligned and sized for their type, every
// tensor/node/I-O index in range, nodes in topological order, constants matching their
// weight's type, shape and quant, arena offsets inside arena_bytes, quant params consistent
// with shapes, tokenizer ids in range. `what` (the file path) starts every error message.
Status check_program(const Program& program, const CheckOptions& options, std::string_view what);

}  // namespace hs::artifact

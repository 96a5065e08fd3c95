// The program section's envelope: u32 codec, u32 reserved, u64 program bytes, then the
// FlatBuffers program stored as is or as one zlib stream (format.h). Unpacking checks every
// field before it allocates, and inflates into a buffer of exactly the announced size.
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "headsplit/artifact/format.h"

namespace hs::artifact {
namespace {

template <typename T>
T get(std::span<const std::byte> bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));  // little-endian host (header.cpp)
  return value;
}

// A FlatBuffers program is under 2 GiB, so it and its deflateBound fit zlib's 32-bit counts.
std::vector<std::byte> deflate_bytes(std::span<const std::byte> in) {
  HS_CHECK(in.size() <= kMaxProgramBytes, "program too large to compress");
  z_stream z{};
  // Level 1: on the SmolLM2-135M program (2.5 MiB) 0.92 MiB in ~90 ms, where the default
  // level 6 gives 0.85 MiB in ~360 ms and 9 0.84 MiB in ~900 ms; inflating is as fast for all.
  HS_CHECK(deflateInit(&z, Z_BEST_SPEED) == Z_OK, "deflateInit failed");
  std::vector<std::byte> out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  HS_CHECK(rc == Z_STREAM_END, "deflate did not finish within deflateBound");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Inflates `in` into exactly `out.size()` (<= kMaxProgramBytes) bytes; false with `why` set
// otherwise. The input may be longer than zlib's 32-bit count: it is fed in chunks.
bool inflate_exact(std::span<const std::byte> in, std::span<std::byte> out, std::string& why) {
  constexpr uint64_t kChunk = uint64_t{1} << 30;
  z_stream z{};
  if (inflateInit(&z) != Z_OK) {
    why = "zlib inflateInit failed";
    return false;
  }
  std::byte none[1];  // zlib wants a non-null output pointer even for 0 bytes
  z.next_out = reinterpret_cast<Bytef*>(out.empty() ? none : out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const std::byte* next_in = in.data();
  uint64_t in_left = in.size();  // not yet handed to zlib
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (z.avail_in == 0 && in_left > 0) {
      const uint64_t chunk = std::min(in_left, kChunk);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(next_in));
      z.avail_in = static_cast<uInt>(chunk);
      next_in += chunk;
      in_left -= chunk;
    }
    rc = inflate(&z, Z_NO_FLUSH);  // Z_BUF_ERROR: no progress (input ended or output full)
  }
  const uint64_t produced = out.size() - z.avail_out;
  const uint64_t unread = z.avail_in + in_left;
  const std::string detail = z.msg != nullptr ? z.msg : "no detail";
  inflateEnd(&z);
  if (rc == Z_STREAM_END && produced == out.size() && unread == 0) return true;
  if (rc == Z_STREAM_END) {
    why =
        produced != out.size()
            ? fmt::format("the zlib stream ends after {} of {} program bytes", produced, out.size())
            : fmt::format("{} bytes follow the end of the zlib stream", unread);
  } else if (rc == Z_BUF_ERROR) {
    // Output full with input left: too long; input used up before the stream's end: cut.
    why = produced == out.size() && unread > 0
              ? fmt::format("the zlib stream inflates to more than {} program bytes", out.size())
              : fmt::format("the zlib stream is truncated after {} of {} program bytes", produced,
                            out.size());
  } else {
    why = fmt::format("the zlib stream is damaged ({})", detail);
  }
  return false;
}

}  // namespace

std::string_view program_codec_name(ProgramCodec codec) {
  switch (codec) {
    case ProgramCodec::kStored: return "stored";
    case ProgramCodec::kZlib: return "zlib";
  }
  return "unknown";
}

std::vector<std::byte> pack_program(std::span<const std::byte> program, ProgramCodec codec) {
  std::vector<std::byte> payload;
  if (codec == ProgramCodec::kZlib) payload = deflate_bytes(program);
  std::span<const std::byte> body = codec == ProgramCodec::kZlib ? payload : program;
  std::vector<std::byte> out(kProgramEnvelopeSize + body.size());
  const auto code = static_cast<uint32_t>(codec);
  const uint32_t reserved = 0;
  const uint64_t size = program.size();
  std::memcpy(out.data(), &code, 4);
  std::memcpy(out.data() + 4, &reserved, 4);
  std::memcpy(out.data() + 8, &size, 8);
  if (!body.empty()) std::memcpy(out.data() + kProgramEnvelopeSize, body.data(), body.size());
  return out;
}

Result<UnpackedProgram> unpack_program(std::span<const std::byte> section, std::string_view what) {
  if (section.size() < kProgramEnvelopeSize) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: program section is {} bytes, smaller than its {}-byte envelope", what,
                  section.size(), kProgramEnvelopeSize);
  }
  const auto codec = get<uint32_t>(section, 0);
  const auto reserved = get<uint32_t>(section, 4);
  const auto size = get<uint64_t>(section, 8);
  const std::span<const std::byte> payload = section.subspan(kProgramEnvelopeSize);
  if (codec >= static_cast<uint32_t>(kNumProgramCodecs)) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: program codec {} is unknown (known: 0 stored, 1 zlib)", what, codec);
  }
  if (reserved != 0) {
    return errorf(ErrorKind::kCorrupt, "{}: program envelope reserved field is {}, expected 0",
                  what, reserved);
  }
  if (size > kMaxProgramBytes) {
    return errorf(ErrorKind::kOutOfRange, "{}: program is {} bytes, the limit is {}", what, size,
                  kMaxProgramBytes);
  }
  UnpackedProgram out;
  out.codec = static_cast<ProgramCodec>(codec);
  if (out.codec == ProgramCodec::kStored) {
    if (payload.size() != size) {
      return errorf(ErrorKind::kCorrupt, "{}: stored program of {} bytes in a payload of {} bytes",
                    what, size, payload.size());
    }
    out.stored = payload;
    return out;
  }
  // (A payload of 2 GiB or more can announce any size up to the limit.)
  if (payload.size() <= kMaxProgramBytes / kZlibMaxRatio && size > kZlibMaxRatio * payload.size()) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: zlib program claims {} bytes from a {}-byte stream, more than zlib's "
                  "{}:1 limit",
                  what, size, payload.size(), kZlibMaxRatio);
  }
  out.owned.resize(size);
  std::string why;
  if (!inflate_exact(payload, out.owned, why)) {
    return errorf(ErrorKind::kCorrupt, "{}: zlib program ({} bytes stored, {} announced): {}", what,
                  payload.size(), size, why);
  }
  return out;
}

}  // namespace hs::artifact

// The fixed 64-byte file header (little-endian), the file checksum and the data-section
// layout of the weights.
#include <bit>
#include <cstring>

#include "headsplit/artifact/format.h"
#include "headsplit/support/hash.h"

namespace hs::artifact {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .hsa format is little-endian; big-endian hosts are not supported");

template <typename T>
void put(std::array<std::byte, kHeaderSize>& out, size_t offset, T value) {
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

template <typename T>
T get(std::span<const std::byte> bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

}  // namespace

std::array<std::byte, kHeaderSize> encode_header(const FileHeader& header) {
  std::array<std::byte, kHeaderSize> out{};
  std::memcpy(out.data() + kMagicOffset, kMagic.data(), kMagic.size());
  put(out, kMajorOffset, header.major);
  put(out, kMinorOffset, header.minor);
  put(out, kHeaderSizeOffset, header.header_size);
  put(out, kChecksumOffset, header.checksum);
  put(out, kFileSizeOffset, header.file_size);
  put(out, kProgramOffsetOffset, header.program_offset);
  put(out, kProgramSizeOffset, header.program_size);
  put(out, kDataOffsetOffset, header.data_offset);
  put(out, kDataSizeOffset, header.data_size);
  return out;
}

FileHeader decode_header(std::span<const std::byte> bytes) {
  HS_CHECK(bytes.size() >= kHeaderSize, "decode_header needs the 64 header bytes");
  FileHeader header;
  header.major = get<uint16_t>(bytes, kMajorOffset);
  header.minor = get<uint16_t>(bytes, kMinorOffset);
  header.header_size = get<uint32_t>(bytes, kHeaderSizeOffset);
  header.checksum = get<uint64_t>(bytes, kChecksumOffset);
  header.file_size = get<uint64_t>(bytes, kFileSizeOffset);
  header.program_offset = get<uint64_t>(bytes, kProgramOffsetOffset);
  header.program_size = get<uint64_t>(bytes, kProgramSizeOffset);
  header.data_offset = get<uint64_t>(bytes, kDataOffsetOffset);
  header.data_size = get<uint64_t>(bytes, kDataSizeOffset);
  return header;
}

uint64_t compute_checksum(std::span<const std::byte> file) {
  HS_CHECK(file.size() >= kHeaderSize, "compute_checksum needs at least the header");
  Hasher hasher;
  hasher.update(file.subspan(0, kChecksumOffset));
  hasher.update(file.subspan(kChecksumOffset + sizeof(uint64_t)));
  return hasher.digest();
}

Result<uint64_t> assign_weight_offsets(std::vector<WeightDesc>& weights) {
  uint64_t end = 0;
  // The next kDataAlignment multiple at or after `end` for `bytes` bytes; false on overflow
  // (sizes are capped at 2^53 elements * 4 bytes, so a few thousand weights cannot overflow;
  // still, check rather than assume).
  auto place = [&end](uint64_t bytes, uint64_t& offset) {
    offset = (end + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
    return offset >= end && !__builtin_add_overflow(offset, bytes, &end);
  };
  // Every weight's bytes first, in order, then every weight's params: consecutive weights whose
  // sizes are multiples of kDataAlignment (a split projection's per-head row slices) are then
  // adjacent, one [sum of rows, K] matrix the runtime can read in one call.
  for (WeightDesc& weight : weights) {
    HS_ASSIGN_OR_RETURN(uint64_t size, weight_storage_bytes(weight));
    weight.size_bytes = size;
    weight.params_offset = 0;
    weight.params_size = weight_params_bytes(weight.quant);
    if (!place(size, weight.offset)) {
      return errorf(ErrorKind::kOutOfRange, "weight '{}': data section size overflows",
                    weight.name);
    }
  }
  for (WeightDesc& weight : weights) {
    if (weight.params_size > 0 && !place(weight.params_size, weight.params_offset)) {
      return errorf(ErrorKind::kOutOfRange, "weight '{}': data section size overflows",
                    weight.name);
    }
  }
  return end;
}

}  // namespace hs::artifact

// write_artifact: header, program section (envelope + program, zlib by default), then each weight streamed from the source at its 64-byte
// aligned offset, followed by its per-axis / per-block quant params (64-byte aligned), hashing
// as it goes; the checksum is patched into the header at the end and
// the temporary file renamed over the destination only when everything succeeded.
#include "headsplit/artifact/writer.h"

#include <cstring>

#include "headsplit/artifact/format.h"
#include "headsplit/support/file.h"
#include "headsplit/support/hash.h"

namespace hs::artifact {
namespace {

uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Appends to the file and to the running checksum.
class HashedWriter {
 public:
  explicit HashedWriter(AtomicFileWriter& file) : file_(file) {}

  Status write(std::span<const std::byte> bytes) {
    HS_TRY(file_.write(bytes));
    hasher_.update(bytes);
    return {};
  }
  Status pad_to(uint64_t offset) {
    static constexpr std::byte kZeros[kDataAlignment] = {};
    HS_CHECK(offset >= file_.offset() && offset - file_.offset() <= kDataAlignment,
             "padding is less than one alignment unit");
    return write(std::span<const std::byte>(kZeros, offset - file_.offset()));
  }
  Hasher& hasher() { return hasher_; }

 private:
  AtomicFileWriter& file_;
  Hasher hasher_;
};

}  // namespace

Result<WriteSummary> write_artifact(const std::string& path, const Program& program,
                                    const WeightSource& source, WriteOptions options) {
  if (!source && !program.weights.empty()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: no weight source for {} weights", path,
                  program.weights.size());
  }
  Program stored = program;
  auto data_size = assign_weight_offsets(stored.weights);
  if (!data_size.ok()) {
    return Error(ErrorKind::kInvalidArgument,
                 std::move(data_size).error().with_context(path).message());
  }
  if (Status checked = check_program(stored, CheckOptions{*data_size}, path); !checked.ok()) {
    // The program, not a file, is at fault: report it as the caller's mistake.
    return Error(ErrorKind::kInvalidArgument, checked.error().message());
  }
  const std::vector<std::byte> flat = encode_program(stored);
  std::vector<std::byte> program_bytes = pack_program(flat, options.program_codec);

  FileHeader header;
  header.program_offset = kHeaderSize;
  header.program_size = program_bytes.size();
  header.data_offset = align_up(header.program_offset + header.program_size, kDataAlignment);
  header.data_size = *data_size;
  header.file_size = header.data_offset + header.data_size;

  HS_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::create(path));
  HashedWriter out(file);
  // The checksum covers the header without its checksum field (zero while writing).
  auto header_bytes = encode_header(header);
  HS_TRY(file.write(header_bytes));
  out.hasher().update(std::span(header_bytes).first(kChecksumOffset));
  out.hasher().update(std::span(header_bytes).subspan(kChecksumOffset + sizeof(uint64_t)));
  HS_TRY(out.write(program_bytes));
  HS_TRY(out.pad_to(header.data_offset));

  for (size_t i = 0; i < stored.weights.size(); ++i) {
    const WeightDesc& w = stored.weights[i];
    HS_TRY(out.pad_to(header.data_offset + w.offset));
    auto bytes = source(static_cast<int>(i), w);
    if (!bytes.ok()) {
      return std::move(bytes).error().with_context(
          fmt::format("{}: weight #{} '{}'", path, i, w.name));
    }
    if (bytes->size() != w.size_bytes) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: weight #{} '{}': source gave {} bytes, expected {} ({}[{}]{})", path, i,
                    w.name, bytes->size(), w.size_bytes, opset::dtype_name(w.dtype),
                    fmt::join(w.shape, ","),
                    w.layout == WeightLayout::kInt4Packed ? " packed in rows" : "");
    }
    HS_TRY(out.write(*bytes));
  }
  for (const WeightDesc& w : stored.weights) {  // after every weight (assign_weight_offsets)
    if (w.params_size > 0) {  // the scales, then the zero points unless all zero
      HS_TRY(out.pad_to(header.data_offset + w.params_offset));
      HS_TRY(out.write(std::as_bytes(std::span(w.quant.scales))));
      if (w.params_size > w.quant.scales.size() * sizeof(float)) {
        HS_TRY(out.write(std::as_bytes(std::span(w.quant.zero_points))));
      }
    }
  }
  HS_CHECK(file.offset() == header.file_size, "artifact size differs from its layout");

  WriteSummary summary;
  summary.file_size = header.file_size;
  summary.program_size = header.program_size;
  summary.program_bytes = flat.size();
  summary.data_offset = header.data_offset;
  summary.data_size = header.data_size;
  summary.checksum = out.hasher().digest();
  std::byte checksum[sizeof(uint64_t)];
  std::memcpy(checksum, &summary.checksum, sizeof(checksum));  // little-endian host
  HS_TRY(file.rewrite_at(kChecksumOffset, checksum));
  HS_TRY(file.commit());
  return summary;
}

}  // namespace hs::artifact

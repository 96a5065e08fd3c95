// Writes a .hsa artifact: the program, then every weight streamed from a WeightSource, so a
// 1 GB model is never assembled in memory. The write is atomic (temp file + rename): on any
// error, including one returned by the weight source, nothing is left at the destination
// (an existing file there is untouched) and the temporary file is removed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/program.h"
#include "headsplit/support/result.h"

namespace hs::artifact {

// Supplies the stored bytes of weight `index` (program.weights[index]) in its storage layout:
// for kInt4Packed weights the caller packs (see artifact/int4.h). The span must stay valid
// until the next call or until write_artifact returns. Called once per weight, in order.
using WeightSource =
    std::function<Result<std::span<const std::byte>>(int index, const WeightDesc& weight)>;

struct WriteSummary {
  uint64_t file_size = 0;
  uint64_t program_size = 0;   // program section bytes (envelope + stored or zlib payload)
  uint64_t program_bytes = 0;  // the FlatBuffers program inside, unpacked
  uint64_t data_offset = 0;
  uint64_t data_size = 0;  // weight bytes including alignment padding
  uint64_t checksum = 0;
};

struct WriteOptions {
  // How the program section holds the program: zlib (the default, a fifth of the size for
  // large graphs) or stored (tests and fuzz seeds that damage the program's bytes).
  ProgramCodec program_codec = ProgramCodec::kZlib;
};

// Writes `program` and its weights to `path`. Weight offsets and sizes are assigned by the
// writer (the values in program.weights are ignored). The program is checked with the
// reader's semantic checks first; a program the reader would reject is kInvalidArgument.
// A source returning the wrong number of bytes for a weight is kInvalidArgument.
Result<WriteSummary> write_artifact(const std::string& path, const Program& program,
                                    const WeightSource& source, WriteOptions options = {});

}  // namespace hs::artifact

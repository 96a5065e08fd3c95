// Helpers for the artifact tests: a sample program exercising every feature of the format
// (two graphs sharing weights; f32, i8 per-axis, packed i4 per-block with a partial last
// block, u16 per-tensor; every attr kind; every tokenizer field), its weight bytes, and byte
// patching of files (with checksum repair) to build deliberately broken artifacts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/program.h"
#include "headsplit/artifact/writer.h"

namespace hs::artifact::testing {

// Weights: 0 tok_embeddings f32[5,4]; 1 layers.0.attention.wq i8[4,4] per-axis;
// 2 layers.0.feed_forward.w1 i4[3,9] per-block (block 4: 4+4+1); 3 norm u16[4] per-tensor.
// Graphs: "prefill" (T = 2) and "decode" (T = 1) over the same weights.
// Weight offsets and sizes are left zero (the writer assigns them).
Program sample_program();

// Deterministic stored bytes for each weight of `program` (i4 packed), seeded.
std::vector<std::vector<std::byte>> sample_weight_data(const Program& program, uint64_t seed);

// A WeightSource serving `data` (which must outlive it).
WeightSource memory_source(const std::vector<std::vector<std::byte>>& data);

// Writes sample_program() with sample_weight_data(seed 1) to `dir`/`name`; returns the path.
// The program is stored uncompressed unless `codec` says otherwise, so that tests (and fuzz
// seeds) that damage program bytes reach the FlatBuffers verifier and the checks.
std::string write_sample(const std::string& dir, const std::string& name,
                         ProgramCodec codec = ProgramCodec::kStored);

std::vector<std::byte> read_bytes(const std::string& path);
void write_bytes(const std::string& path, std::span<const std::byte> bytes);

// Little-endian field patches; fix_checksum recomputes the header checksum.
void put_u16(std::vector<std::byte>& file, size_t offset, uint16_t value);
void put_u64(std::vector<std::byte>& file, size_t offset, uint64_t value);
uint64_t get_u64(std::span<const std::byte> file, size_t offset);
void fix_checksum(std::vector<std::byte>& file);

// A complete file around hand-made FlatBuffers program bytes (wrapped in a program envelope
// with `codec`) and data bytes (layout as the writer's, correct checksum), for programs the
// writer would refuse to write.
std::vector<std::byte> assemble_file(std::span<const std::byte> program_bytes,
                                     std::span<const std::byte> data_bytes,
                                     ProgramCodec codec = ProgramCodec::kStored);
// assemble_file around a program section given as is (envelope included).
std::vector<std::byte> assemble_section(std::span<const std::byte> section,
                                        std::span<const std::byte> data_bytes);

// The data section of sample_weight_data(program, seed) laid out at assigned offsets.
std::vector<std::byte> data_section(const Program& program_with_offsets,
                                    const std::vector<std::vector<std::byte>>& data);

// Names of the entries of a directory (to check that no temporary file is left behind).
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace hs::artifact::testing

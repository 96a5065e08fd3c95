// Fuzz entry points: one per reader. Each takes arbitrary bytes, feeds them to the reader the
// way a user's file would arrive (written to a private temporary file, then the public load
// function), and uses whatever loads. They return 0 and must never crash, hang or allocate
// beyond the input's size: a failure is a clean Result error.
//
// The libFuzzer targets (targets/, clang only) call them from LLVMFuzzerTestOneInput; the
// replay test (replay_test.cpp, any compiler) runs them on the seeds and on every saved
// crasher under tests/fuzz/regressions/<target>/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hs::tokenizer {
struct TokenizerData;
}  // namespace hs::tokenizer

namespace hs::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
// Builds a tokenizer from loaded data and encodes/decodes a fixed text (catches data that
// passes a reader's checks but breaks the tokenizer).
void exercise_tokenizer(const tokenizer::TokenizerData& data);

using Entry = int (*)(const uint8_t* data, size_t size);

struct Target {
  std::string_view name;  // also the regressions/ and dicts/ folder name
  Entry entry;
};

int gguf(const uint8_t* data, size_t size);          // GgufFile + tokenizer + model
int safetensors(const uint8_t* data, size_t size);   // header + every tensor
int hf_config(const uint8_t* data, size_t size);     // config.json
int hf_index(const uint8_t* data, size_t size);      // model.safetensors.index.json
int hf_tokenizer(const uint8_t* data, size_t size);  // tokenizer.json [\0 tokenizer_config.json]
int llama2c(const uint8_t* data, size_t size);       // checkpoint (+ the seed tokenizer)
int llama2c_tokenizer(const uint8_t* data, size_t size);  // 4-byte vocab size, tokenizer.bin
int artifact(const uint8_t* data, size_t size);           // load + check + plan every graph
int ir_text(const uint8_t* data, size_t size);            // parse + verify + print + reparse
int chat_template(const uint8_t* data, size_t size);      // detect + render + encode

// Every target, in a fixed order.
std::span<const Target> targets();

// A per-process scratch folder (created once) and a file in it holding `bytes`.
const std::string& scratch_dir();
std::string write_scratch(std::string_view name, std::span<const uint8_t> bytes);

// Artifacts: rewrites the header checksum so a mutated file passes the checksum and reaches
// the verifier and the checks (the structured mutation). No-op on files too small to hold one.
void fix_artifact_checksum(uint8_t* data, size_t size);

}  // namespace hs::fuzz

// Helpers for the backend tests: a random model in stories260K's shape with a small
// llama2c-style tokenizer (no shared data needed), and stories260K itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "headsplit/frontend/llama_model.h"

namespace hs::backend::testing {

// make_random_llama(stories260k config, seed) with a tokenizer of V pieces: <unk>, <s>, </s>,
// the 256 byte pieces, then single characters and made-up pieces.
frontend::LlamaModel random_stories(uint64_t seed);

// stories260K.bin with tok512.bin from the shared folder (the caller checks availability).
frontend::LlamaModel load_stories();

// A text file with the first `lines` lines of the TinyStories sample (shorter calibration).
std::string calibration_file(int lines);

// The names in a directory, sorted; a file's bytes.
std::vector<std::string> list_dir(const std::string& dir);
std::vector<std::byte> read_bytes(const std::string& path);

}  // namespace hs::backend::testing

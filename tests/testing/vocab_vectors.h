// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out, as its test-tokenizer-0
// reads them), shared by the GGUF vocabulary tests and the tokenize command's tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hs::testing {

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;  // without BOS
};

// `<base>.inp` holds the strings separated by "\n__ggml_vocab_test__\n" (the newline ending each
// string belongs to the separator); `<base>.out` one line of space-separated ids per string.
// Aborts the test binary (HS_CHECK) on unreadable files or a count mismatch.
std::vector<VocabCase> read_vocab_vectors(const std::string& base);

}  // namespace hs::testing

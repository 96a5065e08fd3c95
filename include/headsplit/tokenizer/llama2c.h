// Reader of llama2.c's tokenizer.bin (e.g. tok512.bin of stories260K).
//
// Format, little endian: int32 max_token_length, then for each id in [0, V): float32 score,
// int32 byte length, the raw piece bytes (SentencePiece's "▁" already turned into " ").
// Id 0 is <unk>, 1 BOS, 2 EOS; ids 3..258 are the byte pieces <0x00>..<0xFF>.
#pragma once

#include <cstdint>
#include <string>

#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::tokenizer {

// Loads a tokenizer.bin holding exactly `vocab_size` pieces (V, from the checkpoint header).
// The result has kind kLlama2c, BOS 1, EOS 2, extra_eos_ids {1} (llama2.c generation stops on
// BOS), unk 0, types <unk>/control/byte/normal. Truncated files, negative or oversized
// lengths and a piece count other than `vocab_size` are kCorrupt errors naming the file, the
// token id and the byte offset.
Result<TokenizerData> load_llama2c_tokenizer(const std::string& path, int64_t vocab_size);

}  // namespace hs::tokenizer

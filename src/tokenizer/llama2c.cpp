// Reader of llama2.c's tokenizer.bin: int32 max_token_length, then per id a float32 score,
// an int32 byte length and the piece bytes. Every size is checked against the bytes left
// before it is trusted, so a corrupt file gives an error naming the token and the offset and
// never an allocation larger than the file.
#include "headsplit/tokenizer/llama2c.h"

#include <algorithm>
#include <cstring>

#include "headsplit/support/buffer.h"
#include "internal.h"

namespace hs::tokenizer {
namespace {

template <typename T>
T read_le(const std::byte* p) {  // the file is little endian, as is every supported host
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

TokenType llama2c_token_type(int64_t id, std::string_view piece) {
  if (id == 0) return TokenType::kUnknown;
  if (id == 1 || id == 2) return TokenType::kControl;
  if (id >= 3 && id <= 258 && detail::parse_byte_piece(piece)) return TokenType::kByte;
  return TokenType::kNormal;
}

}  // namespace

Result<TokenizerData> load_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
  if (vocab_size < 3 || vocab_size > INT32_MAX) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: vocab_size {} is out of range, expected 3..{} (<unk>, BOS, EOS first)", path,
                  vocab_size, INT32_MAX);
  }
  HS_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const std::span<const std::byte> bytes = file->bytes();
  const size_t size = bytes.size();
  if (size < 4) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: truncated: {} bytes, expected at least 4 for max_token_length", path, size);
  }
  TokenizerData data;
  data.kind = TokenizerKind::kLlama2c;
  data.max_token_length = read_le<int32_t>(bytes.data());
  if (data.max_token_length <= 0) {
    return errorf(ErrorKind::kCorrupt, "{}: max_token_length is {} at byte offset 0, expected > 0",
                  path, data.max_token_length);
  }
  // Each piece takes at least 8 bytes, so the file bounds what may be reserved.
  const auto capacity = static_cast<size_t>(std::min<int64_t>(vocab_size, (size - 4) / 8));
  data.pieces.reserve(capacity);
  data.scores.reserve(capacity);
  data.types.reserve(capacity);

  size_t offset = 4;
  for (int64_t id = 0; id < vocab_size; ++id) {
    const size_t left = size - offset;
    if (left == 0) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: ends at byte offset {} after {} pieces, expected vocab_size {}", path,
                    offset, id, vocab_size);
    }
    if (left < 8) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: truncated at token {} (byte offset {}): {} bytes left, expected 8 for "
                    "score and length",
                    path, id, offset, left);
    }
    const auto score = read_le<float>(bytes.data() + offset);
    const auto length = read_le<int32_t>(bytes.data() + offset + 4);
    if (length < 0) {
      return errorf(ErrorKind::kCorrupt, "{}: token {} has negative length {} at byte offset {}",
                    path, id, length, offset + 4);
    }
    if (length > data.max_token_length) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: token {} has length {} at byte offset {}, more than max_token_length {}",
                    path, id, length, offset + 4, data.max_token_length);
    }
    if (static_cast<size_t>(length) > left - 8) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: token {} at byte offset {} has length {} but only {} bytes are left", path,
                    id, offset, length, left - 8);
    }
    offset += 8;
    std::string piece(reinterpret_cast<const char*>(bytes.data() + offset),
                      static_cast<size_t>(length));
    offset += static_cast<size_t>(length);
    data.types.push_back(llama2c_token_type(id, piece));
    data.pieces.push_back(std::move(piece));
    data.scores.push_back(score);
  }
  if (offset != size) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: {} bytes follow token {} at byte offset {}: more pieces than vocab_size {}",
                  path, size - offset, vocab_size - 1, offset, vocab_size);
  }
  data.bos_id = 1;
  data.eos_id = 2;
  data.extra_eos_ids = {1};  // llama2.c run.c stops generating on BOS
  data.unk_id = 0;
  data.add_bos = true;
  data.add_space_prefix = true;
  return data;
}

}  // namespace hs::tokenizer

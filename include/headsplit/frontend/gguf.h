// GGUF reader (llama.cpp's model format): header, metadata of every value type, tensor
// infos, alignment; memory-mapped. Loads llama-architecture models and tokenizers.
//
// File layout (little endian, versions 2 and 3):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv
//   n_kv x {string key, u32 type, value}        string = u64 length + bytes
//   n_tensors x {string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset}
//   padding to general.alignment (default 32), then the data section; tensor offsets are
//   relative to it. ne[0] is the fastest axis: a row-major [out, in] matrix has ne = [in, out].
// Opening checks every count, length, offset and size against the bytes that exist before
// allocating or reading, so hostile files give an error, never a crash or a huge allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/support/buffer.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::frontend {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
std::string_view gguf_type_name(GgufType type);  // "u8", ..., "string", "array", "f64"

// ggml tensor type ids this reader dequantizes (every known ggml type is size-checked).
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };
// Name of a ggml type id ("f32", "q4_K", ...), or "" when the id is unknown.
std::string_view ggml_type_name(uint32_t type);

// A metadata value. Scalars are decoded at open; an array stays in the mapping (its layout is
// validated at open) and is decoded on request (GgufFile::get_*_array, array_items).
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;                      // kU8, kU16, kU32, kU64; kBool as 0/1
  int64_t i = 0;                       // kI8, kI16, kI32, kI64
  double f = 0.0;                      // kF32 (widened exactly), kF64
  std::string s;                       // kString
  GgufType elem_type = GgufType::kU8;  // kArray: element type
  uint64_t count = 0;                  // kArray: number of elements
  size_t offset = 0;                   // kArray: file offset of the first element
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // GGUF dims, fastest axis first
  uint32_t type = 0;         // ggml type id
  uint64_t offset = 0;       // relative to the data section
  uint64_t nbytes = 0;
  std::vector<int64_t> shape() const;  // row-major shape: ne reversed
};

class GgufFile {
 public:
  static Result<GgufFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order, and lookup by key (nullptr when absent).
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters. kNotFound when the key is absent, kCorrupt when it has another type;
  // messages name the key and both types.
  Result<std::string> get_string(std::string_view key) const;
  Result<uint64_t> get_uint(std::string_view key) const;  // any integer type, >= 0
  Result<double> get_float(std::string_view key) const;   // f32 or f64
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;    // f32 or f64 elements
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;  // integer elements
  // The elements of an array value as values (nested arrays stay lazy).
  Result<std::vector<GgufValue>> array_items(const GgufValue& array) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The tensor as float32 (F32 viewed in place when aligned; F16, BF16, Q8_0 dequantized),
  // shape = ne reversed. kNotFound / kUnsupported (other ggml types) name the tensor.
  Result<Weight> load_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  friend class GgufParser;
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Reads the tokenizer (tokenizer.ggml.*) of a GGUF file, vocab-only files included:
// model "llama" -> kSpm, "gpt2" -> kByteLevelBpe; tokens, scores, token_type, merges,
// bos/eos/unk/pad ids (0xffffffff = none), eot/eom ids as extra EOS, add_bos_token,
// add_space_prefix, pre, chat_template.
Result<tokenizer::TokenizerData> load_gguf_tokenizer(const std::string& path);
Result<tokenizer::TokenizerData> load_gguf_tokenizer(const GgufFile& file);

// Loads a llama-architecture GGUF model (weights F32/F16/BF16/Q8_0 dequantized to float32,
// q/k rows permuted to rotate-half) with its tokenizer. An output.weight bit-identical to
// token_embd.weight is treated as tied. float32 metadata (rms eps, rope base) is read as the
// shortest decimal that round-trips (1e-5f -> 1e-5), i.e. the value the writer meant.
Result<LlamaModel> load_gguf_model(const std::string& path);

}  // namespace hs::frontend

// Safetensors reader (Hugging Face weight files), memory-mapped.
//
// Layout: u64 little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "BF16", "shape": [out, in], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// then the data section; offsets are relative to its start (byte 8 + N). Opening checks the
// header length against the file, the JSON, every dtype, shape and offset pair (inside the
// data section, end - begin == numel * dtype size, no two tensors overlapping) before any
// tensor is read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/support/buffer.h"

namespace hs::frontend {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;  // row-major
  uint64_t begin = 0;          // [begin, end) relative to the data section
  uint64_t end = 0;
};

// Bytes per element of a safetensors dtype name, or 0 when the name is unknown.
int64_t safetensors_dtype_size(std::string_view dtype);

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by name
  const SafetensorsTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t data_offset() const { return data_offset_; }

  // The tensor as float32: F32 viewed in place when 4-byte aligned, F16 and BF16 converted.
  // kNotFound / kUnsupported (other dtypes) name the tensor.
  Result<Weight> load(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace hs::frontend

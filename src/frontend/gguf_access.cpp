// GGUF typed metadata getters, lazy array decoding and tensor loading (F32 views; F16, BF16
// and Q8_0 dequantized to float32). The layout was validated by GgufFile::open, so decoding
// here reads within the mapping without further bounds checks.
#include <cstring>

#include "headsplit/frontend/gguf.h"

namespace hs::frontend {

namespace {

template <typename T>
T load_le(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool is_signed(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}

// Decodes the scalar of `type` at `p` into `v`; returns the bytes consumed (strings: 8 + n).
size_t decode_scalar(GgufType type, const std::byte* p, GgufValue& v) {
  v.type = type;
  switch (type) {
    case GgufType::kU8: v.u = load_le<uint8_t>(p); return 1;
    case GgufType::kBool: v.u = load_le<uint8_t>(p) != 0; return 1;
    case GgufType::kU16: v.u = load_le<uint16_t>(p); return 2;
    case GgufType::kU32: v.u = load_le<uint32_t>(p); return 4;
    case GgufType::kU64: v.u = load_le<uint64_t>(p); return 8;
    case GgufType::kI8: v.i = load_le<int8_t>(p); return 1;
    case GgufType::kI16: v.i = load_le<int16_t>(p); return 2;
    case GgufType::kI32: v.i = load_le<int32_t>(p); return 4;
    case GgufType::kI64: v.i = load_le<int64_t>(p); return 8;
    case GgufType::kF32: v.f = load_le<float>(p); return 4;
    case GgufType::kF64: v.f = load_le<double>(p); return 8;
    case GgufType::kString: {
      const uint64_t n = load_le<uint64_t>(p);
      v.s.assign(reinterpret_cast<const char*>(p + 8), n);
      return 8 + n;
    }
    case GgufType::kArray: break;
  }
  HS_CHECK(false, "decode_scalar on an array");
  return 0;
}

Error wrong_type(const std::string& path, std::string_view key, const GgufValue& v,
                 std::string_view expected) {
  std::string actual(gguf_type_name(v.type));
  if (v.type == GgufType::kArray) actual = fmt::format("array of {}", gguf_type_name(v.elem_type));
  return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' is {}, expected {}", path, key, actual,
                expected);
}

// Bytes taken by one encoded value of `type` at `p` (arrays: header and all elements).
size_t encoded_size(GgufType type, const std::byte* p) {
  if (type == GgufType::kString) return 8 + load_le<uint64_t>(p);
  if (type != GgufType::kArray) {
    GgufValue probe;
    return decode_scalar(type, p, probe);
  }
  const auto elem = static_cast<GgufType>(load_le<uint32_t>(p));
  const uint64_t count = load_le<uint64_t>(p + 4);
  size_t size = 12;
  if (elem != GgufType::kString && elem != GgufType::kArray) {
    GgufValue probe;
    return size + count * (count == 0 ? 0 : decode_scalar(elem, p + 12, probe));
  }
  for (uint64_t i = 0; i < count; ++i) size += encoded_size(elem, p + size);
  return size;
}

}  // namespace

Result<std::vector<GgufValue>> GgufFile::array_items(const GgufValue& array) const {
  if (array.type != GgufType::kArray) {
    return errorf(ErrorKind::kInvalidArgument, "{}: array_items on a {} value", path_,
                  gguf_type_name(array.type));
  }
  std::vector<GgufValue> items(array.count);
  const std::byte* p = file_->data() + array.offset;
  for (GgufValue& item : items) {
    if (array.elem_type == GgufType::kArray) {
      item.type = GgufType::kArray;  // nested: header only, elements stay lazy
      item.elem_type = static_cast<GgufType>(load_le<uint32_t>(p));
      item.count = load_le<uint64_t>(p + 4);
      item.offset = static_cast<size_t>(p + 12 - file_->data());
      p += encoded_size(GgufType::kArray, p);
    } else {
      p += decode_scalar(array.elem_type, p, item);
    }
  }
  return items;
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kString) return wrong_type(path_, key, *v, "string");
  return v->s;
}

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (is_unsigned(v->type)) return v->u;
  if (is_signed(v->type)) {
    if (v->i < 0) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' is {}, expected >= 0", path_, key,
                    v->i);
    }
    return static_cast<uint64_t>(v->i);
  }
  return wrong_type(path_, key, *v, "an integer");
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kF32 && v->type != GgufType::kF64) {
    return wrong_type(path_, key, *v, "f32 or f64");
  }
  return v->f;
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kBool) return wrong_type(path_, key, *v, "bool");
  return v->u != 0;
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    return wrong_type(path_, key, *v, "array of string");
  }
  std::vector<std::string> out(v->count);
  const std::byte* p = file_->data() + v->offset;
  for (std::string& s : out) {
    const uint64_t n = load_le<uint64_t>(p);
    s.assign(reinterpret_cast<const char*>(p + 8), n);
    p += 8 + n;
  }
  return out;
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kArray ||
      (v->elem_type != GgufType::kF32 && v->elem_type != GgufType::kF64)) {
    return wrong_type(path_, key, *v, "array of f32");
  }
  std::vector<float> out(v->count);
  const std::byte* p = file_->data() + v->offset;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = v->elem_type == GgufType::kF32 ? load_le<float>(p + 4 * i)
                                            : static_cast<float>(load_le<double>(p + 8 * i));
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return errorf(ErrorKind::kNotFound, "{}: metadata '{}' is missing", path_, key);
  if (v->type != GgufType::kArray || !(is_unsigned(v->elem_type) || is_signed(v->elem_type))) {
    return wrong_type(path_, key, *v, "array of integers");
  }
  std::vector<int64_t> out(v->count);
  const std::byte* p = file_->data() + v->offset;
  GgufValue item;
  for (int64_t& x : out) {
    p += decode_scalar(v->elem_type, p, item);
    x = is_signed(v->elem_type) ? item.i : static_cast<int64_t>(item.u);
  }
  return out;
}

Result<Weight> GgufFile::load_tensor(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (info == nullptr) {
    return errorf(ErrorKind::kNotFound, "{}: tensor '{}' is missing", path_, name);
  }
  const BufferView data{file_, static_cast<size_t>(data_offset_ + info->offset),
                        static_cast<size_t>(info->nbytes)};
  std::vector<int64_t> shape = info->shape();
  switch (static_cast<GgmlType>(info->type)) {
    case GgmlType::kF32: return weight_from_stored(std::move(shape), StoredDType::kF32, data);
    case GgmlType::kF16: return weight_from_stored(std::move(shape), StoredDType::kF16, data);
    case GgmlType::kBF16: return weight_from_stored(std::move(shape), StoredDType::kBF16, data);
    case GgmlType::kQ8_0: {
      // Blocks of 32: f16 scale d, then 32 int8 q; x = d * q (as ggml's dequantize_row_q8_0).
      const size_t blocks = info->nbytes / 34;
      auto buffer = std::make_shared<HeapBuffer>(blocks * 32 * 4);
      float* out = reinterpret_cast<float*>(buffer->mutable_bytes().data());
      const std::byte* src = data.bytes().data();
      for (size_t b = 0; b < blocks; ++b, src += 34) {
        const float d = f16_to_f32(load_le<uint16_t>(src));
        for (int j = 0; j < 32; ++j) {
          out[b * 32 + j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
        }
      }
      return Weight{std::move(shape), BufferView{std::move(buffer), 0, blocks * 32 * 4}};
    }
  }
  return errorf(ErrorKind::kUnsupported,
                "{}: tensor '{}' has ggml type {}, supported are f32, f16, bf16 and q8_0", path_,
                name, ggml_type_name(info->type));
}

}  // namespace hs::frontend

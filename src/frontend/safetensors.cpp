// Safetensors reader: header length and JSON checks, per-tensor dtype/shape/offset checks
// (overflow-safe, inside the data section, no overlaps), float32 loading.
#include "headsplit/frontend/safetensors.h"

#include <algorithm>
#include <cstring>

#include "hf_json.h"

namespace hs::frontend {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit of the reference implementation

Result<SafetensorsTensor> parse_entry(const std::string& path, const std::string& name,
                                      const json::Json& entry, uint64_t data_size) {
  const std::string what = fmt::format("{}: tensor '{}'", path, name);
  if (!entry.is_object()) {
    return errorf(ErrorKind::kCorrupt, "{} is a JSON {}, expected an object", what,
                  json::type_name(entry));
  }
  SafetensorsTensor t;
  t.name = name;
  auto st = json::get_string(entry, "dtype", what);
  if (!st.ok()) return Error(ErrorKind::kCorrupt, st.error().message());
  t.dtype = *st;
  const int64_t elem = safetensors_dtype_size(t.dtype);
  if (elem == 0) {
    return errorf(ErrorKind::kUnsupported, "{} has unknown dtype '{}'", what, t.dtype);
  }
  const json::Json* shape = json::member(entry, "shape");
  const json::Json* offsets = json::member(entry, "data_offsets");
  if (shape == nullptr || !shape->is_array() || offsets == nullptr || !offsets->is_array() ||
      offsets->size() != 2) {
    return errorf(ErrorKind::kCorrupt, "{} needs a 'shape' array and a 2-element 'data_offsets'",
                  what);
  }
  uint64_t numel = 1;
  for (const json::Json& d : *shape) {
    auto dim = json::as_int(d, what + " shape");
    if (!dim.ok() || *dim < 0) {
      return errorf(ErrorKind::kCorrupt,
                    "{} has shape {} with a dimension that is not a "
                    "non-negative integer",
                    what, json::text(*shape));
    }
    t.shape.push_back(*dim);
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(*dim), &numel) ||
        numel > static_cast<uint64_t>(INT64_MAX)) {
      return errorf(ErrorKind::kCorrupt, "{} shape {} overflows 64 bits", what, json::text(*shape));
    }
  }
  auto begin = json::as_int((*offsets)[0], what + " data_offsets");
  auto end = json::as_int((*offsets)[1], what + " data_offsets");
  if (!begin.ok() || !end.ok() || *begin < 0 || *end < *begin) {
    return errorf(ErrorKind::kCorrupt,
                  "{} has data_offsets {}, expected [begin, end] with "
                  "0 <= begin <= end",
                  what, json::text(*offsets));
  }
  t.begin = static_cast<uint64_t>(*begin);
  t.end = static_cast<uint64_t>(*end);
  if (t.end > data_size) {
    return errorf(ErrorKind::kOutOfRange,
                  "{} has data_offsets [{}, {}] past the end of the {}-byte data section", what,
                  t.begin, t.end, data_size);
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(elem), &bytes) ||
      bytes != t.end - t.begin) {
    return errorf(ErrorKind::kCorrupt,
                  "{} has {} bytes in data_offsets [{}, {}], expected {} ({} x {} of {} bytes)",
                  what, t.end - t.begin, t.begin, t.end, numel * static_cast<uint64_t>(elem), numel,
                  t.dtype, elem);
  }
  return t;
}

}  // namespace

int64_t safetensors_dtype_size(std::string_view dtype) {
  static const std::pair<std::string_view, int64_t> kSizes[] = {
      {"F64", 8},  {"F32", 4},     {"F16", 2},     {"BF16", 2},   {"I64", 8}, {"I32", 4},
      {"I16", 2},  {"I8", 1},      {"U64", 8},     {"U32", 4},    {"U16", 2}, {"U8", 1},
      {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}};
  for (const auto& [name, size] : kSizes) {
    if (name == dtype) return size;
  }
  return 0;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  HS_ASSIGN_OR_RETURN(f.file_, MappedFile::open(path));
  const size_t size = f.file_->size();
  if (size < 8) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: file has {} bytes, shorter than the 8-byte header "
                  "length",
                  path, size);
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, f.file_->data(), 8);
  if (header_len > size - 8 || header_len > kMaxHeaderBytes) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: header length {} is past the end of the file ({} bytes after the length)",
                  path, header_len, size - 8);
  }
  const std::string_view text(reinterpret_cast<const char*>(f.file_->data() + 8), header_len);
  auto parsed = json::parse(text, path + " header");
  if (!parsed.ok()) return Error(ErrorKind::kCorrupt, parsed.error().message());
  const json::Json& header = *parsed;
  if (!header.is_object()) {
    return errorf(ErrorKind::kCorrupt, "{}: header is a JSON {}, expected an object", path,
                  json::type_name(header));
  }
  f.data_offset_ = 8 + header_len;
  const uint64_t data_size = size - f.data_offset_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) continue;
      for (const auto& [key, value] : entry.items()) {
        if (value.is_string()) f.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    HS_ASSIGN_OR_RETURN(SafetensorsTensor t, parse_entry(path, name, entry, data_size));
    f.index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }
  // No two non-empty tensors may share bytes.
  std::vector<const SafetensorsTensor*> by_offset;
  for (const SafetensorsTensor& t : f.tensors_) {
    if (t.end > t.begin) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return errorf(ErrorKind::kCorrupt, "{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap",
                    path, by_offset[i - 1]->name, by_offset[i - 1]->begin, by_offset[i - 1]->end,
                    by_offset[i]->name, by_offset[i]->begin, by_offset[i]->end);
    }
  }
  return f;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<Weight> SafetensorsFile::load(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (t == nullptr) return errorf(ErrorKind::kNotFound, "{}: tensor '{}' is missing", path_, name);
  StoredDType dtype;
  if (t->dtype == "F32") {
    dtype = StoredDType::kF32;
  } else if (t->dtype == "F16") {
    dtype = StoredDType::kF16;
  } else if (t->dtype == "BF16") {
    dtype = StoredDType::kBF16;
  } else {
    return errorf(ErrorKind::kUnsupported,
                  "{}: tensor '{}' has dtype {}, supported are F32, F16 and BF16", path_, name,
                  t->dtype);
  }
  const BufferView data{file_, static_cast<size_t>(data_offset_ + t->begin),
                        static_cast<size_t>(t->end - t->begin)};
  return weight_from_stored(t->shape, dtype, data);
}

}  // namespace hs::frontend

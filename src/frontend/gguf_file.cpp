// GGUF container parsing: header, metadata (validated, arrays left in the mapping), tensor
// infos with overflow-safe size and bounds checks. Tensor decoding is in gguf_tensor.cpp.
#include <bit>
#include <cstring>

#include "headsplit/frontend/gguf.h"

namespace hs::frontend {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little endian
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;

// Size in the file of one element of a fixed-size metadata type; 0 for string and array.
size_t fixed_size(GgufType type) {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: return 1;
    case GgufType::kU16:
    case GgufType::kI16: return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32: return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64: return 8;
    case GgufType::kString:
    case GgufType::kArray: return 0;
  }
  return 0;
}

// Smallest possible encoding of one value of `type` (strings: the length; arrays: type+count).
size_t min_size(GgufType type) {
  if (type == GgufType::kString) return 8;
  if (type == GgufType::kArray) return 12;
  return fixed_size(type);
}

struct GgmlTypeTraits {
  const char* name;
  uint32_t block;  // elements per block
  uint32_t bytes;  // bytes per block
};

// ggml's type table (ggml.h, ggml.c type_traits); removed ids have no entry.
const GgmlTypeTraits* ggml_traits(uint32_t type) {
  static const GgmlTypeTraits kTable[] = {
      {"f32", 1, 4},        {"f16", 1, 2},       {"q4_0", 32, 18},     {"q4_1", 32, 20},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {"q5_0", 32, 22},     {"q5_1", 32, 24},
      {"q8_0", 32, 34},     {"q8_1", 32, 36},    {"q2_K", 256, 84},    {"q3_K", 256, 110},
      {"q4_K", 256, 144},   {"q5_K", 256, 176},  {"q6_K", 256, 210},   {"q8_K", 256, 292},
      {"iq2_xxs", 256, 66}, {"iq2_xs", 256, 74}, {"iq3_xxs", 256, 98}, {"iq1_s", 256, 50},
      {"iq4_nl", 32, 18},   {"iq3_s", 256, 110}, {"iq2_s", 256, 82},   {"iq4_xs", 256, 136},
      {"i8", 1, 1},         {"i16", 1, 2},       {"i32", 1, 4},        {"i64", 1, 8},
      {"f64", 1, 8},        {"iq1_m", 256, 56},  {"bf16", 1, 2},       {nullptr, 0, 0},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {"tq1_0", 256, 54},   {"tq2_0", 256, 66},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {nullptr, 0, 0},      {"mxfp4", 32, 17},
  };
  if (type >= std::size(kTable) || kTable[type].name == nullptr) return nullptr;
  return &kTable[type];
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  static const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                 "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::string_view ggml_type_name(uint32_t type) {
  const GgmlTypeTraits* t = ggml_traits(type);
  return t == nullptr ? "" : t->name;
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  return std::vector<int64_t>(ne.rbegin(), ne.rend());
}

// Reads the file front to back. Every read checks the bytes remaining; the first failure is
// returned as an Error naming the file, the field and the offset.
class GgufParser {
 public:
  GgufParser(GgufFile& out, std::span<const std::byte> bytes) : out_(out), bytes_(bytes) {}

  Status parse() {
    uint32_t magic = 0;
    HS_TRY(read(magic, "magic"));
    if (magic != kMagic) {
      return errorf(ErrorKind::kBadMagic, "{}: not a GGUF file (magic {:#010x}, expected {:#010x})",
                    out_.path_, magic, kMagic);
    }
    HS_TRY(read(out_.version_, "version"));
    if (out_.version_ != 2 && out_.version_ != 3) {
      return errorf(ErrorKind::kVersion, "{}: GGUF version {} is not supported, expected 2 or 3{}",
                    out_.path_, out_.version_,
                    __builtin_bswap32(out_.version_) <= 3 ? " (the file looks big-endian)" : "");
    }
    uint64_t n_tensors = 0, n_kv = 0;
    HS_TRY(read(n_tensors, "tensor count"));
    HS_TRY(read(n_kv, "metadata count"));
    // Each entry takes at least 13 (kv) or 24 (tensor info) bytes: bound counts by the file.
    if (n_kv > remaining() / 13) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata count {} cannot fit in the {} bytes left",
                    out_.path_, n_kv, remaining());
    }
    if (n_tensors > remaining() / 24) {
      return errorf(ErrorKind::kCorrupt, "{}: tensor count {} cannot fit in the {} bytes left",
                    out_.path_, n_tensors, remaining());
    }
    out_.metadata_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) HS_TRY(parse_kv(k));
    HS_TRY(read_alignment());
    out_.tensors_.reserve(n_tensors);
    for (uint64_t t = 0; t < n_tensors; ++t) HS_TRY(parse_tensor_info(t));
    const uint64_t a = out_.alignment_;
    out_.data_offset_ = (pos_ + a - 1) / a * a;
    for (const GgufTensorInfo& info : out_.tensors_) HS_TRY(check_tensor_bounds(info));
    return ok_status();
  }

 private:
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  Status read(T& value, std::string_view what) {
    if (remaining() < sizeof(T)) {
      return errorf(ErrorKind::kCorrupt, "{}: truncated at offset {} reading {} ({} bytes left)",
                    out_.path_, pos_, what, remaining());
    }
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return ok_status();
  }

  Status read_string(std::string& s, std::string_view what) {
    uint64_t length = 0;
    HS_TRY(read(length, what));
    if (length > remaining()) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: {} at offset {} has length {} but only {} bytes are left", out_.path_,
                    what, pos_ - 8, length, remaining());
    }
    s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return ok_status();
  }

  // Skips over an array's elements, checking they fit; nested arrays recurse (depth-limited).
  Status skip_array(GgufType elem, uint64_t count, const std::string& key, int depth) {
    if (depth > kMaxArrayDepth) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' nests arrays deeper than {}",
                    out_.path_, key, kMaxArrayDepth);
    }
    if (elem > GgufType::kF64) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' has unknown array element type {}",
                    out_.path_, key, static_cast<uint32_t>(elem));
    }
    if (count > remaining() / min_size(elem)) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: metadata '{}' is an array of {} {} that cannot fit in the {} bytes left",
                    out_.path_, key, count, gguf_type_name(elem), remaining());
    }
    if (size_t size = fixed_size(elem); size != 0) {
      pos_ += count * size;
      return ok_status();
    }
    for (uint64_t i = 0; i < count; ++i) {
      if (elem == GgufType::kString) {
        uint64_t length = 0;
        HS_TRY(read(length, key));
        if (length > remaining()) {
          return errorf(ErrorKind::kCorrupt,
                        "{}: metadata '{}' element {} has string length {} but only {} bytes are "
                        "left",
                        out_.path_, key, i, length, remaining());
        }
        pos_ += length;
      } else {
        uint32_t inner = 0;
        uint64_t inner_count = 0;
        HS_TRY(read(inner, key));
        HS_TRY(read(inner_count, key));
        HS_TRY(skip_array(static_cast<GgufType>(inner), inner_count, key, depth + 1));
      }
    }
    return ok_status();
  }

  Status parse_value(GgufValue& v, const std::string& key) {
    switch (v.type) {
      case GgufType::kU8: {
        uint8_t x = 0;
        HS_TRY(read(x, key));
        v.u = x;
        break;
      }
      case GgufType::kU16: {
        uint16_t x = 0;
        HS_TRY(read(x, key));
        v.u = x;
        break;
      }
      case GgufType::kU32: {
        uint32_t x = 0;
        HS_TRY(read(x, key));
        v.u = x;
        break;
      }
      case GgufType::kU64: HS_TRY(read(v.u, key)); break;
      case GgufType::kI8: {
        int8_t x = 0;
        HS_TRY(read(x, key));
        v.i = x;
        break;
      }
      case GgufType::kI16: {
        int16_t x = 0;
        HS_TRY(read(x, key));
        v.i = x;
        break;
      }
      case GgufType::kI32: {
        int32_t x = 0;
        HS_TRY(read(x, key));
        v.i = x;
        break;
      }
      case GgufType::kI64: HS_TRY(read(v.i, key)); break;
      case GgufType::kF32: {
        float x = 0;
        HS_TRY(read(x, key));
        v.f = x;
        break;
      }
      case GgufType::kF64: HS_TRY(read(v.f, key)); break;
      case GgufType::kBool: {
        uint8_t x = 0;
        HS_TRY(read(x, key));
        if (x > 1) {
          return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' is a bool with value {}",
                        out_.path_, key, x);
        }
        v.u = x;
        break;
      }
      case GgufType::kString: HS_TRY(read_string(v.s, key)); break;
      case GgufType::kArray: {
        uint32_t elem = 0;
        HS_TRY(read(elem, key));
        HS_TRY(read(v.count, key));
        v.elem_type = static_cast<GgufType>(elem);
        v.offset = pos_;
        HS_TRY(skip_array(v.elem_type, v.count, key, 1));
        break;
      }
      default:
        return errorf(ErrorKind::kCorrupt, "{}: metadata '{}' has unknown value type {}",
                      out_.path_, key, static_cast<uint32_t>(v.type));
    }
    return ok_status();
  }

  Status parse_kv(uint64_t index) {
    std::string key;
    HS_TRY(read_string(key, fmt::format("metadata key {}", index)));
    GgufValue value;
    uint32_t type = 0;
    HS_TRY(read(type, key));
    value.type = static_cast<GgufType>(type);
    HS_TRY(parse_value(value, key));
    if (!out_.metadata_index_.emplace(key, out_.metadata_.size()).second) {
      return errorf(ErrorKind::kCorrupt, "{}: metadata key '{}' appears twice", out_.path_, key);
    }
    out_.metadata_.emplace_back(std::move(key), std::move(value));
    return ok_status();
  }

  Status read_alignment() {
    const GgufValue* v = out_.find("general.alignment");
    if (v == nullptr) return ok_status();
    // Written as u32 by llama.cpp; any unsigned integer type holding a power of two is fine.
    const bool unsigned_int = v->type == GgufType::kU8 || v->type == GgufType::kU16 ||
                              v->type == GgufType::kU32 || v->type == GgufType::kU64;
    if (!unsigned_int) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: general.alignment is a {}, expected an unsigned integer", out_.path_,
                    gguf_type_name(v->type));
    }
    if (v->u == 0 || (v->u & (v->u - 1)) != 0 || v->u > (uint64_t{1} << 30)) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: general.alignment is {}, expected a power of two up to 2^30", out_.path_,
                    v->u);
    }
    out_.alignment_ = v->u;
    return ok_status();
  }

  Status parse_tensor_info(uint64_t index) {
    GgufTensorInfo info;
    HS_TRY(read_string(info.name, fmt::format("tensor name {}", index)));
    uint32_t n_dims = 0;
    HS_TRY(read(n_dims, info.name));
    if (n_dims > kMaxDims) {
      return errorf(ErrorKind::kCorrupt, "{}: tensor '{}' has {} dims, at most {} allowed",
                    out_.path_, info.name, n_dims, kMaxDims);
    }
    info.ne.resize(n_dims);
    uint64_t numel = 1;
    for (uint64_t& n : info.ne) {
      HS_TRY(read(n, info.name));
      if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel) ||
          numel > static_cast<uint64_t>(INT64_MAX)) {
        return errorf(ErrorKind::kCorrupt, "{}: tensor '{}' dims [{}] overflow 64 bits", out_.path_,
                      info.name, fmt::join(info.ne, ","));
      }
    }
    HS_TRY(read(info.type, info.name));
    HS_TRY(read(info.offset, info.name));
    const GgmlTypeTraits* traits = ggml_traits(info.type);
    if (traits == nullptr) {
      return errorf(ErrorKind::kCorrupt, "{}: tensor '{}' has unknown ggml type {}", out_.path_,
                    info.name, info.type);
    }
    const uint64_t row = n_dims == 0 ? 1 : info.ne[0];
    if (row % traits->block != 0) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: tensor '{}' of type {} has ne[0]={}, not a multiple of its block {}",
                    out_.path_, info.name, traits->name, row, traits->block);
    }
    if (__builtin_mul_overflow(numel / traits->block, uint64_t{traits->bytes}, &info.nbytes)) {
      return errorf(ErrorKind::kCorrupt, "{}: tensor '{}' byte size overflows 64 bits", out_.path_,
                    info.name);
    }
    if (!out_.tensor_index_.emplace(info.name, out_.tensors_.size()).second) {
      return errorf(ErrorKind::kCorrupt, "{}: tensor '{}' appears twice", out_.path_, info.name);
    }
    out_.tensors_.push_back(std::move(info));
    return ok_status();
  }

  Status check_tensor_bounds(const GgufTensorInfo& info) {
    if (info.offset % out_.alignment_ != 0) {
      return errorf(ErrorKind::kAlignment,
                    "{}: tensor '{}' offset {} is not a multiple of the alignment {}", out_.path_,
                    info.name, info.offset, out_.alignment_);
    }
    const uint64_t data_size =
        bytes_.size() > out_.data_offset_ ? bytes_.size() - out_.data_offset_ : 0;
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      return errorf(ErrorKind::kOutOfRange,
                    "{}: tensor '{}' bytes [{}, +{}) are outside the {}-byte data section at "
                    "file offset {}",
                    out_.path_, info.name, info.offset, info.nbytes, data_size, out_.data_offset_);
    }
    return ok_status();
  }

  GgufFile& out_;
  std::span<const std::byte> bytes_;
  size_t pos_ = 0;
};

Result<GgufFile> GgufFile::open(const std::string& path) {
  GgufFile file;
  file.path_ = path;
  HS_ASSIGN_OR_RETURN(file.file_, MappedFile::open(path));
  GgufParser parser(file, file.file_->bytes());
  HS_TRY(parser.parse());
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace hs::frontend

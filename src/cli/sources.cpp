// detect_source and load_source_tokenizer: a path -> its kind and its tokenizer.
#include "headsplit/cli/sources.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/support/buffer.h"
#include "headsplit/support/file.h"
#include "headsplit/tokenizer/llama2c.h"

namespace hs::cli {

namespace {

bool starts_with(const MappedFile& file, std::span<const uint8_t> magic) {
  const std::span<const std::byte> b = file.bytes();
  return b.size() >= magic.size() && std::memcmp(b.data(), magic.data(), magic.size()) == 0;
}

Error no_tokenizer(const std::string& path, std::string_view why) {
  return errorf(ErrorKind::kNotFound, "{}: holds no tokenizer ({})", path, why);
}

}  // namespace

// Text for one line of output: printable ASCII and valid UTF-8 as is, \n \t \r \\ \' escaped,
// other bytes as \xNN.
std::string escape_text(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = n > 0 && i + n <= s.size();
    for (size_t k = 1; valid && k < n; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (!valid) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string_view source_kind_name(SourceKind kind) {
  switch (kind) {
    case SourceKind::kArtifact: return "headsplit artifact (.hsa)";
    case SourceKind::kGguf: return "GGUF";
    case SourceKind::kHuggingFace: return "Hugging Face folder";
    case SourceKind::kTokenizerJson: return "Hugging Face tokenizer.json";
    case SourceKind::kLlama2cTokenizer: return "llama2.c tokenizer.bin";
    case SourceKind::kLlama2cCheckpoint: return "llama2.c checkpoint";
  }
  return "unknown";
}

std::optional<int64_t> llama2c_tokenizer_pieces(std::span<const std::byte> bytes) {
  size_t offset = 4;  // int32 max_token_length
  int64_t pieces = 0;
  if (bytes.size() < offset + 8) return std::nullopt;
  while (offset < bytes.size()) {
    if (bytes.size() - offset < 8) return std::nullopt;
    int32_t length = 0;
    std::memcpy(&length, bytes.data() + offset + 4, 4);
    if (length < 0 || static_cast<size_t>(length) > bytes.size() - offset - 8) return std::nullopt;
    offset += 8 + static_cast<size_t>(length);
    ++pieces;
  }
  return pieces;
}

Result<SourceKind> detect_source(const std::string& path) {
  if (is_directory(path)) return SourceKind::kHuggingFace;
  if (!file_exists(path)) {
    return errorf(ErrorKind::kNotFound, "{}: no such file or directory", path);
  }
  if (std::filesystem::path(path).filename() == "tokenizer.json") return SourceKind::kTokenizerJson;
  if (std::filesystem::path(path).extension() == ".json") {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: a JSON file other than tokenizer.json (give the Hugging Face folder, or its "
                  "tokenizer.json)",
                  path);
  }
  HS_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  if (starts_with(*file, artifact::kMagic)) return SourceKind::kArtifact;
  static constexpr uint8_t kGgufMagic[] = {'G', 'G', 'U', 'F'};
  if (starts_with(*file, kGgufMagic) || path.ends_with(".gguf")) return SourceKind::kGguf;
  if (llama2c_tokenizer_pieces(file->bytes())) return SourceKind::kLlama2cTokenizer;
  return SourceKind::kLlama2cCheckpoint;
}

Result<tokenizer::TokenizerData> load_source_tokenizer(const std::string& path,
                                                       const std::string& tokenizer_path) {
  HS_ASSIGN_OR_RETURN(SourceKind kind, detect_source(path));
  switch (kind) {
    case SourceKind::kArtifact: {
      HS_ASSIGN_OR_RETURN(artifact::LoadedArtifact a,
                          artifact::load_artifact(path, {.residence = artifact::Residence::kMapped}));
      return a.program().tokenizer;
    }
    case SourceKind::kGguf: {
      HS_ASSIGN_OR_RETURN(frontend::GgufFile f, frontend::GgufFile::open(path));
      if (f.find("tokenizer.ggml.model") == nullptr) {
        return no_tokenizer(path, "no tokenizer.ggml.model metadata");
      }
      return frontend::load_gguf_tokenizer(f);
    }
    case SourceKind::kHuggingFace:
      if (!file_exists((std::filesystem::path(path) / "tokenizer.json").string())) {
        return no_tokenizer(path, "the folder has no tokenizer.json");
      }
      return frontend::load_hf_tokenizer(path);
    case SourceKind::kTokenizerJson: {
      std::string dir = std::filesystem::path(path).parent_path().string();
      return frontend::load_hf_tokenizer(dir.empty() ? "." : dir);
    }
    case SourceKind::kLlama2cTokenizer: {
      HS_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
      const std::optional<int64_t> pieces = llama2c_tokenizer_pieces(file->bytes());
      if (!pieces) return no_tokenizer(path, "not a llama2.c tokenizer.bin");
      return tokenizer::load_llama2c_tokenizer(path, *pieces);
    }
    case SourceKind::kLlama2cCheckpoint: break;
  }
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(path, tokenizer_path));
  if (!model.tokenizer) {
    return no_tokenizer(path, "no tokenizer.bin or tok<V>.bin next to the checkpoint; pass -t");
  }
  return *model.tokenizer;
}

}  // namespace hs::cli

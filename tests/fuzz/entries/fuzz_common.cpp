// Shared by the fuzz entry points: the scratch folder and exercising a loaded tokenizer.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "fuzz_entries.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::fuzz {

void exercise_tokenizer(const tokenizer::TokenizerData& data) {
  auto tok = tokenizer::Tokenizer::create(data);
  if (!tok.ok()) return;
  std::vector<int32_t> ids = (*tok)->encode("Once upon a time, <s> héllo 123!", true, true);
  int32_t prev = -1;
  for (int32_t id : ids) {
    (void)(*tok)->decode_token(prev, id);
    prev = id;
  }
}

const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::filesystem::path d = base / ("hs-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d, ec);
    return d.string();
  }();
  return dir;
}

std::string write_scratch(std::string_view name, std::span<const uint8_t> bytes) {
  const std::string path = scratch_dir() + "/" + std::string(name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f != nullptr) {
    if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  return path;
}

}  // namespace hs::fuzz

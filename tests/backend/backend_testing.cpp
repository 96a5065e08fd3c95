// The backend test helpers (backend_testing.h).
#include "backend/backend_testing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "headsplit/frontend/loader.h"
#include "testing/testing.h"

namespace hs::backend::testing {

frontend::LlamaModel random_stories(uint64_t seed) {
  frontend::LlamaConfig config = frontend::named_config("stories260k").value();
  frontend::LlamaModel model = frontend::make_random_llama(config, seed);
  tokenizer::TokenizerData t;
  t.kind = tokenizer::TokenizerKind::kLlama2c;
  t.pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) t.pieces.push_back(fmt::format("<0x{:02X}>", b));
  for (int i = 0; static_cast<int64_t>(t.pieces.size()) < config.vocab_size; ++i) {
    t.pieces.push_back(i < 95 ? std::string(1, static_cast<char>(' ' + i)) : fmt::format("w{}", i));
  }
  for (size_t i = 0; i < t.pieces.size(); ++i) t.scores.push_back(-static_cast<float>(i));
  t.bos_id = 1;
  t.eos_id = 2;
  t.unk_id = 0;
  t.max_token_length = 6;
  model.tokenizer = std::move(t);
  return model;
}

frontend::LlamaModel load_stories() {
  auto model = frontend::load_model(hs::testing::shared_file("models/stories260K/stories260K.bin"),
                                    hs::testing::shared_file("models/stories260K/tok512.bin"));
  EXPECT_TRUE(model.ok()) << model.error().message();
  return std::move(model).value();
}

std::string calibration_file(int lines) {
  std::ifstream in(hs::testing::shared_file("data/tinystories/valid-sample.txt"));
  std::string path = hs::testing::temp_dir() + fmt::format("/calib{}.txt", lines);
  std::ofstream out(path);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
  return path;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

}  // namespace hs::backend::testing

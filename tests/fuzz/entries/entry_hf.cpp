// Fuzz entry point(s): safetensors and Hugging Face folders (see fuzz_entries.h).
#include <cstdio>
#include <filesystem>

#include "fuzz_entries.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/safetensors.h"

namespace hs::fuzz {

int safetensors(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.safetensors", {data, size});
  auto file = frontend::SafetensorsFile::open(path);
  if (!file.ok()) return 0;
  for (const auto& t : file->tensors()) (void)file->load(t.name);
  return 0;
}

int hf_config(const uint8_t* data, size_t size) {
  (void)frontend::load_hf_config(write_scratch("config.json", {data, size}));
  return 0;
}

namespace {

// A tiny valid config.json (D 8, H 2, L 1, F 16, V 16) for the index and tokenizer targets.
constexpr std::string_view kTinyConfig =
    R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":8,)"
    R"("intermediate_size":16,"num_attention_heads":2,"num_key_value_heads":2,)"
    R"("num_hidden_layers":1,"vocab_size":16,"max_position_embeddings":32,)"
    R"("rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true})";

std::string fresh_folder(std::string_view name) {
  const std::string dir = scratch_dir() + "/" + std::string(name);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  return dir;
}

void put(const std::string& path, std::string_view text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}
}  // namespace

int hf_index(const uint8_t* data, size_t size) {
  const std::string dir = fresh_folder("hf_index");
  put(dir + "/config.json", kTinyConfig);
  put(dir + "/model.safetensors.index.json", as_text(data, size));
  (void)frontend::load_hf_model(dir);
  return 0;
}

int hf_tokenizer(const uint8_t* data, size_t size) {
  // tokenizer.json, then (after a NUL byte, when present) tokenizer_config.json.
  std::string_view text = as_text(data, size);
  const size_t nul = text.find('\0');
  const std::string dir = fresh_folder("hf_tokenizer");
  put(dir + "/tokenizer.json", text.substr(0, nul));
  if (nul != std::string_view::npos) put(dir + "/tokenizer_config.json", text.substr(nul + 1));
  auto tok = frontend::load_hf_tokenizer(dir);
  if (tok.ok()) exercise_tokenizer(*tok);
  return 0;
}

}  // namespace hs::fuzz

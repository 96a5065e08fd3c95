// Fuzz entry points (see fuzz_entries.h): bytes -> a private file -> the public reader.
#include "fuzz_entries.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/ir/text.h"
#include "headsplit/ir/verifier.h"
#include "headsplit/runtime/executor.h"
#include "headsplit/support/file.h"
#include "headsplit/tokenizer/chat.h"
#include "headsplit/tokenizer/llama2c.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::fuzz {

namespace {

std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Uses a loaded tokenizer: builds it and encodes/decodes a fixed text (catches data that
// passes the readers' checks but breaks the tokenizer).
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

}  // namespace

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

void fix_artifact_checksum(uint8_t* data, size_t size) {
  if (size < artifact::kHeaderSize) return;
  const uint64_t file_size = size;
  std::memcpy(data + artifact::kFileSizeOffset, &file_size, 8);  // little-endian host
  const uint64_t sum = artifact::compute_checksum(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  std::memcpy(data + artifact::kChecksumOffset, &sum, 8);
}

int gguf(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.gguf", {data, size});
  auto file = frontend::GgufFile::open(path);
  if (!file.ok()) return 0;
  for (const auto& [key, value] : file->metadata()) {
    (void)file->get_string(key);
    (void)file->get_uint(key);
    (void)file->get_float(key);
    (void)file->get_string_array(key);
    (void)file->get_int_array(key);
    (void)file->get_f32_array(key);
  }
  for (const auto& t : file->tensors()) (void)file->load_tensor(t.name);
  auto tok = frontend::load_gguf_tokenizer(*file);
  if (tok.ok()) exercise_tokenizer(*tok);
  (void)frontend::load_gguf_model(path);
  return 0;
}

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

int llama2c(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.bin", {data, size});
  (void)frontend::load_llama2c_model(path, "");
  return 0;
}

int llama2c_tokenizer(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first 2 bytes choose the vocabulary size (the checkpoint's V), the rest is the file.
  const int64_t vocab = (int64_t{data[0]} | (int64_t{data[1]} << 8)) % 4097;
  const std::string path = write_scratch("tokenizer.bin", {data + 2, size - 2});
  auto tok = tokenizer::load_llama2c_tokenizer(path, vocab);
  if (tok.ok()) exercise_tokenizer(*tok);
  return 0;
}

int artifact(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.hsa", {data, size});
  auto loaded = artifact::load_artifact(path);
  if (!loaded.ok()) return 0;
  auto shared = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded).value());
  for (const artifact::GraphDesc& g : shared->program().graphs) {
    (void)runtime::GraphExecutor::create(shared, g.name);
  }
  exercise_tokenizer(shared->program().tokenizer);
  return 0;
}

int ir_text(const uint8_t* data, size_t size) {
  auto graph = ir::parse_graph(as_text(data, size), "fuzz");
  if (!graph.ok()) return 0;
  if (!ir::verify(*graph).ok()) return 0;
  const std::string printed = ir::print_graph(*graph);
  auto again = ir::parse_graph(printed, "printed");
  if (!again.ok() || ir::print_graph(*again) != printed) {
    std::fprintf(stderr, "ir text does not round-trip:\n%s\n", printed.c_str());
    __builtin_trap();
  }
  return 0;
}

int chat_template(const uint8_t* data, size_t size) {
  std::string_view text = as_text(data, size);
  (void)tokenizer::detect_chat_template(text);
  (void)tokenizer::parse_chat_template_name(text);
  for (auto t : {tokenizer::ChatTemplate::kChatMl, tokenizer::ChatTemplate::kLlama3}) {
    (void)tokenizer::apply_chat_template(t, text, text.substr(0, text.size() / 2));
    (void)tokenizer::chat_prefix(t, text);
    (void)tokenizer::chat_user_turn(t, text);
  }
  // Rendered prompts encoded with special tokens, as generate --chat does.
  static const auto tok = [] {
    tokenizer::TokenizerData d;
    d.kind = tokenizer::TokenizerKind::kByteLevelBpe;
    d.pre_tokenizer = "gpt2";
    for (int b = 0; b < 256; ++b) d.pieces.push_back(std::string(1, static_cast<char>(b)));
    for (const char* s : {"<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
                          "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) {
      d.pieces.push_back(s);
    }
    d.types.assign(d.pieces.size(), tokenizer::TokenType::kNormal);
    for (size_t i = 256; i < d.pieces.size(); ++i) d.types[i] = tokenizer::TokenType::kControl;
    d.chat_template = "<|im_start|>";
    return tokenizer::Tokenizer::create(d);
  }();
  if (tok.ok()) {
    (void)tokenizer::encode_prompt(**tok, text, {.chat = true});
    (void)tokenizer::encode_prompt(**tok, text, {.chat = true, .chat_template = "llama3"});
  }
  return 0;
}

std::span<const Target> targets() {
  static const Target all[] = {
      {"gguf", gguf},
      {"safetensors", safetensors},
      {"hf_config", hf_config},
      {"hf_index", hf_index},
      {"hf_tokenizer", hf_tokenizer},
      {"llama2c", llama2c},
      {"llama2c_tokenizer", llama2c_tokenizer},
      {"artifact", artifact},
      {"ir_text", ir_text},
      {"chat_template", chat_template},
  };
  return all;
}

}  // namespace hs::fuzz

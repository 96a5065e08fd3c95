// Seed corpora for the fuzz targets, written into a build folder: small generated files of
// every format plus the real small models of the shared folder (never copied into the repo).
#include "fuzz_seeds.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "artifact/artifact_testing.h"
#include "headsplit/support/file.h"

namespace hs::fuzz {

namespace {

namespace fs = std::filesystem;

void put(const fs::path& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::string slurp(const std::string& path, size_t limit = SIZE_MAX) {
  auto text = read_text_file(path);
  if (!text.ok()) return {};
  return text->substr(0, std::min(limit, text->size()));
}

std::string le32(int32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

// A tiny llama2.c checkpoint: D 8, F 16, L 1, H 2, Hkv 2, V 16, seq 8, shared classifier.
std::string tiny_llama2c() {
  const int32_t d = 8, f = 16, l = 1, h = 2, kv = 2, v = 16, seq = 8, dh = d / h;
  std::string s;
  for (int32_t x : {d, f, l, h, kv, v, seq}) s += le32(x);
  const int64_t floats = int64_t{v} * d + l * d + l * d * d + 2 * l * d * kv * dh + l * d * d +
                         l * d + 3 * l * d * f + d + 2 * int64_t{seq} * dh / 2;
  for (int64_t i = 0; i < floats; ++i) {
    float x = static_cast<float>((i * 37) % 17) / 17.0f - 0.5f;
    s.append(reinterpret_cast<const char*>(&x), 4);
  }
  return s;
}

std::string tiny_safetensors() {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("c":{"dtype":"BF16","shape":[1],"data_offsets":[22,24]}})";
  std::string s(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  s += header;
  for (int i = 0; i < 24; ++i) s += static_cast<char>(i * 7);
  return s;
}

constexpr std::string_view kTokenizerJson =
    R"({"version":"1.0","added_tokens":[{"id":6,"content":"<|im_start|>","special":true},)"
    R"({"id":7,"content":"<|im_end|>","special":true}],"normalizer":null,)"
    R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,)"
    R"("use_regex":true},"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","dropout":null,)"
    R"("unk_token":null,"vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4,"\u0120":5,)"
    R"("<|im_start|>":6,"<|im_end|>":7},"merges":["a b","ab c"]}})";
constexpr std::string_view kTokenizerConfig =
    R"({"add_bos_token":false,"bos_token":"<|im_start|>","eos_token":{"content":"<|im_end|>"},)"
    R"("chat_template":"{% for m in messages %}<|im_start|>{{m.role}}{% endfor %}"})";

constexpr std::string_view kConfig =
    R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":8,)"
    R"("intermediate_size":16,"num_attention_heads":2,"num_key_value_heads":1,)"
    R"("num_hidden_layers":1,"vocab_size":16,"max_position_embeddings":32,"head_dim":4,)"
    R"("rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":false,)"
    R"("torch_dtype":"bfloat16","rope_scaling":{"rope_type":"llama3","factor":8.0,)"
    R"("low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":16}})";

constexpr std::string_view kIndex =
    R"({"metadata":{"total_size":1024},"weight_map":{"model.embed_tokens.weight":)"
    R"("model-00001-of-00002.safetensors","lm_head.weight":"model-00002-of-00002.safetensors",)"
    R"("model.norm.weight":"model-00001-of-00002.safetensors"}})";

}  // namespace

int write_seeds(const std::string& out_dir, const std::string& shared_dir,
                const std::string& source_dir) {
  int count = 0;
  auto seed = [&](std::string_view target, std::string_view name, std::string_view bytes) {
    if (bytes.empty()) return;
    const fs::path dir = fs::path(out_dir) / target;
    std::error_code ec;
    fs::create_directories(dir, ec);
    put(dir / name, bytes);
    ++count;
  };
  const std::string models = shared_dir + "/models/stories260K/";
  seed("gguf", "stories260K.gguf", slurp(models + "stories260K.gguf"));
  seed("gguf", "stories260K-head.gguf", slurp(models + "stories260K.gguf", 16384));
  seed("gguf", "gpt2-vocab-head.gguf",
       slurp(shared_dir + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf", 65536));
  seed("safetensors", "tiny.safetensors", tiny_safetensors());
  seed("hf_config", "llama3.json", kConfig);
  seed("hf_config", "nested.json", R"({"hidden_size":8,"x":[[[{"a":[1,2,{"b":null}]}]]]})");
  seed("hf_index", "index.json", kIndex);
  seed("hf_tokenizer", "bpe.json", kTokenizerJson);
  seed("hf_tokenizer", "bpe-with-config.json",
       std::string(kTokenizerJson) + std::string(1, '\0') + std::string(kTokenizerConfig));
  seed("llama2c", "tiny.bin", tiny_llama2c());
  seed("llama2c", "stories260K.bin", slurp(models + "stories260K.bin"));
  const std::string tok = slurp(models + "tok512.bin");
  if (!tok.empty()) seed("llama2c_tokenizer", "tok512.bin", std::string("\x00\x02", 2) + tok);
  {
    const std::string dir = out_dir + "/.artifact-tmp";
    std::error_code ec;
    fs::create_directories(dir, ec);
    // Stored (mutations reach the FlatBuffers verifier and the checks) and zlib (the
    // writer's default: mutations reach the envelope checks and the inflater).
    const std::string path = artifact::testing::write_sample(dir, "sample.hsa");
    seed("artifact", "sample.hsa", slurp(path));
    const std::string zlib =
        artifact::testing::write_sample(dir, "sample-zlib.hsa", artifact::ProgramCodec::kZlib);
    seed("artifact", "sample-zlib.hsa", slurp(zlib));
    fs::remove_all(dir, ec);
  }
  for (const char* golden : {"canonicalize.txt", "dead_code.txt", "fold_constants.txt",
                             "slicing_linear.txt", "split_heads_block_quantized.txt"}) {
    seed("ir_text", golden, slurp(source_dir + "/tests/golden/" + golden));
  }
  seed("chat_template", "chatml.jinja",
       "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] "
       "}}<|im_end|>\n{% endfor %}");
  seed("chat_template", "llama3.jinja",
       "{{ bos_token }}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n<|eot_id|>");
  seed("chat_template", "plain.txt", "Hello <|im_end|> there, \xc3\xa9\xff");
  return count;
}

}  // namespace hs::fuzz

// The sample program and the file-patching helpers of artifact_testing.h.
#include "artifact/artifact_testing.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "headsplit/artifact/int4.h"

namespace hs::artifact::testing {
namespace {

WeightDesc weight(std::string name, ElementType type, std::vector<int64_t> shape, Quant quant,
                  WeightLayout layout = WeightLayout::kPlain) {
  WeightDesc w;
  w.name = std::move(name);
  w.dtype = type;
  w.shape = std::move(shape);
  w.quant = std::move(quant);
  w.layout = layout;
  return w;
}

TensorDesc tensor(std::string name, ElementType type, std::vector<int64_t> shape, TensorRole role,
                  int64_t arena_offset = -1) {
  TensorDesc t;
  t.name = std::move(name);
  t.dtype = type;
  t.shape = std::move(shape);
  t.role = role;
  t.arena_offset = arena_offset;
  return t;
}

TensorDesc constant(const Program& p, int index) {
  const WeightDesc& w = p.weights[index];
  TensorDesc t = tensor(w.name, w.dtype, w.shape, TensorRole::kConstant);
  t.quant = w.quant;
  t.weight = index;
  return t;
}

Quant u16_per_tensor(float scale, int32_t zero_point) {
  return Quant{QuantKind::kPerTensor, 16, 0, 65535, 0, 1, 0, {scale}, {zero_point}};
}

// tokens -> gather -> x -> rms_norm -> xn -> linear(wq) -> q -> softmax -> p -> quantize ->
// logits; the prefill graph also carries the i4 weight as a (unused) constant.
GraphDesc sample_graph(const Program& p, std::string name, int32_t t, bool with_w1) {
  GraphDesc g;
  g.name = std::move(name);
  g.ar_len = t;
  // One arena slot per activation: an f32 [1,T,4] (<= 32 bytes) at a 64-byte aligned offset.
  const int64_t act = kArenaAlignment;
  g.tensors = {
      tensor("tokens", ElementType::kI32, {1, t}, TensorRole::kInput),             // 0
      constant(p, 0),                                                              // 1
      constant(p, 3),                                                              // 2
      constant(p, 1),                                                              // 3
      tensor("x", ElementType::kF32, {1, t, 4}, TensorRole::kIntermediate, 0),     // 4
      tensor("xn", ElementType::kF32, {1, t, 4}, TensorRole::kIntermediate, act),  // 5
      tensor("q", ElementType::kF32, {1, t, 4}, TensorRole::kIntermediate, 0),     // 6
      tensor("p", ElementType::kF32, {1, t, 4}, TensorRole::kIntermediate, act),   // 7
      tensor("logits", ElementType::kU16, {1, t, 4}, TensorRole::kOutput),         // 8
  };
  g.tensors[8].quant = u16_per_tensor(1.0f / 65535.0f, 0);
  if (with_w1) g.tensors.push_back(constant(p, 2));
  g.nodes = {
      {OpCode::kGather, {1, 0}, {4}, {}},
      {OpCode::kRmsNorm, {4, 2}, {5}, {{"eps", 1e-5}}},
      {OpCode::kLinear, {5, 3}, {6}, {{"note", std::string("no bias")}}},
      {OpCode::kSoftmax,
       {6},
       {7},
       {{"axis", int64_t{-1}}, {"perm", std::vector<int64_t>{0, 2, 1}}}},
      {OpCode::kQuantize, {7}, {8}, {}},
  };
  g.inputs = {0};
  g.outputs = {8};
  g.arena_bytes = 2 * act;
  return g;
}

}  // namespace

Program sample_program() {
  Program p;
  ModelMetadata& m = p.metadata;
  m.model_name = "sample";
  m.model_source = "artifact_testing.cpp";
  m.dim = 4;
  m.n_layers = 1;
  m.n_heads = 2;
  m.n_kv_heads = 1;
  m.head_dim = 2;
  m.hidden_dim = 9;
  m.vocab_size = 5;
  m.context_len = 16;
  m.rope_theta = 500000.0;
  m.rms_eps = 1e-6;
  m.rope_scaling_type = "llama3";
  m.rope_scaling_factor = 32.0;
  m.rope_low_freq_factor = 1.5;
  m.rope_high_freq_factor = 4.25;
  m.rope_original_max_positions = 8192;
  m.ar_lengths = {2, 1};
  m.quant_scheme = "16a4w_block";
  m.kv_cache_bits = 8;
  m.mask_bits = 16;
  m.logits_bits = 16;
  m.split_applied = true;
  m.r3 = true;
  m.masked_softmax = true;
  m.producer = "headsplit test";
  m.extra = {{"calibration", "tiny.txt"}, {"a key", "a value"}};

  tokenizer::TokenizerData& t = p.tokenizer;
  t.kind = tokenizer::TokenizerKind::kSpm;
  t.pieces = {"<unk>", "<s>", std::string("\0", 1), "\xff\xfe", ""};  // raw bytes and empty
  t.scores = {0.0f, -1.5f, 2.25f, -0.0f, 1e-3f};
  t.types = {tokenizer::TokenType::kUnknown, tokenizer::TokenType::kControl,
             tokenizer::TokenType::kByte, tokenizer::TokenType::kNormal,
             tokenizer::TokenType::kUserDefined};
  t.merges = {"a b", "\xc4\xa0 t"};
  t.pre_tokenizer = "llama3";
  t.bos_id = 1;
  t.eos_id = 4;
  t.extra_eos_ids = {3, 2};
  t.unk_id = 0;
  t.pad_id = 2;
  t.add_bos = false;
  t.add_space_prefix = false;
  t.max_token_length = 7;
  t.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";

  p.weights = {
      weight("tok_embeddings", ElementType::kF32, {5, 4}, {}),
      weight("layers.0.attention.wq", ElementType::kI8, {4, 4},
             Quant{QuantKind::kPerAxis,
                   8,
                   -127,
                   127,
                   0,
                   1,
                   0,
                   {0.5f, 0.25f, 0.125f, 1.0f},
                   {0, 0, 0, 0}}),
      weight("layers.0.feed_forward.w1", ElementType::kI4, {3, 9},
             Quant{QuantKind::kPerBlock,
                   4,
                   -8,
                   7,
                   0,
                   1,
                   4,
                   {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f},
                   {0, 0, 0, 0, 0, 0, 0, 0, 0}},
             WeightLayout::kInt4Packed),
      weight("norm", ElementType::kU16, {4}, u16_per_tensor(0.001f, 32768)),
  };
  p.graphs = {sample_graph(p, "prefill", 2, true), sample_graph(p, "decode", 1, false)};
  return p;
}

std::vector<std::vector<std::byte>> sample_weight_data(const Program& program, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::byte>> data;
  for (const WeightDesc& w : program.weights) {
    // Broken descriptions (the check tests damage programs) get no bytes.
    if (!opset::checked_num_elements(w.shape, w.name).ok()) {
      data.emplace_back();
      continue;
    }
    if (w.layout == WeightLayout::kInt4Packed) {
      std::vector<int8_t> values(static_cast<size_t>(opset::num_elements(w.shape)));
      for (int8_t& v : values) v = static_cast<int8_t>(static_cast<int>(rng() % 16) - 8);
      data.push_back(pack_int4(values, int4_rows(w.shape), w.name).value());
      continue;
    }
    std::vector<std::byte> bytes(weight_storage_bytes(w).value());
    for (std::byte& b : bytes) b = static_cast<std::byte>(rng());
    data.push_back(std::move(bytes));
  }
  return data;
}

WeightSource memory_source(const std::vector<std::vector<std::byte>>& data) {
  return [&data](int index, const WeightDesc&) -> Result<std::span<const std::byte>> {
    return std::span<const std::byte>(data.at(static_cast<size_t>(index)));
  };
}

std::string write_sample(const std::string& dir, const std::string& name, ProgramCodec codec) {
  static const Program program = sample_program();
  static const std::vector<std::vector<std::byte>> data = sample_weight_data(program, 1);
  std::string path = dir + "/" + name;
  auto written = write_artifact(path, program, memory_source(data), {.program_codec = codec});
  EXPECT_TRUE(written.ok()) << written.error().message();
  return path;
}

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void write_bytes(const std::string& path, std::span<const std::byte> bytes) {
  // Remove first: ext4 flushes a file truncated and rewritten in place (auto_da_alloc), which
  // costs milliseconds per write in the corruption loops.
  std::filesystem::remove(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void put_u16(std::vector<std::byte>& file, size_t offset, uint16_t value) {
  std::memcpy(file.data() + offset, &value, sizeof(value));
}

void put_u64(std::vector<std::byte>& file, size_t offset, uint64_t value) {
  std::memcpy(file.data() + offset, &value, sizeof(value));
}

uint64_t get_u64(std::span<const std::byte> file, size_t offset) {
  uint64_t value = 0;
  std::memcpy(&value, file.data() + offset, sizeof(value));
  return value;
}

void fix_checksum(std::vector<std::byte>& file) {
  put_u64(file, kChecksumOffset, compute_checksum(file));
}

std::vector<std::byte> assemble_file(std::span<const std::byte> program_bytes,
                                     std::span<const std::byte> data_bytes, ProgramCodec codec) {
  return assemble_section(pack_program(program_bytes, codec), data_bytes);
}

std::vector<std::byte> assemble_section(std::span<const std::byte> program_bytes,
                                        std::span<const std::byte> data_bytes) {
  FileHeader h;
  h.program_offset = kHeaderSize;
  h.program_size = program_bytes.size();
  h.data_offset = (kHeaderSize + program_bytes.size() + 63) / 64 * 64;
  h.data_size = data_bytes.size();
  h.file_size = h.data_offset + h.data_size;
  std::vector<std::byte> file(h.file_size);
  auto header = encode_header(h);
  std::memcpy(file.data(), header.data(), header.size());
  std::memcpy(file.data() + h.program_offset, program_bytes.data(), program_bytes.size());
  if (!data_bytes.empty()) {
    std::memcpy(file.data() + h.data_offset, data_bytes.data(), data_bytes.size());
  }
  fix_checksum(file);
  return file;
}

std::vector<std::byte> data_section(const Program& program_with_offsets,
                                    const std::vector<std::vector<std::byte>>& data) {
  std::vector<std::byte> section;
  for (size_t i = 0; i < data.size(); ++i) {
    const WeightDesc& w = program_with_offsets.weights[i];
    section.resize(std::max<size_t>(section.size(), w.offset + data[i].size()));
    std::memcpy(section.data() + w.offset, data[i].data(), data[i].size());
    if (w.params_size > 0) {  // the scales, then the zero points unless all zero
      const size_t n = w.quant.scales.size();
      section.resize(std::max<size_t>(section.size(), w.params_offset + w.params_size));
      std::memcpy(section.data() + w.params_offset, w.quant.scales.data(), 4 * n);
      if (w.params_size == 8 * n) {
        std::memcpy(section.data() + w.params_offset + 4 * n, w.quant.zero_points.data(), 4 * n);
      }
    }
  }
  return section;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace hs::artifact::testing

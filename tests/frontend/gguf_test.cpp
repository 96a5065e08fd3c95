// GGUF reader: the real stories260K.gguf against the llama2.c .bin, the vocab-only tokenizer
// files, every metadata type, dequantization on hand-built files, and hostile files.
#include "headsplit/frontend/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "headsplit/frontend/llama2c.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;

// Builds GGUF bytes field by field (little endian), so tests can write valid and hostile files.
class GgufBytes {
 public:
  GgufBytes& u8(uint8_t v) { return put(v); }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& str(std::string_view s) {
    u64(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes.insert(bytes.end(), p, p + s.size());
    return *this;
  }
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  template <typename T>
  GgufBytes& kv(std::string_view key, GgufType type, T value) {
    str(key).u32(static_cast<uint32_t>(type));
    return put(value);
  }
  GgufBytes& kv_string(std::string_view key, std::string_view value) {
    return str(key).u32(static_cast<uint32_t>(GgufType::kString)).str(value);
  }
  GgufBytes& kv_strings(std::string_view key, const std::vector<std::string>& values) {
    str(key).u32(static_cast<uint32_t>(GgufType::kArray)).u32(8).u64(values.size());
    for (const auto& v : values) str(v);
    return *this;
  }
  GgufBytes& tensor_info(std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                         uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
  GgufBytes& pad(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(std::byte{0});
    return *this;
  }
  template <typename T>
  GgufBytes& put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  std::string write(const std::string& name) const {
    const std::string path = testing::temp_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::vector<std::byte> bytes;
};

std::string shared(const std::string& rel) { return testing::shared_file(rel); }

TEST(Gguf, Stories260KEqualsTheLlama2cCheckpoint) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel g,
                          load_gguf_model(shared("models/stories260K/stories260K.gguf")));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel b,
                          load_llama2c_model(shared("models/stories260K/stories260K.bin"), ""));
  const LlamaConfig& gc = g.config;
  const LlamaConfig& bc = b.config;
  EXPECT_EQ(gc.dim, bc.dim);
  EXPECT_EQ(gc.hidden_dim, bc.hidden_dim);
  EXPECT_EQ(gc.n_layers, bc.n_layers);
  EXPECT_EQ(gc.n_heads, bc.n_heads);
  EXPECT_EQ(gc.n_kv_heads, bc.n_kv_heads);
  EXPECT_EQ(gc.head_dim, bc.head_dim);
  EXPECT_EQ(gc.vocab_size, bc.vocab_size);
  EXPECT_EQ(gc.rms_eps, bc.rms_eps);  // f32 1e-5 read as the decimal 1e-5
  EXPECT_EQ(gc.rope_theta, bc.rope_theta);
  EXPECT_EQ(gc.tied_embeddings, bc.tied_embeddings);  // output.weight == token_embd.weight
  EXPECT_EQ(gc.attention_bias, bc.attention_bias);
  EXPECT_FALSE(gc.rope_scaling.has_value());
  // The converter wrote its own default context (llama.context_length = 128), not seq_len.
  EXPECT_EQ(gc.max_seq_len, 128);
  EXPECT_EQ(bc.max_seq_len, 512);
  std::vector<NamedWeight> gw = named_weights(g), bw = named_weights(b);
  ASSERT_EQ(gw.size(), bw.size());
  for (size_t i = 0; i < gw.size(); ++i) {
    EXPECT_TRUE(weights_bit_equal(*gw[i].weight, *bw[i].weight)) << gw[i].name;
  }
  ASSERT_TRUE(g.tokenizer.has_value());
  EXPECT_EQ(g.tokenizer->kind, tokenizer::TokenizerKind::kSpm);
  EXPECT_EQ(g.tokenizer->pieces.size(), 512u);
  EXPECT_EQ(g.tokenizer->pieces[1], "<s>");
  EXPECT_EQ(g.tokenizer->bos_id, 1);
  EXPECT_EQ(g.tokenizer->eos_id, 2);
  EXPECT_EQ(g.tokenizer->unk_id, 0);
  EXPECT_EQ(g.tokenizer->pad_id, -1);  // stored as 0xffffffff
  EXPECT_EQ(g.tokenizer->types[3], tokenizer::TokenType::kByte);
}

TEST(Gguf, VocabOnlyTokenizers) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(
      tokenizer::TokenizerData spm,
      load_gguf_tokenizer(shared("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")));
  EXPECT_EQ(spm.kind, tokenizer::TokenizerKind::kSpm);
  EXPECT_EQ(spm.pieces.size(), 32000u);
  EXPECT_EQ(spm.scores.size(), 32000u);
  EXPECT_EQ(spm.types.size(), 32000u);
  EXPECT_EQ(spm.pieces[0], "<unk>");
  EXPECT_EQ(spm.types[0], tokenizer::TokenType::kUnknown);
  EXPECT_EQ(spm.bos_id, 1);
  EXPECT_EQ(spm.eos_id, 2);
  EXPECT_TRUE(spm.add_bos);
  EXPECT_TRUE(spm.merges.empty());
  EXPECT_EQ(spm.pre_tokenizer, "default");

  HS_ASSERT_OK_AND_ASSIGN(tokenizer::TokenizerData bpe,
                          load_gguf_tokenizer(shared("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")));
  EXPECT_EQ(bpe.kind, tokenizer::TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(bpe.pieces.size(), 50257u);
  EXPECT_EQ(bpe.merges.size(), 50000u);
  EXPECT_EQ(bpe.merges[0], "\xc4\xa0 t");  // "Ġ t"
  EXPECT_EQ(bpe.pieces[0], "!");
  EXPECT_EQ(bpe.pre_tokenizer, "gpt-2");
  EXPECT_EQ(bpe.bos_id, 50256);
  EXPECT_EQ(bpe.eos_id, 50256);
  EXPECT_TRUE(bpe.scores.empty());
  EXPECT_FALSE(bpe.add_bos);

  auto arch = load_gguf_model(shared("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf"));
  EXPECT_EQ(arch.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(arch.error().message(), HasSubstr("architecture 'gpt2'"));
  auto no_weights = load_gguf_model(shared("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"));
  EXPECT_EQ(no_weights.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(no_weights.error().message(), HasSubstr("token_embd.weight"));
}

TEST(Gguf, EveryMetadataType) {
  GgufBytes b;
  b.header(0, 15);
  b.kv("u8", GgufType::kU8, uint8_t{200}).kv("i8", GgufType::kI8, int8_t{-100});
  b.kv("u16", GgufType::kU16, uint16_t{60000}).kv("i16", GgufType::kI16, int16_t{-30000});
  b.kv("u32", GgufType::kU32, uint32_t{4000000000u}).kv("i32", GgufType::kI32, int32_t{-7});
  b.kv("f32", GgufType::kF32, 0.25f).kv("bool", GgufType::kBool, uint8_t{1});
  b.kv_string("str", "héllo");
  b.kv("u64", GgufType::kU64, uint64_t{1} << 40)
      .kv("i64", GgufType::kI64, int64_t{-(int64_t{1} << 40)});
  b.kv("f64", GgufType::kF64, -1.5);
  b.str("ints").u32(9).u32(5).u64(3).put(int32_t{1}).put(int32_t{-2}).put(int32_t{3});
  b.kv_strings("strs", {"a", "", "ccc"});
  // [[ "x" ], [ "y", "z" ]]: an array of arrays of strings.
  b.str("nested").u32(9).u32(9).u64(2);
  b.u32(8).u64(1).str("x").u32(8).u64(2).str("y").str("z");
  const std::string path = b.write("types.gguf");
  HS_ASSERT_OK_AND_ASSIGN(GgufFile f, GgufFile::open(path));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 15u);
  EXPECT_EQ(f.metadata()[0].first, "u8");
  EXPECT_EQ(*f.get_uint("u8"), 200u);
  EXPECT_EQ(f.find("i8")->i, -100);
  EXPECT_EQ(*f.get_uint("u16"), 60000u);
  EXPECT_EQ(f.find("i16")->i, -30000);
  EXPECT_EQ(*f.get_uint("u32"), 4000000000u);
  EXPECT_EQ(f.find("i32")->i, -7);
  EXPECT_EQ(*f.get_float("f32"), 0.25);
  EXPECT_EQ(*f.get_bool("bool"), true);
  EXPECT_EQ(*f.get_string("str"), "héllo");
  EXPECT_EQ(*f.get_uint("u64"), uint64_t{1} << 40);
  EXPECT_EQ(f.find("i64")->i, -(int64_t{1} << 40));
  EXPECT_EQ(*f.get_float("f64"), -1.5);
  EXPECT_THAT(*f.get_int_array("ints"), ::testing::ElementsAre(1, -2, 3));
  EXPECT_THAT(*f.get_string_array("strs"), ::testing::ElementsAre("a", "", "ccc"));
  HS_ASSERT_OK_AND_ASSIGN(std::vector<GgufValue> outer, f.array_items(*f.find("nested")));
  ASSERT_EQ(outer.size(), 2u);
  HS_ASSERT_OK_AND_ASSIGN(std::vector<GgufValue> second, f.array_items(outer[1]));
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].s, "y");
  EXPECT_EQ(second[1].s, "z");
  EXPECT_EQ(f.array_items(outer[0])->at(0).s, "x");
  // Wrong types and missing keys name the key.
  auto neg = f.get_uint("i32");
  EXPECT_EQ(neg.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(neg.error().message(), HasSubstr("'i32' is -7"));
  auto wrong = f.get_string("u8");
  EXPECT_EQ(wrong.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(wrong.error().message(), HasSubstr("metadata 'u8' is u8, expected string"));
  EXPECT_EQ(f.get_bool("nope").kind(), ErrorKind::kNotFound);
  EXPECT_THAT(f.get_f32_array("strs").error().message(), HasSubstr("array of string"));
}

TEST(Gguf, DequantizesQ8F16Bf16) {
  GgufBytes b;
  b.header(3, 1).kv("general.alignment", GgufType::kU32, uint32_t{64});
  b.tensor_info("q8", {32, 2}, 8, 0)
      .tensor_info("f16", {3}, 1, 128)
      .tensor_info("bf16", {3, 1}, 30, 192);
  b.pad(64);
  // Q8_0 block 0: d = 0.5 (f16 0x3800), q = j - 3; block 1: d = 2 (0x4000), q = 16 - j.
  b.put(uint16_t{0x3800});
  for (int j = 0; j < 32; ++j) b.put(static_cast<int8_t>(j - 3));
  b.put(uint16_t{0x4000});
  for (int j = 0; j < 32; ++j) b.put(static_cast<int8_t>(16 - j));
  b.pad(64);
  b.put(uint16_t{0x3c00})
      .put(uint16_t{0xc400})
      .put(uint16_t{0x3555})
      .pad(64);                                                         // 1, -4, 0.333251953125
  b.put(uint16_t{0x3f80}).put(uint16_t{0x4049}).put(uint16_t{0xbf00});  // 1, 3.140625, -0.5
  HS_ASSERT_OK_AND_ASSIGN(GgufFile f, GgufFile::open(b.write("quant.gguf")));
  EXPECT_EQ(f.alignment(), 64u);
  HS_ASSERT_OK_AND_ASSIGN(Weight q, f.load_tensor("q8"));
  EXPECT_EQ(q.shape, (std::vector<int64_t>{2, 32}));
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(q.f32()[j], 0.5f * static_cast<float>(j - 3));
    EXPECT_EQ(q.f32()[32 + j], 2.0f * static_cast<float>(16 - j));
  }
  HS_ASSERT_OK_AND_ASSIGN(Weight h, f.load_tensor("f16"));
  EXPECT_THAT(std::vector<float>(h.f32().begin(), h.f32().end()),
              ::testing::ElementsAre(1.0f, -4.0f, 0.333251953125f));
  HS_ASSERT_OK_AND_ASSIGN(Weight bf, f.load_tensor("bf16"));
  EXPECT_EQ(bf.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_THAT(std::vector<float>(bf.f32().begin(), bf.f32().end()),
              ::testing::ElementsAre(1.0f, 3.140625f, -0.5f));
}

struct Hostile {
  const char* name;
  GgufBytes bytes;
  ErrorKind kind;
  std::string message_part;
};

TEST(Gguf, RejectsHostileFiles) {
  std::vector<Hostile> cases;
  cases.push_back({"bad magic", GgufBytes().u32(0x12345678).u32(3).u64(0).u64(0),
                   ErrorKind::kBadMagic, "not a GGUF file"});
  cases.push_back({"version 1", GgufBytes().header(0, 0, 1), ErrorKind::kVersion,
                   "GGUF version 1 is not supported"});
  cases.push_back(
      {"big endian", GgufBytes().header(0, 0, 0x03000000), ErrorKind::kVersion, "big-endian"});
  cases.push_back({"truncated header", GgufBytes().u32(0x46554747).u32(3).u32(0),
                   ErrorKind::kCorrupt, "truncated at offset 8 reading tensor count"});
  cases.push_back({"absurd tensor count", GgufBytes().header(uint64_t{1} << 62, 0),
                   ErrorKind::kCorrupt, "tensor count 4611686018427387904 cannot fit"});
  cases.push_back({"absurd kv count", GgufBytes().header(0, uint64_t{1} << 61), ErrorKind::kCorrupt,
                   "metadata count 2305843009213693952 cannot fit"});
  cases.push_back({"key length past end", GgufBytes().header(0, 1).u64(1000).str("abc"),
                   ErrorKind::kCorrupt, "has length 1000 but only"});
  cases.push_back({"string value past end",
                   GgufBytes().header(0, 1).str("k").u32(8).u64(uint64_t{1} << 63),
                   ErrorKind::kCorrupt, "k at offset"});
  cases.push_back({"array count 2^60",
                   GgufBytes().header(0, 1).str("arr").u32(9).u32(0).u64(uint64_t{1} << 60),
                   ErrorKind::kCorrupt, "'arr' is an array of 1152921504606846976 u8"});
  cases.push_back({"string array element past end",
                   GgufBytes().header(0, 1).str("sa").u32(9).u32(8).u64(2).str("ok").u64(99),
                   ErrorKind::kCorrupt, "'sa' element 1 has string length 99"});
  GgufBytes deep;
  deep.header(0, 1).str("deep").u32(9);
  for (int i = 0; i < 12; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  cases.push_back({"arrays nested too deep", deep, ErrorKind::kCorrupt, "deeper than 8"});
  cases.push_back({"unknown value type", GgufBytes().header(0, 1).str("k").u32(77).u8(0),
                   ErrorKind::kCorrupt, "'k' has unknown value type 77"});
  cases.push_back({"bad bool", GgufBytes().header(0, 1).kv("b", GgufType::kBool, uint8_t{7}),
                   ErrorKind::kCorrupt, "'b' is a bool with value 7"});
  cases.push_back({"duplicate key",
                   GgufBytes()
                       .header(0, 2)
                       .kv("a", GgufType::kU8, uint8_t{1})
                       .kv("a", GgufType::kU8, uint8_t{2}),
                   ErrorKind::kCorrupt, "'a' appears twice"});
  cases.push_back({"alignment not a power of two",
                   GgufBytes().header(0, 1).kv("general.alignment", GgufType::kU32, uint32_t{48}),
                   ErrorKind::kCorrupt, "general.alignment is 48, expected a power of two"});
  cases.push_back({"too many dims",
                   GgufBytes().header(1, 0).tensor_info("t", {1, 1, 1, 1, 1}, 0, 0),
                   ErrorKind::kCorrupt, "tensor 't' has 5 dims, at most 4"});
  cases.push_back({"unknown tensor type",
                   GgufBytes().header(1, 0).tensor_info("t", {4}, 99, 0).pad(32).u64(0).u64(0),
                   ErrorKind::kCorrupt, "tensor 't' has unknown ggml type 99"});
  cases.push_back(
      {"dims overflow",
       GgufBytes().header(1, 0).tensor_info("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0),
       ErrorKind::kCorrupt, "overflow"});
  cases.push_back({"q8 row not whole blocks", GgufBytes().header(1, 0).tensor_info("t", {31}, 8, 0),
                   ErrorKind::kCorrupt, "ne[0]=31, not a multiple of its block 32"});
  cases.push_back({"offset outside the file",
                   GgufBytes().header(1, 0).tensor_info("t", {4}, 0, 4096).pad(32).u64(0).u64(0),
                   ErrorKind::kOutOfRange, "tensor 't' bytes [4096, +16) are outside"});
  cases.push_back({"size past the end",
                   GgufBytes().header(1, 0).tensor_info("t", {8}, 0, 0).pad(32).u64(0).u64(0),
                   ErrorKind::kOutOfRange, "tensor 't' bytes [0, +32) are outside the 16-byte"});
  cases.push_back({"huge offset wraps",
                   GgufBytes().header(1, 0).tensor_info("t", {4}, 0, ~uint64_t{0} - 31).pad(32),
                   ErrorKind::kOutOfRange, "are outside"});
  cases.push_back({"misaligned offset",
                   GgufBytes().header(1, 0).tensor_info("t", {1}, 0, 4).pad(32).u64(0),
                   ErrorKind::kAlignment, "offset 4 is not a multiple of the alignment 32"});
  cases.push_back({"duplicate tensor",
                   GgufBytes().header(2, 0).tensor_info("t", {1}, 0, 0).tensor_info("t", {1}, 0, 0),
                   ErrorKind::kCorrupt, "tensor 't' appears twice"});
  for (const Hostile& c : cases) {
    const std::string path = c.bytes.write("hostile.gguf");
    auto r = GgufFile::open(path);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.kind(), c.kind) << c.name << ": " << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr(c.message_part)) << c.name;
    EXPECT_THAT(r.error().message(), HasSubstr(path)) << c.name;
  }
}

TEST(Gguf, UnsupportedTypeIsReportedAtLoad) {
  GgufBytes b;
  b.header(1, 0).tensor_info("k", {256}, 12, 0).pad(32);  // q4_K: 144 bytes per 256
  b.bytes.resize(b.bytes.size() + 144);
  HS_ASSERT_OK_AND_ASSIGN(GgufFile f, GgufFile::open(b.write("q4k.gguf")));
  EXPECT_EQ(f.tensors()[0].nbytes, 144u);
  auto r = f.load_tensor("k");
  EXPECT_EQ(r.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(r.error().message(), HasSubstr("tensor 'k' has ggml type q4_K"));
  EXPECT_EQ(f.load_tensor("missing").kind(), ErrorKind::kNotFound);
}

// Inverse of permute_interleaved_to_rotate_half: rotate-half rows back to interleaved pairs.
std::vector<float> to_interleaved(const Weight& w, int64_t heads, int64_t dh) {
  const int64_t cols = w.numel() / w.shape[0];
  std::vector<float> out(w.f32().size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < dh; ++j) {
      const int64_t from = h * dh + (j < dh / 2 ? 2 * j : 2 * (j - dh / 2) + 1);
      std::copy_n(&w.f32()[(h * dh + j) * cols], cols, &out[from * cols]);
    }
  }
  return out;
}

struct GgufModelOptions {
  std::string skip;         // leave this tensor out
  std::string wrong_shape;  // write this tensor with ne[1] + 1 rows
  std::string architecture = "llama";
  std::vector<float> rope_freqs;  // written as rope_freqs.weight when not empty
};

// Writes `m` as a llama GGUF (F32 tensors, q/k rows interleaved as llama.cpp stores them).
std::string write_llama_gguf(const LlamaModel& m, const GgufModelOptions& o) {
  const LlamaConfig& c = m.config;
  struct Entry {
    std::string name;
    std::vector<uint64_t> ne;  // fastest axis first
    std::vector<float> values;
  };
  std::vector<Entry> tensors;
  auto add_values = [&](const std::string& name, const Weight& w, std::vector<float> values) {
    if (name == o.skip) return;
    std::vector<uint64_t> ne(w.shape.rbegin(), w.shape.rend());
    if (name == o.wrong_shape) ne.back() += 1;
    values.resize(values.size() / w.shape[0] * (w.shape[0] + (name == o.wrong_shape)), 0.0f);
    tensors.push_back({name, ne, std::move(values)});
  };
  auto add = [&](const std::string& name, const Weight& w) {
    add_values(name, w, std::vector<float>(w.f32().begin(), w.f32().end()));
  };
  add("token_embd.weight", m.weights.tok_embeddings);
  add("output_norm.weight", m.weights.norm);
  if (!c.tied_embeddings) add("output.weight", m.weights.output);
  if (!o.rope_freqs.empty()) {
    add("rope_freqs.weight",
        Weight::from_floats({static_cast<int64_t>(o.rope_freqs.size())}, o.rope_freqs));
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = m.weights.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", lw.attn_norm);
    add_values(p + "attn_q.weight", lw.wq, to_interleaved(lw.wq, c.n_heads, c.head_dim));
    add_values(p + "attn_k.weight", lw.wk, to_interleaved(lw.wk, c.n_kv_heads, c.head_dim));
    add(p + "attn_v.weight", lw.wv);
    add(p + "attn_output.weight", lw.wo);
    add(p + "ffn_norm.weight", lw.ffn_norm);
    add(p + "ffn_gate.weight", lw.w1);
    add(p + "ffn_down.weight", lw.w2);
    add(p + "ffn_up.weight", lw.w3);
  }
  GgufBytes b;
  b.header(tensors.size(), 10);
  b.kv_string("general.architecture", o.architecture);
  b.kv("llama.embedding_length", GgufType::kU32, static_cast<uint32_t>(c.dim));
  b.kv("llama.block_count", GgufType::kU32, static_cast<uint32_t>(c.n_layers));
  b.kv("llama.feed_forward_length", GgufType::kU32, static_cast<uint32_t>(c.hidden_dim));
  b.kv("llama.attention.head_count", GgufType::kU32, static_cast<uint32_t>(c.n_heads));
  b.kv("llama.attention.head_count_kv", GgufType::kU32, static_cast<uint32_t>(c.n_kv_heads));
  b.kv("llama.attention.layer_norm_rms_epsilon", GgufType::kF32, static_cast<float>(c.rms_eps));
  b.kv("llama.rope.freq_base", GgufType::kF32, static_cast<float>(c.rope_theta));
  b.kv("llama.context_length", GgufType::kU32, static_cast<uint32_t>(c.max_seq_len));
  b.kv("llama.vocab_size", GgufType::kU32, static_cast<uint32_t>(c.vocab_size));
  uint64_t offset = 0;
  for (const Entry& t : tensors) {
    b.tensor_info(t.name, t.ne, 0, offset);
    offset += (t.values.size() * 4 + 31) / 32 * 32;
  }
  b.pad(32);
  for (const Entry& t : tensors) {
    for (float v : t.values) b.put(v);
    b.pad(32);
  }
  return b.write("model.gguf");
}

TEST(Gguf, RandomModelRoundTripsAndBadModelsFail) {
  LlamaConfig c;
  c.dim = 8, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 4, c.hidden_dim = 12;
  c.vocab_size = 10, c.max_seq_len = 32, c.rope_theta = 500000.0, c.tied_embeddings = false;
  const LlamaModel m = make_random_llama(c, 3);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel g, load_gguf_model(write_llama_gguf(m, {})));
  EXPECT_EQ(g.config.rope_theta, 500000.0);
  EXPECT_EQ(g.config.rms_eps, 1e-5);
  EXPECT_FALSE(g.config.tied_embeddings);
  EXPECT_FALSE(g.tokenizer.has_value());
  std::vector<NamedWeight> a = named_weights(m), b = named_weights(g);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(weights_bit_equal(*a[i].weight, *b[i].weight)) << a[i].name;
  }

  auto missing = load_gguf_model(write_llama_gguf(m, {.skip = "blk.1.ffn_up.weight"}));
  EXPECT_EQ(missing.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("tensor 'blk.1.ffn_up.weight' is missing"));

  auto shape = load_gguf_model(write_llama_gguf(m, {.wrong_shape = "blk.0.attn_k.weight"}));
  EXPECT_EQ(shape.kind(), ErrorKind::kShape);
  EXPECT_THAT(shape.error().message(),
              HasSubstr("tensor 'blk.0.attn_k.weight' has ne [8,5], expected [8,4]"));

  auto arch = load_gguf_model(write_llama_gguf(m, {.architecture = "gemma2"}));
  EXPECT_EQ(arch.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(arch.error().message(), HasSubstr("architecture 'gemma2' is not supported"));
}

// llama3 RoPE scaling travels as rope_freqs.weight; it is recognised from its values.
TEST(Gguf, Llama3RopeFreqsBecomeRopeScaling) {
  LlamaConfig c;
  c.dim = 256, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 128;
  c.hidden_dim = 8, c.vocab_size = 4, c.max_seq_len = 64, c.rope_theta = 500000.0;
  const LlamaModel m = make_random_llama(c, 5);
  // convert_hf_to_gguf's llama3 factors for factor 32, low 1, high 4, original 8192.
  std::vector<float> freqs;
  for (int i = 0; i < 64; ++i) {
    const double freq = 1.0 / std::pow(500000.0, 2.0 * i / 128);
    const double wavelen = 2 * 3.141592653589793 / freq;
    double f = 1.0;
    if (wavelen > 8192.0) {
      f = 32.0;
    } else if (wavelen > 2048.0) {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      f = 1.0 / ((1 - smooth) / 32.0 + smooth);
    }
    freqs.push_back(static_cast<float>(f));
  }
  ASSERT_EQ(freqs[0], 1.0f);
  ASSERT_EQ(freqs[63], 32.0f);
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel g,
                          load_gguf_model(write_llama_gguf(m, {.rope_freqs = freqs})));
  ASSERT_TRUE(g.config.rope_scaling.has_value());
  EXPECT_EQ(g.config.rope_scaling->factor, 32.0);
  EXPECT_EQ(g.config.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(g.config.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(g.config.rope_scaling->original_max_position_embeddings, 8192);

  // Hostile inputs (issue 16, class 6): a NaN divisor is damage, named, not "unsupported".
  std::vector<float> nan_freqs = freqs;
  nan_freqs[7] = std::nanf("");
  auto nan = load_gguf_model(write_llama_gguf(m, {.rope_freqs = nan_freqs}));
  EXPECT_EQ(nan.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(nan.error().message(), HasSubstr("rope_freqs.weight[7] is nan"));

  freqs[10] = 1.5f;  // a high frequency must not be scaled: not the llama3 formula
  auto bad = load_gguf_model(write_llama_gguf(m, {.rope_freqs = freqs}));
  EXPECT_EQ(bad.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(bad.error().message(), HasSubstr("rope_freqs.weight[10] is 1.5"));
}

// Hostile inputs (issue 16, class 7): a u64 alignment of 64 is a valid alignment, not "must
// be a u32"; a u64 that is not a power of two is reported with its value.
TEST(Gguf, AlignmentOfAnyUnsignedTypeIsAccepted) {
  auto path = GgufBytes()
                  .header(0, 1)
                  .kv("general.alignment", GgufType::kU64, uint64_t{64})
                  .write("align_u64.gguf");
  HS_ASSERT_OK_AND_ASSIGN(GgufFile f, GgufFile::open(path));
  EXPECT_EQ(f.alignment(), 64u);
  auto bad = GgufFile::open(GgufBytes()
                                .header(0, 1)
                                .kv("general.alignment", GgufType::kU64, uint64_t{1} << 40)
                                .write("align_huge.gguf"));
  EXPECT_EQ(bad.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(bad.error().message(),
              HasSubstr("general.alignment is 1099511627776, expected a power of two up to 2^30"));
  auto text = GgufFile::open(
      GgufBytes().header(0, 1).kv_string("general.alignment", "64").write("align_string.gguf"));
  EXPECT_THAT(text.error().message(), HasSubstr("general.alignment is a string"));
}

// Every truncation and random byte corruption of a real file gives an error or a file whose
// tensors all lie inside it; never a crash (run under the sanitizers).
TEST(Gguf, TruncationsAndByteFlipsNeverCrash) {
  HS_REQUIRE_SHARED();
  auto real = GgufFile::open(shared("models/stories260K/stories260K.gguf"));
  HS_ASSERT_OK(real);
  std::ifstream in(shared("models/stories260K/stories260K.gguf"), std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t header_end =
      14152;  // end of the tensor infos (metadata and infos are what we parse)
  GgufBytes b;
  std::mt19937 rng(42);
  for (int trial = 0; trial < 60; ++trial) {
    b.bytes.assign(reinterpret_cast<const std::byte*>(raw.data()),
                   reinterpret_cast<const std::byte*>(raw.data()) + raw.size());
    if (trial < 20) {
      b.bytes.resize(rng() % header_end);
    } else {
      for (int k = 0; k < 4; ++k) b.bytes[rng() % header_end] = static_cast<std::byte>(rng());
    }
    auto r = GgufFile::open(b.write("fuzz.gguf"));
    if (!r.ok()) continue;
    for (const GgufTensorInfo& t : r->tensors()) {
      EXPECT_LE(r->data_offset() + t.offset + t.nbytes, b.bytes.size());
    }
  }
}

}  // namespace
}  // namespace hs::frontend

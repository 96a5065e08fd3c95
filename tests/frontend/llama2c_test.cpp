// llama2.c checkpoint reader: stories260K against its README and raw file bytes, and every
// malformed-header case (error kind and message).
#include "headsplit/frontend/llama2c.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;

std::string stories_bin() { return testing::shared_file("models/stories260K/stories260K.bin"); }

std::vector<std::byte> read_all(const std::string& path) {
  auto r = read_binary_file(path);
  HS_CHECK(r.ok(), "test could not read a shared file");
  return std::move(r).value();
}

std::string write_temp(const std::string& name, const std::vector<std::byte>& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<std::byte> header_bytes(std::array<int32_t, 7> h) {
  std::vector<std::byte> bytes(28);
  std::memcpy(bytes.data(), h.data(), 28);
  return bytes;
}

float raw_float(const std::vector<std::byte>& file, size_t float_index) {
  float v;
  std::memcpy(&v, file.data() + 28 + 4 * float_index, 4);
  return v;
}

TEST(Llama2c, LoadsStories260K) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_llama2c_model(stories_bin(), ""));
  // README: 64, 172, 5, 8, 4, 512, 512; head_size 8; shared classifier.
  EXPECT_EQ(m.config.dim, 64);
  EXPECT_EQ(m.config.hidden_dim, 172);
  EXPECT_EQ(m.config.n_layers, 5);
  EXPECT_EQ(m.config.n_heads, 8);
  EXPECT_EQ(m.config.n_kv_heads, 4);
  EXPECT_EQ(m.config.head_dim, 8);
  EXPECT_EQ(m.config.vocab_size, 512);
  EXPECT_EQ(m.config.max_seq_len, 512);
  EXPECT_EQ(m.config.rms_eps, 1e-5);
  EXPECT_EQ(m.config.rope_theta, 10000.0);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.name, "stories260K");
  EXPECT_FALSE(m.tokenizer.has_value());
  HS_EXPECT_OK(m.validate());
  // Parameter count without freq_cis (README): 260,032.
  int64_t params = 0;
  for (const NamedWeight& nw : named_weights(m))
    params += nw.weight->empty() ? 0 : nw.weight->numel();
  EXPECT_EQ(params, 260032);

  // Read the raw floats independently: token_embedding[512,64], rms_att[5,64], wq[5,64,64],
  // wk[5,32,64], wv[5,32,64], ... (README layout).
  const std::vector<std::byte> raw = read_all(stories_bin());
  const size_t emb = 512 * 64, rms_att = 5 * 64, wq0 = emb + rms_att, wk0 = wq0 + 5 * 64 * 64;
  const size_t wv0 = wk0 + 5 * 32 * 64;
  EXPECT_EQ(m.weights.tok_embeddings.f32()[777], raw_float(raw, 777));
  EXPECT_EQ(m.weights.layers[2].attn_norm.f32()[5], raw_float(raw, emb + 2 * 64 + 5));
  EXPECT_EQ(m.weights.layers[4].wv.f32()[31 * 64 + 63],
            raw_float(raw, wv0 + 4 * 32 * 64 + 31 * 64 + 63));
  // wq/wk rows are permuted per head: new row h*8 + j = old row h*8 + {0,2,4,6,1,3,5,7}[j].
  const int from[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int layer : {0, 3}) {
    for (int row : {0, 1, 4, 5, 7, 13, 62}) {
      const int old_row = row / 8 * 8 + from[row % 8];
      for (int col : {0, 17, 63}) {
        EXPECT_EQ(m.weights.layers[layer].wq.f32()[row * 64 + col],
                  raw_float(raw, wq0 + layer * 64 * 64 + old_row * 64 + col))
            << "layer " << layer << " row " << row;
      }
    }
    for (int row : {1, 6, 30}) {
      const int old_row = row / 8 * 8 + from[row % 8];
      EXPECT_EQ(m.weights.layers[layer].wk.f32()[row * 64 + 9],
                raw_float(raw, wk0 + layer * 32 * 64 + old_row * 64 + 9));
    }
  }
  // Row 1 really moved: the permutation is not the identity on this data.
  EXPECT_NE(m.weights.layers[0].wq.f32()[64], raw_float(raw, wq0 + 64));
  // Unpermuted weights are views into the mapping (no copy).
  EXPECT_EQ(m.weights.layers[0].wv.data.buffer, m.weights.tok_embeddings.data.buffer);
}

TEST(Llama2c, LoadsTokenizerWhenGiven) {
  HS_REQUIRE_SHARED();
  HS_ASSERT_OK_AND_ASSIGN(
      LlamaModel m,
      load_llama2c_model(stories_bin(), testing::shared_file("models/stories260K/tok512.bin")));
  ASSERT_TRUE(m.tokenizer.has_value());
  EXPECT_EQ(m.tokenizer->pieces.size(), 512u);
  EXPECT_EQ(m.tokenizer->kind, tokenizer::TokenizerKind::kLlama2c);
}

TEST(Llama2c, UnsharedClassifierAtTheEnd) {
  HS_REQUIRE_SHARED();
  std::vector<std::byte> bytes = read_all(stories_bin());
  const int32_t negative = -512;
  std::memcpy(bytes.data() + 20, &negative, 4);
  for (int i = 0; i < 512 * 64; ++i) {
    const float v = static_cast<float>(i) * 0.5f;
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + 4);
  }
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_llama2c_model(write_temp("wcls.bin", bytes), ""));
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.vocab_size, 512);
  ASSERT_EQ(m.weights.output.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(m.weights.output.f32()[0], 0.0f);
  EXPECT_EQ(m.weights.output.f32()[1001], 500.5f);
  EXPECT_EQ(&m.lm_head(), &m.weights.output);
}

struct BadCase {
  const char* name;
  std::vector<std::byte> bytes;
  ErrorKind kind;
  std::vector<std::string> message_parts;
};

TEST(Llama2c, RejectsMalformedFiles) {
  HS_REQUIRE_SHARED();
  const std::vector<std::byte> good = read_all(stories_bin());
  std::vector<std::byte> short_by_4(good.begin(), good.end() - 4);
  std::vector<std::byte> flipped = good;
  const int32_t negative = -512;
  std::memcpy(flipped.data() + 20, &negative, 4);
  std::vector<std::byte> ak42 = header_bytes({0x616b3432, 2, 0, 0, 0, 0, 0});

  const BadCase cases[] = {
      {"truncated",
       std::vector<std::byte>(good.begin(), good.begin() + 10),
       ErrorKind::kCorrupt,
       {"file has 10 bytes, shorter than the 28-byte"}},
      {"huge dims overflow",
       header_bytes({1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30}),
       ErrorKind::kCorrupt,
       {"overflow", "dim=1073741824"}},
      {"huge dims",
       header_bytes({1 << 20, 1 << 20, 100, 1024, 1024, 32000, 2048}),
       ErrorKind::kCorrupt,
       {"expected", "bytes, file has 28"}},
      {"negative layers",
       header_bytes({64, 172, -5, 8, 4, 512, 512}),
       ErrorKind::kCorrupt,
       {"n_layers=-5, expected > 0"}},
      {"zero vocab",
       header_bytes({64, 172, 5, 8, 4, 0, 512}),
       ErrorKind::kCorrupt,
       {"vocab_size=0"}},
      {"heads not divisible",
       header_bytes({64, 172, 5, 8, 3, 512, 512}),
       ErrorKind::kCorrupt,
       {"n_heads=8 which is not a multiple of n_kv_heads=3"}},
      {"dim not divisible",
       header_bytes({64, 172, 5, 6, 3, 512, 512}),
       ErrorKind::kCorrupt,
       {"dim=64 which is not n_heads=6 times an even head size"}},
      {"wrong size",
       short_by_4,
       ErrorKind::kCorrupt,
       {"expected 1056540 bytes, file has 1056536", "shared classifier"}},
      {"sign of vocab",
       flipped,
       ErrorKind::kCorrupt,
       {"unshared classifier", "expected 1187612 bytes, file has 1056540",
        "fits vocab_size=512 instead (shared classifier)"}},
      {"version 2 export", ak42, ErrorKind::kVersion, {"ak42"}},
  };
  for (const BadCase& c : cases) {
    const std::string path = write_temp("bad.bin", c.bytes);
    auto r = load_llama2c_model(path, "");
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.kind(), c.kind) << c.name << ": " << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr(path)) << c.name;
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(r.error().message(), HasSubstr(part)) << c.name;
    }
  }
  auto missing = load_llama2c_model("/nonexistent/x.bin", "");
  EXPECT_EQ(missing.kind(), ErrorKind::kIo);
  EXPECT_THAT(missing.error().message(), HasSubstr("/nonexistent/x.bin"));
}

}  // namespace
}  // namespace hs::frontend

// LlamaModel utilities: named configs, validation messages, the q/k row permutation (hand
// case and a seeded RoPE-equivalence property), half-precision conversions, random models.
#include "headsplit/frontend/llama_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;

TEST(NamedConfig, RealShapes) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig s, named_config("stories260k"));
  EXPECT_EQ(s.dim, 64);
  EXPECT_EQ(s.n_layers, 5);
  EXPECT_EQ(s.n_heads, 8);
  EXPECT_EQ(s.n_kv_heads, 4);
  EXPECT_EQ(s.head_dim, 8);
  EXPECT_EQ(s.hidden_dim, 172);
  EXPECT_EQ(s.vocab_size, 512);
  EXPECT_EQ(s.max_seq_len, 512);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.rope_scaling.has_value());

  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig m, named_config("smollm2-135m"));
  EXPECT_EQ(m.dim, 576);
  EXPECT_EQ(m.n_layers, 30);
  EXPECT_EQ(m.n_heads, 9);
  EXPECT_EQ(m.n_kv_heads, 3);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_EQ(m.hidden_dim, 1536);
  EXPECT_EQ(m.vocab_size, 49152);
  EXPECT_EQ(m.max_seq_len, 8192);
  EXPECT_EQ(m.rope_theta, 100000.0);
  EXPECT_EQ(m.rms_eps, 1e-5);
  EXPECT_TRUE(m.tied_embeddings);

  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig l, named_config("llama3.2-1b"));
  EXPECT_EQ(l.dim, 2048);
  EXPECT_EQ(l.n_layers, 16);
  EXPECT_EQ(l.n_heads, 32);
  EXPECT_EQ(l.n_kv_heads, 8);
  EXPECT_EQ(l.head_dim, 64);
  EXPECT_EQ(l.hidden_dim, 8192);
  EXPECT_EQ(l.vocab_size, 128256);
  EXPECT_EQ(l.max_seq_len, 131072);
  EXPECT_EQ(l.rope_theta, 500000.0);
  ASSERT_TRUE(l.rope_scaling.has_value());
  EXPECT_EQ(l.rope_scaling->factor, 32.0);
  EXPECT_EQ(l.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(l.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(l.rope_scaling->original_max_position_embeddings, 8192);
  for (const LlamaConfig* c : {&s, &m, &l}) HS_EXPECT_OK(c->validate(c->name));
}

TEST(NamedConfig, UnknownNameIsNotFound) {
  auto r = named_config("gpt-5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("'gpt-5'"));
}

TEST(LlamaConfigValidate, RejectsInconsistentNumbers) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig base, named_config("stories260k"));
  LlamaConfig c = base;
  c.n_kv_heads = 3;
  Status st = c.validate("x.bin");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(st.error().message(),
              HasSubstr("x.bin: n_heads 8 is not a multiple of n_kv_heads 3"));
  c = base;
  c.head_dim = 7;
  EXPECT_THAT(c.validate("x").error().message(), HasSubstr("head_dim 7 is odd"));
  c = base;
  c.hidden_dim = 0;
  EXPECT_THAT(c.validate("x").error().message(), HasSubstr("hidden_dim is 0"));
  c = base;
  c.n_layers = -1;
  EXPECT_THAT(c.validate("x").error().message(), HasSubstr("n_layers is -1"));
  c = base;
  c.rms_eps = 0;
  EXPECT_THAT(c.validate("x").error().message(), HasSubstr("rms_eps"));
}

TEST(LlamaModelValidate, NamesTheTensorAndShapes) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, named_config("stories260k"));
  LlamaModel model = make_random_llama(c, 1);
  HS_ASSERT_OK(model.validate());
  EXPECT_EQ(&model.lm_head(), &model.weights.tok_embeddings);

  LlamaModel bad = model;
  std::vector<float> values(64 * 60, 0.5f);
  bad.weights.layers[3].wq = Weight::from_floats({64, 60}, values);
  Status st = bad.validate();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.kind(), ErrorKind::kShape);
  EXPECT_THAT(st.error().message(), HasSubstr("layers.3.wq has shape [64,60], expected [64,64]"));

  bad = model;
  bad.weights.output = model.weights.tok_embeddings;  // present although tied
  EXPECT_THAT(bad.validate().error().message(), HasSubstr("output is present"));

  bad = model;
  bad.weights.layers[0].bk = Weight::from_floats({32}, std::vector<float>(32, 0.0f));
  EXPECT_THAT(bad.validate().error().message(), HasSubstr("layers.0.bk is present"));

  bad = model;
  bad.weights.layers.pop_back();
  EXPECT_THAT(bad.validate().error().message(), HasSubstr("4 layers, config says 5"));

  bad = model;
  bad.weights.norm.data.size -= 4;  // data shorter than the shape says
  EXPECT_THAT(bad.validate().error().message(), HasSubstr("norm has 252 data bytes, expected 256"));
}

TEST(Permute, HandComputedRows) {
  // H = 2, Dh = 4, one column: new row h*4 + j takes old row h*4 + {0, 2, 1, 3}[j].
  const std::vector<float> v = {0, 1, 2, 3, 4, 5, 6, 7};
  Weight p = permute_interleaved_to_rotate_half(Weight::from_floats({8}, v), 2, 4);
  EXPECT_EQ(p.shape, (std::vector<int64_t>{8}));
  EXPECT_THAT(std::vector<float>(p.f32().begin(), p.f32().end()),
              ::testing::ElementsAre(0, 2, 1, 3, 4, 6, 5, 7));
  // Dh = 6, two columns: rows {0, 2, 4, 1, 3, 5}.
  std::vector<float> m(12);
  for (int i = 0; i < 12; ++i) m[i] = static_cast<float>(i);
  Weight q = permute_interleaved_to_rotate_half(Weight::from_floats({6, 2}, m), 1, 6);
  EXPECT_THAT(std::vector<float>(q.f32().begin(), q.f32().end()),
              ::testing::ElementsAre(0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11));
}

// Interleaved RoPE on rows of W equals rotate-half RoPE on the permuted rows, element for
// element (the same products, stored at permuted positions): exact equality.
TEST(Permute, RopeEquivalenceProperty) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t heads = 1 + rng() % 4, dh = 2 * (1 + rng() % 8), d = 1 + rng() % 9;
    const int64_t pos = rng() % 100;
    std::vector<float> w(heads * dh * d), x(d);
    for (float& v : w) v = u(rng);
    for (float& v : x) v = u(rng);
    Weight orig = Weight::from_floats({heads * dh, d}, w);
    Weight perm = permute_interleaved_to_rotate_half(orig, heads, dh);
    auto project = [&](const Weight& m) {
      std::vector<float> y(heads * dh, 0.0f);
      for (int64_t r = 0; r < heads * dh; ++r) {
        for (int64_t c = 0; c < d; ++c) y[r] += m.f32()[r * d + c] * x[c];
      }
      return y;
    };
    std::vector<float> a = project(orig), b = project(perm);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < dh / 2; ++i) {
        const float theta =
            static_cast<float>(pos) *
            std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(dh));
        const float cs = std::cos(theta), sn = std::sin(theta);
        float* pa = &a[h * dh];
        float* pb = &b[h * dh];
        const float a0 = pa[2 * i], a1 = pa[2 * i + 1];
        const float b0 = pb[i], b1 = pb[i + dh / 2];
        EXPECT_EQ(a0, b0);
        EXPECT_EQ(a1, b1);
        EXPECT_EQ(a0 * cs - a1 * sn, b0 * cs - b1 * sn);
        EXPECT_EQ(a0 * sn + a1 * cs, b0 * sn + b1 * cs);
      }
    }
  }
}

TEST(HalfPrecision, HandValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x8000), 0.0f);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x7c00), INFINITY);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24 -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 * 2^-24 -> 2 * 2^-24
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc0a0), -5.0f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(HalfPrecision, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "half " << h;
    if (f == 0.0f || std::isinf(f)) continue;
    // Halfway to the next half up rounds to the even one of the two.
    const float next = f16_to_f32(static_cast<uint16_t>(h + 1));
    if (std::isinf(next) || std::isnan(next)) continue;
    const double mid = (static_cast<double>(f) + next) / 2;
    const uint16_t even = (h & 1) == 0 ? h : h + 1;
    EXPECT_EQ(f32_to_f16(static_cast<float>(mid)), even) << "half " << h;
  }
}

TEST(WeightFromStored, ViewsAlignedF32AndConvertsTheRest) {
  const float values[3] = {1.5f, -2.0f, 0.25f};
  auto buffer = HeapBuffer::copy_of(std::as_bytes(std::span<const float>(values)));
  Weight w = weight_from_stored({3}, StoredDType::kF32, BufferView{buffer, 0, 12});
  EXPECT_EQ(w.data.buffer, buffer);  // a view, no copy
  EXPECT_EQ(w.f32()[1], -2.0f);

  std::vector<std::byte> raw(13);
  std::memcpy(raw.data() + 1, values, 12);
  auto odd = HeapBuffer::copy_of(raw);
  Weight c = weight_from_stored({3}, StoredDType::kF32, BufferView{odd, 1, 12});
  EXPECT_NE(c.data.buffer, odd);  // misaligned: copied
  EXPECT_THAT(std::vector<float>(c.f32().begin(), c.f32().end()),
              ::testing::ElementsAre(1.5f, -2.0f, 0.25f));

  const uint16_t halves[2] = {0x3e00, 0xbc00};  // 1.5, -1
  auto hb = HeapBuffer::copy_of(std::as_bytes(std::span<const uint16_t>(halves)));
  Weight h = weight_from_stored({2}, StoredDType::kF16, BufferView{hb, 0, 4});
  EXPECT_THAT(std::vector<float>(h.f32().begin(), h.f32().end()),
              ::testing::ElementsAre(1.5f, -1.0f));
  const uint16_t bf[2] = {0x3fc0, 0xc000};  // 1.5, -2
  auto bb = HeapBuffer::copy_of(std::as_bytes(std::span<const uint16_t>(bf)));
  Weight b = weight_from_stored({2, 1}, StoredDType::kBF16, BufferView{bb, 0, 4});
  EXPECT_EQ(b.shape, (std::vector<int64_t>{2, 1}));
  EXPECT_THAT(std::vector<float>(b.f32().begin(), b.f32().end()),
              ::testing::ElementsAre(1.5f, -2.0f));
}

TEST(WeightFromStored, EveryHalfConvertsAsF16ToF32) {
  // All 65536 halves (groups of 8 with and without infinities and NaNs, whose bits are kept)
  // at two offsets (a tail of 7), bit for bit against f16_to_f32.
  std::vector<uint16_t> halves(65536 + 7);
  for (size_t h = 0; h < halves.size(); ++h) halves[h] = static_cast<uint16_t>(h * 40503u);
  for (size_t offset : {size_t{0}, size_t{7}}) {
    const size_t n = halves.size() - offset;
    auto buffer = HeapBuffer::copy_of(std::as_bytes(std::span<const uint16_t>(halves)));
    Weight w = weight_from_stored({static_cast<int64_t>(n)}, StoredDType::kF16,
                                  BufferView{buffer, 2 * offset, 2 * n});
    const std::span<const float> f = w.f32();
    ASSERT_EQ(f.size(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(f[i]),
                std::bit_cast<uint32_t>(f16_to_f32(halves[offset + i])))
          << "half " << halves[offset + i];
    }
  }
}

TEST(WeightFromStored, LargeTensorsConvertedByThreadsMatchElementByElement) {
  // Past the threading threshold (2^21 elements per thread), with a length that is not a
  // multiple of the 1024-element split nor of 8, every half pattern (infinities and NaNs
  // included) repeating across the split points, F16 and BF16.
  const size_t n = 3 * (size_t{1} << 21) + 13;
  std::vector<uint16_t> halves(n);
  for (size_t h = 0; h < n; ++h) halves[h] = static_cast<uint16_t>(h * 40503u);
  auto buffer = HeapBuffer::copy_of(std::as_bytes(std::span<const uint16_t>(halves)));
  for (StoredDType dtype : {StoredDType::kF16, StoredDType::kBF16}) {
    Weight w = weight_from_stored({static_cast<int64_t>(n)}, dtype, BufferView{buffer, 0, 2 * n});
    const std::span<const float> f = w.f32();
    ASSERT_EQ(f.size(), n);
    for (size_t i = 0; i < n; ++i) {
      const float want = dtype == StoredDType::kF16 ? f16_to_f32(halves[i]) : bf16_to_f32(halves[i]);
      ASSERT_EQ(std::bit_cast<uint32_t>(f[i]), std::bit_cast<uint32_t>(want)) << "element " << i;
    }
  }
}

TEST(RandomLlama, DeterministicAndThreadIndependent) {
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, named_config("stories260k"));
  c.tied_embeddings = false;
  c.attention_bias = true;
  c.qk_norm = true;
  c.post_norms = true;
  c.norm = NormKind::kLayer;  // norm biases
  c.lm_head_bias = true;
  LlamaModel a = make_random_llama(c, 7, RandomOptions{1});
  LlamaModel b = make_random_llama(c, 7, RandomOptions{3});
  LlamaModel other = make_random_llama(c, 8, RandomOptions{1});
  HS_ASSERT_OK(a.validate());
  EXPECT_EQ(a.source, "random(seed 7)");
  std::vector<NamedWeight> wa = named_weights(a), wb = named_weights(b), wo = named_weights(other);
  // Per layer 12 + 2 q/k norms + 2 post norms + 4 CodeGen biases; 4 model-wide + 2 biases.
  ASSERT_EQ(wa.size(), 2 + 16 * 5 + 1u + 4 * 5 + 2);
  for (size_t i = 0; i < wa.size(); ++i) {
    if (wa[i].name.ends_with(".b1") || wa[i].name.ends_with(".b2")) {  // gated FFN: no biases
      EXPECT_TRUE(wa[i].weight->empty()) << wa[i].name;
      continue;
    }
    EXPECT_TRUE(weights_bit_equal(*wa[i].weight, *wb[i].weight)) << wa[i].name;
    EXPECT_FALSE(weights_bit_equal(*wa[i].weight, *wo[i].weight)) << wa[i].name;
  }
  // Value ranges: norms in [0.9, 1.1], matrices within 1/sqrt(in), biases within 0.1.
  for (const NamedWeight& nw : wa) {
    const Weight& w = *nw.weight;
    const bool norm = nw.name.ends_with("norm");
    const float bound = norm                  ? 0.1f
                        : w.shape.size() == 2 ? 1.0f / std::sqrt(float(w.shape[1]))
                                              : 0.1f;
    const float center = norm ? 1.0f : 0.0f;
    for (float x : w.f32()) ASSERT_LE(std::abs(x - center), bound) << nw.name;
  }
  // Two different weights of the same shape get different values (distinct streams).
  EXPECT_FALSE(weights_bit_equal(a.weights.layers[0].wk, a.weights.layers[0].wv));
}

}  // namespace
}  // namespace hs::frontend

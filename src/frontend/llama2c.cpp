// llama2.c legacy checkpoint reader: checks the header and the file size with overflow-safe
// arithmetic before touching any weight, then views the mapped floats as LlamaWeights.
#include "headsplit/frontend/llama2c.h"

#include <array>
#include <cstring>
#include <filesystem>

#include "headsplit/tokenizer/llama2c.h"

namespace hs::frontend {

namespace {

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;

  std::string text() const {
    return fmt::format(
        "dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}", dim,
        hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len);
  }
};

// Checked 64-bit arithmetic: any overflow makes the whole computation fail.
struct Checked {
  uint64_t value = 0;
  bool overflow = false;
  Checked& add(uint64_t a) {
    overflow |= __builtin_add_overflow(value, a, &value);
    return *this;
  }
  static Checked product(std::initializer_list<uint64_t> factors) {
    Checked c{1, false};
    for (uint64_t f : factors) c.overflow |= __builtin_mul_overflow(c.value, f, &c.value);
    return c;
  }
  Checked& add(const Checked& other) {
    overflow |= other.overflow;
    return add(other.value);
  }
};

// Number of floats after the header, with or without the unshared classifier.
Checked expected_floats(const Header& h, bool shared) {
  const uint64_t d = static_cast<uint64_t>(h.dim), f = static_cast<uint64_t>(h.hidden_dim);
  const uint64_t l = static_cast<uint64_t>(h.n_layers);
  const uint64_t v =
      static_cast<uint64_t>(h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size);
  const uint64_t dh = d / static_cast<uint64_t>(h.n_heads);
  const uint64_t kv = dh * static_cast<uint64_t>(h.n_kv_heads);
  Checked n;
  n.add(Checked::product({v, d}));                                  // token_embedding
  n.add(Checked::product({2, l, d}));                               // rms_att, rms_ffn
  n.add(Checked::product({2, l, d, d}));                            // wq, wo
  n.add(Checked::product({2, l, kv, d}));                           // wk, wv
  n.add(Checked::product({3, l, f, d}));                            // w1, w2, w3
  n.add(d);                                                         // rms_final
  n.add(Checked::product({static_cast<uint64_t>(h.seq_len), dh}));  // freq_cis real + imag
  if (!shared) n.add(Checked::product({v, d}));                     // wcls
  return n;
}

Status check_header(const std::string& path, const Header& h, size_t file_size) {
  const std::pair<const char*, int32_t> positive[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"seq_len", h.seq_len}};
  for (const auto& [name, value] : positive) {
    if (value <= 0) {
      return errorf(ErrorKind::kCorrupt, "{}: header says {}={}, expected > 0 ({})", path, name,
                    value, h.text());
    }
  }
  if (h.vocab_size == 0) {
    return errorf(ErrorKind::kCorrupt, "{}: header says vocab_size={}, expected non-zero ({})",
                  path, h.vocab_size, h.text());
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: header says n_heads={} which is not a multiple of n_kv_heads={}", path,
                  h.n_heads, h.n_kv_heads);
  }
  if (h.dim % h.n_heads != 0 || (h.dim / h.n_heads) % 2 != 0) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: header says dim={} which is not n_heads={} times an even head size", path,
                  h.dim, h.n_heads);
  }
  const bool shared = h.vocab_size > 0;
  const Checked floats = expected_floats(h, shared);
  Checked bytes = Checked::product({floats.value, 4});
  bytes.overflow |= floats.overflow;
  bytes.add(kLlama2cHeaderBytes);
  if (bytes.overflow) {
    return errorf(ErrorKind::kCorrupt, "{}: header sizes overflow 64-bit byte counts ({})", path,
                  h.text());
  }
  if (bytes.value != file_size) {
    const Checked other = expected_floats(h, !shared);
    const bool other_fits = !other.overflow && other.value <= (UINT64_MAX - 28) / 4 &&
                            other.value * 4 + kLlama2cHeaderBytes == file_size;
    return errorf(ErrorKind::kCorrupt,
                  "{}: header says {} ({} classifier), expected {} bytes, file has {}{}", path,
                  h.text(), shared ? "shared" : "unshared", bytes.value, file_size,
                  other_fits ? fmt::format("; the size fits vocab_size={} instead ({} classifier)",
                                           -h.vocab_size, shared ? "unshared" : "shared")
                             : std::string());
  }
  return ok_status();
}

}  // namespace

Result<LlamaModel> load_llama2c_model(const std::string& bin_path,
                                      const std::string& tokenizer_path) {
  HS_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(bin_path));
  const size_t size = file->size();
  if (size < kLlama2cHeaderBytes) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: file has {} bytes, shorter than the {}-byte llama2.c header", bin_path, size,
                  kLlama2cHeaderBytes);
  }
  std::array<int32_t, 7> raw;
  std::memcpy(raw.data(), file->data(), sizeof(raw));
  if (static_cast<uint32_t>(raw[0]) == 0x616b3432u) {  // "ak42": llama2.c export versions 1+
    return errorf(ErrorKind::kVersion,
                  "{}: llama2.c export format version {} (magic ak42) is not supported, only the "
                  "legacy version-0 float32 format",
                  bin_path, raw[1]);
  }
  const Header h{raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6]};
  HS_TRY(check_header(bin_path, h, size));

  LlamaModel model;
  LlamaConfig& c = model.config;
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
  c.max_seq_len = h.seq_len;
  c.tied_embeddings = h.vocab_size > 0;
  c.name = std::filesystem::path(bin_path).stem().string();
  model.source = bin_path;
  if (Status st = c.validate(bin_path); !st.ok()) {
    return Error(ErrorKind::kCorrupt, st.error().message());
  }

  // Walks the float arrays in file order; each take() is a view of `n` floats.
  size_t offset = kLlama2cHeaderBytes;
  auto take = [&](std::vector<int64_t> shape) {
    Weight w;
    w.shape = std::move(shape);
    const size_t bytes = static_cast<size_t>(w.numel()) * 4;
    w.data = BufferView{file, offset, bytes};
    offset += bytes;
    return w;
  };
  // Per-layer arrays are stored stacked: [L, ...]; returns one view per layer.
  auto take_layers = [&](std::vector<int64_t> shape, Weight LayerWeights::*slot) {
    for (int64_t l = 0; l < c.n_layers; ++l) model.weights.layers[l].*slot = take(shape);
  };
  const int64_t d = c.dim, f = c.hidden_dim, q = c.n_heads * c.head_dim;
  const int64_t kv = c.n_kv_heads * c.head_dim;
  model.weights.layers.resize(static_cast<size_t>(c.n_layers));
  model.weights.tok_embeddings = take({c.vocab_size, d});
  take_layers({d}, &LayerWeights::attn_norm);
  take_layers({q, d}, &LayerWeights::wq);
  take_layers({kv, d}, &LayerWeights::wk);
  take_layers({kv, d}, &LayerWeights::wv);
  take_layers({d, q}, &LayerWeights::wo);
  take_layers({d}, &LayerWeights::ffn_norm);
  take_layers({f, d}, &LayerWeights::w1);
  take_layers({d, f}, &LayerWeights::w2);
  take_layers({f, d}, &LayerWeights::w3);
  model.weights.norm = take({d});
  take({c.max_seq_len, c.head_dim});  // legacy freq_cis_real and freq_cis_imag, unused
  if (!c.tied_embeddings) model.weights.output = take({c.vocab_size, d});
  HS_CHECK(offset == size, "llama2.c layout walk disagrees with the size check");

  // llama2.c rotates interleaved pairs (2i, 2i+1); the graph uses rotate-half.
  for (LayerWeights& lw : model.weights.layers) {
    lw.wq = permute_interleaved_to_rotate_half(lw.wq, c.n_heads, c.head_dim);
    lw.wk = permute_interleaved_to_rotate_half(lw.wk, c.n_kv_heads, c.head_dim);
  }
  HS_TRY(model.validate());

  if (!tokenizer_path.empty()) {
    HS_ASSIGN_OR_RETURN(tokenizer::TokenizerData tok,
                        tokenizer::load_llama2c_tokenizer(tokenizer_path, c.vocab_size));
    model.tokenizer = std::move(tok);
  }
  return model;
}

}  // namespace hs::frontend

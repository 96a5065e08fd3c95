// Hugging Face folders of the llama-like families (Llama, Qwen2/2.5, Qwen3, SmolLM3, Granite,
// Gemma, Gemma3 text, Phi-3/Phi-4 and GLM; the last two with fused projections split at load,
// hf_phi_glm.h; CodeGen / CodeGen2 with its own keys and tensor names, hf_codegen.h):
// config.json -> LlamaConfig, (sharded) safetensors -> weights. Every tensor of the checkpoint
// must be read: one nothing reads (a bias the config does not announce, ...) is an error.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/support/file.h"
#include "hf_codegen.h"
#include "hf_json.h"
#include "hf_phi_glm.h"

namespace hs::frontend {

namespace {

using json::Json;

// The families read from config.json: architecture class, model_type, headsplit family.
struct HfFamily {
  const char* architecture;
  const char* model_type;
  const char* family;
};
constexpr HfFamily kHfFamilies[] = {{"LlamaForCausalLM", "llama", "llama"},
                                    {"Qwen2ForCausalLM", "qwen2", "qwen2"},
                                    {"Qwen3ForCausalLM", "qwen3", "qwen3"},
                                    {"SmolLM3ForCausalLM", "smollm3", "smollm3"},
                                    {"GraniteForCausalLM", "granite", "granite"},
                                    {"GemmaForCausalLM", "gemma", "gemma"},
                                    {"Gemma3ForCausalLM", "gemma3_text", "gemma3"},
                                    {"Phi3ForCausalLM", "phi3", "phi3"},
                                    {"GlmForCausalLM", "glm", "glm"},
                                    {"CodeGenForCausalLM", "codegen", "codegen"}};

// The family of `architectures` (the first one known), else of `model_type`.
Result<std::string> read_family(const Json& j, const std::string& what) {
  std::vector<std::string> archs;
  if (const Json* a = json::member(j, "architectures"); a != nullptr && a->is_array()) {
    for (const Json& x : *a) {
      if (x.is_string()) archs.push_back(x.get<std::string>());
    }
  }
  HS_ASSIGN_OR_RETURN(std::string model_type, json::get_string_or(j, "model_type", "", what));
  for (const std::string& a : archs) {
    for (const HfFamily& f : kHfFamilies) {
      if (a == f.architecture) return std::string(f.family);
    }
  }
  if (archs.empty()) {
    for (const HfFamily& f : kHfFamilies) {
      if (model_type == f.model_type) return std::string(f.family);
    }
  }
  std::vector<std::string> known;
  for (const HfFamily& f : kHfFamilies) known.emplace_back(f.architecture);
  return errorf(ErrorKind::kUnsupported,
                "{}: architecture [{}] (model_type '{}') is not supported, expected one of {}",
                what, fmt::join(archs, ", "), model_type, fmt::join(known, ", "));
}

// SmolLM3: `no_rope_layers` lists per layer 1 (uses RoPE) or 0 (does not); without it, every
// `no_rope_layer_interval`-th layer (default 4) skips RoPE. Returns the layers that skip it.
Result<std::vector<int64_t>> read_no_rope_layers(const Json& j, int64_t n_layers,
                                                 const std::string& what) {
  std::vector<int64_t> out;
  if (const Json* list = json::member(j, "no_rope_layers"); list != nullptr) {
    if (!list->is_array() || static_cast<int64_t>(list->size()) != n_layers) {
      return errorf(ErrorKind::kParse,
                    "{}: no_rope_layers is {}, expected a list of {} entries (one per layer, 1 "
                    "= uses RoPE, 0 = no RoPE)",
                    what, json::text(*list), n_layers);
    }
    for (int64_t l = 0; l < n_layers; ++l) {
      HS_ASSIGN_OR_RETURN(int64_t use,
                          json::as_int((*list)[static_cast<size_t>(l)],
                                       fmt::format("{}: no_rope_layers[{}]", what, l)));
      if (use != 0 && use != 1) {
        return errorf(ErrorKind::kParse, "{}: no_rope_layers[{}] is {}, expected 0 or 1", what, l,
                      use);
      }
      if (use == 0) out.push_back(l);
    }
    return out;
  }
  HS_ASSIGN_OR_RETURN(int64_t interval, json::get_int_or(j, "no_rope_layer_interval", 4, what));
  if (interval <= 0) {
    return errorf(ErrorKind::kParse, "{}: no_rope_layer_interval is {}, expected > 0", what,
                  interval);
  }
  for (int64_t l = interval - 1; l < n_layers; l += interval) out.push_back(l);
  return out;
}

bool is_gemma(const LlamaConfig& c) { return c.family == "gemma" || c.family == "gemma3"; }

// The FFN activation: `hidden_activation` (Gemma; transformers' default gelu_pytorch_tanh even
// when the old `hidden_act` says "gelu"), else `hidden_act` (default silu).
Result<FfnActivation> read_activation(const Json& j, const LlamaConfig& c,
                                      const std::string& what) {
  std::string act;
  const Json* ha = json::member(j, "hidden_activation");
  if (ha != nullptr && !ha->is_null()) {
    HS_ASSIGN_OR_RETURN(act, json::get_string(j, "hidden_activation", what));
  } else if (is_gemma(c)) {
    act = "gelu_pytorch_tanh";
  } else {
    HS_ASSIGN_OR_RETURN(act, json::get_string_or(j, "hidden_act", "silu", what));
  }
  if (act == "silu") return FfnActivation::kSilu;
  if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") {
    return FfnActivation::kGeluTanh;
  }
  if (act == "gelu") return FfnActivation::kGelu;
  return errorf(ErrorKind::kUnsupported,
                "{}: activation '{}' is not supported (silu, gelu, gelu_pytorch_tanh)", what, act);
}

// Gemma3's sliding-window layers: `layer_types` ("sliding_attention" / "full_attention" per
// layer), else every `sliding_window_pattern`-th layer (default 6) is global.
Status read_sliding_window(const Json& j, LlamaConfig& c, const std::string& what) {
  HS_ASSIGN_OR_RETURN(c.sliding_window, json::get_int_or(j, "sliding_window", 0, what));
  if (c.sliding_window <= 0) {
    return errorf(ErrorKind::kParse, "{}: sliding_window is {}, expected > 0", what,
                  c.sliding_window);
  }
  HS_ASSIGN_OR_RETURN(c.rope_local_theta,
                      json::get_number_or(j, "rope_local_base_freq", 10000.0, what));
  c.sliding_window_layers.clear();
  if (const Json* types = json::member(j, "layer_types"); types != nullptr && !types->is_null()) {
    if (!types->is_array() || static_cast<int64_t>(types->size()) != c.n_layers) {
      return errorf(ErrorKind::kParse,
                    "{}: layer_types is {}, expected a list of {} entries (one per layer)", what,
                    json::text(*types), c.n_layers);
    }
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const Json& t = (*types)[static_cast<size_t>(l)];
      const std::string type = t.is_string() ? t.get<std::string>() : json::text(t);
      if (type == "sliding_attention") {
        c.sliding_window_layers.push_back(l);
      } else if (type != "full_attention") {
        return errorf(ErrorKind::kParse,
                      "{}: layer_types[{}] is '{}', expected sliding_attention or full_attention",
                      what, l, type);
      }
    }
    return ok_status();
  }
  HS_ASSIGN_OR_RETURN(int64_t pattern, json::get_int_or(j, "sliding_window_pattern", 6, what));
  if (pattern <= 0) {
    return errorf(ErrorKind::kParse, "{}: sliding_window_pattern is {}, expected > 0", what,
                  pattern);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    if ((l + 1) % pattern != 0) c.sliding_window_layers.push_back(l);
  }
  return ok_status();
}

// Gemma and Gemma3: embedding * sqrt(D), GELU, (1 + w) norms (folded at load), scores scaled
// by query_pre_attn_scalar^-0.5 (Gemma3), Gemma3's q/k norms, post norms and sliding window.
Status read_gemma_features(const Json& j, LlamaConfig& c, const std::string& what) {
  c.embedding_multiplier = std::sqrt(static_cast<double>(c.dim));
  const Json* attn_cap = json::member(j, "attn_logit_softcapping");
  if (attn_cap != nullptr && !attn_cap->is_null()) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: attn_logit_softcapping is {}; attention-score soft-capping is not "
                  "supported",
                  what, json::text(*attn_cap));
  }
  if (const Json* cap = json::member(j, "final_logit_softcapping"); cap != nullptr && !cap->is_null()) {
    HS_ASSIGN_OR_RETURN(c.final_logit_softcapping,
                        json::get_number_or(j, "final_logit_softcapping", 0.0, what));
  }
  if (c.family != "gemma3") return ok_status();
  c.qk_norm = true;
  c.post_norms = true;
  HS_ASSIGN_OR_RETURN(double qpas, json::get_number_or(j, "query_pre_attn_scalar",
                                                      static_cast<double>(c.head_dim), what));
  if (!(qpas > 0.0)) {
    return errorf(ErrorKind::kParse, "{}: query_pre_attn_scalar is {}, expected > 0", what, qpas);
  }
  if (qpas != static_cast<double>(c.head_dim)) c.attention_multiplier = 1.0 / std::sqrt(qpas);
  return read_sliding_window(j, c, what);
}

// Family keys on top of the Llama ones.
Status read_family_features(const Json& j, LlamaConfig& c, const std::string& what) {
  if (is_gemma(c)) return read_gemma_features(j, c, what);
  HS_TRY(hf::read_phi_glm_features(j, c, what));
  if (c.family != "llama") {
    HS_ASSIGN_OR_RETURN(bool sliding, json::get_bool_or(j, "use_sliding_window", false, what));
    if (sliding) {
      return errorf(ErrorKind::kUnsupported,
                    "{}: use_sliding_window is true; sliding-window attention is not supported",
                    what);
    }
  }
  if (c.family == "qwen2") c.attention_bias = true;  // Qwen2 always has q/k/v biases, no key
  if (c.family == "qwen3") c.qk_norm = true;
  if (c.family == "smollm3") {
    HS_ASSIGN_OR_RETURN(c.no_rope_layers, read_no_rope_layers(j, c.n_layers, what));
  }
  if (c.family == "granite") {
    HS_ASSIGN_OR_RETURN(c.embedding_multiplier,
                        json::get_number_or(j, "embedding_multiplier", 1.0, what));
    HS_ASSIGN_OR_RETURN(double attention,
                        json::get_number_or(j, "attention_multiplier", 1.0, what));
    c.attention_multiplier = attention;
    HS_ASSIGN_OR_RETURN(c.residual_multiplier,
                        json::get_number_or(j, "residual_multiplier", 1.0, what));
    HS_ASSIGN_OR_RETURN(c.logits_scaling, json::get_number_or(j, "logits_scaling", 1.0, what));
  }
  return ok_status();
}

// `rope_scaling`, or (newer transformers) `rope_parameters`, which also holds rope_theta.
Result<std::optional<RopeScaling>> read_rope_scaling(const Json& j, const std::string& family,
                                                     const std::string& what) {
  const Json* rs = json::member(j, "rope_scaling");
  const bool parameters = rs == nullptr;
  if (parameters) rs = json::member(j, "rope_parameters");
  if (rs == nullptr) return std::optional<RopeScaling>();
  if (!rs->is_object()) {
    return errorf(ErrorKind::kParse, "{}: rope_scaling is a {}, expected an object", what,
                  json::type_name(*rs));
  }
  HS_ASSIGN_OR_RETURN(std::string type, json::get_string_or(*rs, "type", "", what));
  HS_ASSIGN_OR_RETURN(type, json::get_string_or(*rs, "rope_type", type, what));
  if (type == "default" || (parameters && type.empty())) return std::optional<RopeScaling>();
  if (hf::is_longrope_type(type) && family == "phi3") {
    return std::optional<RopeScaling>();  // read by read_phi_glm_features
  }
  if (type != "llama3") {
    return errorf(ErrorKind::kUnsupported,
                  "{}: rope_scaling type '{}' is not supported, only llama3 (and longrope for "
                  "phi3)",
                  what, type);
  }
  RopeScaling s;
  HS_ASSIGN_OR_RETURN(s.factor, json::get_number_or(*rs, "factor", s.factor, what));
  HS_ASSIGN_OR_RETURN(s.low_freq_factor,
                      json::get_number_or(*rs, "low_freq_factor", s.low_freq_factor, what));
  HS_ASSIGN_OR_RETURN(s.high_freq_factor,
                      json::get_number_or(*rs, "high_freq_factor", s.high_freq_factor, what));
  HS_ASSIGN_OR_RETURN(s.original_max_position_embeddings,
                      json::get_int_or(*rs, "original_max_position_embeddings",
                                       s.original_max_position_embeddings, what));
  return std::optional<RopeScaling>(s);
}

// Where each tensor lives: one safetensors file, or the shards named by the index.
class WeightSource {
 public:
  static Result<WeightSource> open(const std::string& dir) {
    WeightSource src;
    const std::string single = dir + "/model.safetensors";
    if (path_exists(single)) {
      HS_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(single));
      src.files_.push_back(std::move(f));
      for (const SafetensorsTensor& t : src.files_[0].tensors()) src.where_[t.name] = 0;
      return src;
    }
    const std::string index_path = dir + "/model.safetensors.index.json";
    if (!path_exists(index_path)) {
      return errorf(ErrorKind::kNotFound,
                    "{}: neither model.safetensors nor model.safetensors.index.json exists", dir);
    }
    HS_ASSIGN_OR_RETURN(Json index, json::read_file(index_path));
    const Json* map = json::member(index, "weight_map");
    if (map == nullptr || !map->is_object()) {
      return errorf(ErrorKind::kParse, "{}: 'weight_map' object is missing", index_path);
    }
    std::map<std::string, size_t> shard_ids;
    for (const auto& [name, shard] : map->items()) {
      if (!shard.is_string()) {
        return errorf(ErrorKind::kParse, "{}: weight_map['{}'] is a {}, expected a file name",
                      index_path, name, json::type_name(shard));
      }
      const std::string file = shard.get<std::string>();
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
        return errorf(ErrorKind::kParse,
                      "{}: weight_map['{}'] = '{}' is not a file name in the "
                      "folder",
                      index_path, name, file);
      }
      auto [it, added] = shard_ids.emplace(file, src.files_.size());
      if (added) {
        HS_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(dir + "/" + file));
        src.files_.push_back(std::move(f));
      }
      if (src.files_[it->second].find(name) == nullptr) {
        return errorf(ErrorKind::kNotFound,
                      "{}: tensor '{}' is mapped to {} which does not "
                      "hold it",
                      index_path, name, file);
      }
      src.where_[name] = it->second;
    }
    return src;
  }

  bool has(const std::string& name) const { return where_.count(name) != 0; }

  // Tensors no load() asked for (HF's derived buffers aside: rotary_emb.inv_freq, CodeGen's
  // attn.causal_mask and attn.masked_bias), sorted.
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    for (const auto& [name, file] : where_) {
      const bool derived = name.ends_with(".rotary_emb.inv_freq") ||
                           name.ends_with(".attn.causal_mask") ||
                           name.ends_with(".attn.masked_bias");
      if (read_.count(name) == 0 && !derived) out.push_back(name);
    }
    return out;
  }

  Result<Weight> load(const std::string& name, const std::vector<int64_t>& shape,
                      const std::string& dir) const {
    auto it = where_.find(name);
    if (it == where_.end()) {
      return errorf(ErrorKind::kNotFound, "{}: tensor '{}' is missing", dir, name);
    }
    const SafetensorsFile& f = files_[it->second];
    read_.insert(name);
    HS_ASSIGN_OR_RETURN(Weight w, f.load(name));
    if (w.shape != shape) {
      return errorf(ErrorKind::kShape, "{}: tensor '{}' has shape [{}], expected [{}]", f.path(),
                    name, fmt::join(w.shape, ","), fmt::join(shape, ","));
    }
    return w;
  }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;
  mutable std::set<std::string> read_;
};

// A Gemma RMSNorm weight w as the plain one: 1 + w, in float32 as transformers computes it.
Weight gemma_norm(const Weight& w) {
  std::vector<float> v(w.f32().begin(), w.f32().end());
  for (float& x : v) x = 1.0f + x;
  return Weight::from_floats(w.shape, v);
}

// The weights of the llama-like families (model.layers.N...), q/k rows in rotate-half layout.
Result<LlamaWeights> load_llama_weights(const LlamaConfig& c, const WeightSource& src,
                                        const std::string& dir) {
  const int64_t d = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const int64_t f = c.hidden_dim;
  LlamaWeights w;
  HS_ASSIGN_OR_RETURN(w.tok_embeddings,
                      src.load("model.embed_tokens.weight", {c.vocab_size, d}, dir));
  HS_ASSIGN_OR_RETURN(w.norm, src.load("model.norm.weight", {d}, dir));
  if (!c.tied_embeddings) {
    HS_ASSIGN_OR_RETURN(w.output, src.load("lm_head.weight", {c.vocab_size, d}, dir));
  } else if (src.has("lm_head.weight")) {
    // Tied, and the checkpoint carries the head anyway: it must be the embedding.
    HS_ASSIGN_OR_RETURN(Weight head, src.load("lm_head.weight", {c.vocab_size, d}, dir));
    if (!weights_bit_equal(head, w.tok_embeddings)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "{}: tie_word_embeddings is true but lm_head.weight differs from "
                    "model.embed_tokens.weight",
                    dir);
    }
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    // In the checkpoint's order (the first missing or misshapen tensor is the one reported).
    HS_ASSIGN_OR_RETURN(lw.attn_norm, src.load(p + "input_layernorm.weight", {d}, dir));
    if (c.family == "phi3") {  // qkv_proj [q + 2 kv, D]: q rows, then k, then v
      HS_ASSIGN_OR_RETURN(Weight qkv,
                          src.load(p + "self_attn.qkv_proj.weight", {q + 2 * kv, d}, dir));
      lw.wq = hf::weight_row_range(qkv, 0, q);
      lw.wk = hf::weight_row_range(qkv, q, q + kv);
      lw.wv = hf::weight_row_range(qkv, q + kv, q + 2 * kv);
    } else {
      HS_ASSIGN_OR_RETURN(lw.wq, src.load(p + "self_attn.q_proj.weight", {q, d}, dir));
      HS_ASSIGN_OR_RETURN(lw.wk, src.load(p + "self_attn.k_proj.weight", {kv, d}, dir));
      HS_ASSIGN_OR_RETURN(lw.wv, src.load(p + "self_attn.v_proj.weight", {kv, d}, dir));
    }
    HS_ASSIGN_OR_RETURN(lw.wo, src.load(p + "self_attn.o_proj.weight", {d, q}, dir));
    HS_ASSIGN_OR_RETURN(lw.ffn_norm, src.load(p + "post_attention_layernorm.weight", {d}, dir));
    if (c.family == "phi3" || c.family == "glm") {  // gate_up_proj [2F, D]: gate rows, then up
      HS_ASSIGN_OR_RETURN(Weight gate_up,
                          src.load(p + "mlp.gate_up_proj.weight", {2 * f, d}, dir));
      lw.w1 = hf::weight_row_range(gate_up, 0, f);
      lw.w3 = hf::weight_row_range(gate_up, f, 2 * f);
      HS_ASSIGN_OR_RETURN(lw.w2, src.load(p + "mlp.down_proj.weight", {d, f}, dir));
    } else {
      HS_ASSIGN_OR_RETURN(lw.w1, src.load(p + "mlp.gate_proj.weight", {f, d}, dir));
      HS_ASSIGN_OR_RETURN(lw.w2, src.load(p + "mlp.down_proj.weight", {d, f}, dir));
      HS_ASSIGN_OR_RETURN(lw.w3, src.load(p + "mlp.up_proj.weight", {f, d}, dir));
    }
    if (c.attention_bias) {
      HS_ASSIGN_OR_RETURN(lw.bq, src.load(p + "self_attn.q_proj.bias", {q}, dir));
      HS_ASSIGN_OR_RETURN(lw.bk, src.load(p + "self_attn.k_proj.bias", {kv}, dir));
      HS_ASSIGN_OR_RETURN(lw.bv, src.load(p + "self_attn.v_proj.bias", {kv}, dir));
    }
    if (c.qk_norm) {
      HS_ASSIGN_OR_RETURN(lw.q_norm, src.load(p + "self_attn.q_norm.weight", {c.head_dim}, dir));
      HS_ASSIGN_OR_RETURN(lw.k_norm, src.load(p + "self_attn.k_norm.weight", {c.head_dim}, dir));
    }
    if (c.post_norms) {  // Gemma3: post_attention_layernorm is after attention; then the FFN's
      lw.post_attn_norm = lw.ffn_norm;
      HS_ASSIGN_OR_RETURN(lw.ffn_norm, src.load(p + "pre_feedforward_layernorm.weight", {d}, dir));
      HS_ASSIGN_OR_RETURN(lw.post_ffn_norm,
                          src.load(p + "post_feedforward_layernorm.weight", {d}, dir));
    }
    if (is_gemma(c)) {  // Gemma's RMSNorm multiplies by (1 + w): fold the 1 in
      for (Weight* n : {&lw.attn_norm, &lw.ffn_norm, &lw.q_norm, &lw.k_norm, &lw.post_attn_norm,
                        &lw.post_ffn_norm}) {
        if (!n->empty()) *n = gemma_norm(*n);
      }
    }
    if (c.family == "glm") {  // interleaved RoPE pairs in the rotary part -> rotate-half
      auto perm = [&](const Weight& x, int64_t heads) {
        return x.empty() ? x
                         : permute_interleaved_to_rotate_half(x, heads, c.head_dim, c.rope_dims());
      };
      lw.wq = perm(lw.wq, c.n_heads), lw.bq = perm(lw.bq, c.n_heads);
      lw.wk = perm(lw.wk, c.n_kv_heads), lw.bk = perm(lw.bk, c.n_kv_heads);
    }
  }
  if (is_gemma(c)) w.norm = gemma_norm(w.norm);
  return w;
}

}  // namespace

Result<LlamaConfig> load_hf_config(const std::string& path) {
  HS_ASSIGN_OR_RETURN(Json j, json::read_file(path));
  if (!j.is_object()) return errorf(ErrorKind::kParse, "{}: expected a JSON object", path);
  LlamaConfig c;
  HS_ASSIGN_OR_RETURN(c.family, read_family(j, path));
  if (c.family == "codegen") {
    HS_ASSIGN_OR_RETURN(c, hf::read_codegen_config(j, path));
    c.name = std::filesystem::path(path).parent_path().filename().string();
    if (c.name.empty()) c.name = "codegen";
    HS_TRY(c.validate(path));
    return c;
  }
  HS_ASSIGN_OR_RETURN(c.ffn_act, read_activation(j, c, path));
  HS_ASSIGN_OR_RETURN(bool mlp_bias, json::get_bool_or(j, "mlp_bias", false, path));
  if (mlp_bias) return errorf(ErrorKind::kUnsupported, "{}: mlp_bias is not supported", path);
  HS_ASSIGN_OR_RETURN(c.dim, json::get_int(j, "hidden_size", path));
  HS_ASSIGN_OR_RETURN(c.n_layers, json::get_int(j, "num_hidden_layers", path));
  HS_ASSIGN_OR_RETURN(c.n_heads, json::get_int(j, "num_attention_heads", path));
  HS_ASSIGN_OR_RETURN(c.n_kv_heads, json::get_int_or(j, "num_key_value_heads", c.n_heads, path));
  HS_ASSIGN_OR_RETURN(c.hidden_dim, json::get_int(j, "intermediate_size", path));
  HS_ASSIGN_OR_RETURN(c.vocab_size, json::get_int(j, "vocab_size", path));
  if (c.n_heads <= 0) {
    return errorf(ErrorKind::kInvalidArgument, "{}: num_attention_heads is {}, expected > 0", path,
                  c.n_heads);
  }
  // GlmConfig's head_dim defaults to 128; the others' to D / H.
  HS_ASSIGN_OR_RETURN(c.head_dim, json::get_int_or(j, "head_dim",
                                                   c.family == "glm" ? 128 : c.dim / c.n_heads,
                                                   path));
  HS_ASSIGN_OR_RETURN(c.max_seq_len, json::get_int_or(j, "max_position_embeddings", 2048, path));
  HS_ASSIGN_OR_RETURN(c.rms_eps, json::get_number_or(j, "rms_norm_eps", 1e-6, path));
  double theta = 10000.0;
  if (const Json* rp = json::member(j, "rope_parameters"); rp != nullptr && rp->is_object()) {
    HS_ASSIGN_OR_RETURN(theta, json::get_number_or(*rp, "rope_theta", theta, path));
  }
  HS_ASSIGN_OR_RETURN(c.rope_theta, json::get_number_or(j, "rope_theta", theta, path));
  HS_ASSIGN_OR_RETURN(c.rope_scaling, read_rope_scaling(j, c.family, path));
  // Gemma's configs rely on transformers' default (tied).
  HS_ASSIGN_OR_RETURN(c.tied_embeddings,
                      json::get_bool_or(j, "tie_word_embeddings", is_gemma(c), path));
  HS_ASSIGN_OR_RETURN(c.attention_bias, json::get_bool_or(j, "attention_bias", false, path));
  HS_TRY(read_family_features(j, c, path));
  c.name = std::filesystem::path(path).parent_path().filename().string();
  if (c.name.empty()) c.name = "llama";
  HS_TRY(c.validate(path));
  return c;
}

Result<LlamaModel> load_hf_model(const std::string& dir) {
  HS_TRY(check_directory(dir));
  LlamaModel model;
  model.source = dir;
  HS_ASSIGN_OR_RETURN(model.config, load_hf_config(dir + "/config.json"));
  const LlamaConfig& c = model.config;
  HS_ASSIGN_OR_RETURN(WeightSource src, WeightSource::open(dir));
  if (c.family == "codegen") {
    HS_ASSIGN_OR_RETURN(model.weights,
                        hf::load_codegen_weights(c, [&](const std::string& name,
                                                        const std::vector<int64_t>& shape) {
                          return src.load(name, shape, dir);
                        }));
  } else {
    HS_ASSIGN_OR_RETURN(model.weights, load_llama_weights(c, src, dir));
  }
  if (std::vector<std::string> unread = src.unread(); !unread.empty()) {
    const size_t shown = std::min<size_t>(unread.size(), 8);
    return errorf(
        ErrorKind::kUnsupported,
        "{}: {} tensor(s) that a {} model does not use: {}{} (the checkpoint has "
        "features headsplit does not read; refusing to drop them silently)",
        dir, unread.size(), c.family,
        fmt::join(unread.begin(), unread.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
        unread.size() > shown ? ", ..." : "");
  }
  HS_TRY(model.validate());
  if (path_exists(dir + "/tokenizer.json")) {
    HS_ASSIGN_OR_RETURN(tokenizer::TokenizerData tok, load_hf_tokenizer(dir));
    if (static_cast<int64_t>(tok.pieces.size()) > c.vocab_size) {
      return errorf(ErrorKind::kShape, "{}: tokenizer.json has {} tokens but vocab_size is {}", dir,
                    tok.pieces.size(), c.vocab_size);
    }
    model.tokenizer = std::move(tok);
  }
  return model;
}

}  // namespace hs::frontend

// Hugging Face llama folders: config.json -> LlamaConfig, (sharded) safetensors -> weights.
#include <filesystem>
#include <map>

#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/support/file.h"
#include "hf_json.h"

namespace hs::frontend {

namespace {

using json::Json;

Status check_architecture(const Json& j, const std::string& what) {
  std::vector<std::string> archs;
  if (const Json* a = json::member(j, "architectures"); a != nullptr && a->is_array()) {
    for (const Json& x : *a) {
      if (x.is_string()) archs.push_back(x.get<std::string>());
    }
  }
  HS_ASSIGN_OR_RETURN(std::string model_type, json::get_string_or(j, "model_type", "", what));
  for (const std::string& a : archs) {
    if (a == "LlamaForCausalLM") return ok_status();
  }
  if (archs.empty() && model_type == "llama") return ok_status();
  return errorf(ErrorKind::kUnsupported,
                "{}: architecture [{}] (model_type '{}') is not supported, expected "
                "LlamaForCausalLM",
                what, fmt::join(archs, ", "), model_type);
}

Result<std::optional<RopeScaling>> read_rope_scaling(const Json& j, const std::string& what) {
  const Json* rs = json::member(j, "rope_scaling");
  if (rs == nullptr) return std::optional<RopeScaling>();
  if (!rs->is_object()) {
    return errorf(ErrorKind::kParse, "{}: rope_scaling is a {}, expected an object", what,
                  json::type_name(*rs));
  }
  HS_ASSIGN_OR_RETURN(std::string type, json::get_string_or(*rs, "type", "", what));
  HS_ASSIGN_OR_RETURN(type, json::get_string_or(*rs, "rope_type", type, what));
  if (type == "default") return std::optional<RopeScaling>();
  if (type != "llama3") {
    return errorf(ErrorKind::kUnsupported,
                  "{}: rope_scaling type '{}' is not supported, only "
                  "llama3",
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

  Result<Weight> load(const std::string& name, const std::vector<int64_t>& shape,
                      const std::string& dir) const {
    auto it = where_.find(name);
    if (it == where_.end()) {
      return errorf(ErrorKind::kNotFound, "{}: tensor '{}' is missing", dir, name);
    }
    const SafetensorsFile& f = files_[it->second];
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
};

}  // namespace

Result<LlamaConfig> load_hf_config(const std::string& path) {
  HS_ASSIGN_OR_RETURN(Json j, json::read_file(path));
  if (!j.is_object()) return errorf(ErrorKind::kParse, "{}: expected a JSON object", path);
  HS_TRY(check_architecture(j, path));
  HS_ASSIGN_OR_RETURN(std::string act, json::get_string_or(j, "hidden_act", "silu", path));
  if (act != "silu") {
    return errorf(ErrorKind::kUnsupported, "{}: hidden_act '{}' is not supported, only silu", path,
                  act);
  }
  HS_ASSIGN_OR_RETURN(bool mlp_bias, json::get_bool_or(j, "mlp_bias", false, path));
  if (mlp_bias) return errorf(ErrorKind::kUnsupported, "{}: mlp_bias is not supported", path);
  LlamaConfig c;
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
  HS_ASSIGN_OR_RETURN(c.head_dim, json::get_int_or(j, "head_dim", c.dim / c.n_heads, path));
  HS_ASSIGN_OR_RETURN(c.max_seq_len, json::get_int_or(j, "max_position_embeddings", 2048, path));
  HS_ASSIGN_OR_RETURN(c.rms_eps, json::get_number_or(j, "rms_norm_eps", 1e-6, path));
  HS_ASSIGN_OR_RETURN(c.rope_theta, json::get_number_or(j, "rope_theta", 10000.0, path));
  HS_ASSIGN_OR_RETURN(c.rope_scaling, read_rope_scaling(j, path));
  HS_ASSIGN_OR_RETURN(c.tied_embeddings, json::get_bool_or(j, "tie_word_embeddings", false, path));
  HS_ASSIGN_OR_RETURN(c.attention_bias, json::get_bool_or(j, "attention_bias", false, path));
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
  const int64_t d = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const int64_t f = c.hidden_dim;
  LlamaWeights& w = model.weights;
  HS_ASSIGN_OR_RETURN(w.tok_embeddings,
                      src.load("model.embed_tokens.weight", {c.vocab_size, d}, dir));
  HS_ASSIGN_OR_RETURN(w.norm, src.load("model.norm.weight", {d}, dir));
  if (!c.tied_embeddings) {
    HS_ASSIGN_OR_RETURN(w.output, src.load("lm_head.weight", {c.vocab_size, d}, dir));
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    const std::pair<std::string, std::vector<int64_t>> specs[] = {
        {"input_layernorm.weight", {d}},      {"self_attn.q_proj.weight", {q, d}},
        {"self_attn.k_proj.weight", {kv, d}}, {"self_attn.v_proj.weight", {kv, d}},
        {"self_attn.o_proj.weight", {d, q}},  {"post_attention_layernorm.weight", {d}},
        {"mlp.gate_proj.weight", {f, d}},     {"mlp.down_proj.weight", {d, f}},
        {"mlp.up_proj.weight", {f, d}}};
    Weight* slots[] = {&lw.attn_norm, &lw.wq, &lw.wk, &lw.wv, &lw.wo,
                       &lw.ffn_norm,  &lw.w1, &lw.w2, &lw.w3};
    for (size_t i = 0; i < std::size(specs); ++i) {
      HS_ASSIGN_OR_RETURN(*slots[i], src.load(p + specs[i].first, specs[i].second, dir));
    }
    if (c.attention_bias) {
      HS_ASSIGN_OR_RETURN(lw.bq, src.load(p + "self_attn.q_proj.bias", {q}, dir));
      HS_ASSIGN_OR_RETURN(lw.bk, src.load(p + "self_attn.k_proj.bias", {kv}, dir));
      HS_ASSIGN_OR_RETURN(lw.bv, src.load(p + "self_attn.v_proj.bias", {kv}, dir));
    }
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

// Test helper: writes Hugging Face folders (see hf_writer.h).
#include "frontend/hf_writer.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_set>

#include "headsplit/support/file.h"

namespace hs::testing {

namespace {

using frontend::StoredDType;
using nlohmann::json;
using tokenizer::TokenizerData;
using tokenizer::TokenizerKind;
using tokenizer::TokenType;

constexpr const char* kSpace = "\xe2\x96\x81";  // "▁"

std::string dump(const json& j) { return j.dump(1, ' ', false, json::error_handler_t::replace); }

std::string dtype_name(StoredDType dtype) {
  switch (dtype) {
    case StoredDType::kF32: return "F32";
    case StoredDType::kF16: return "F16";
    case StoredDType::kBF16: return "BF16";
  }
  return "?";
}

TokenType type_of(const TokenizerData& t, size_t id) {
  return t.types.empty() ? TokenType::kNormal : t.types[id];
}

size_t codepoints(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// SentencePiece merges rebuilt from scores: best score first, each piece split at the first
// codepoint boundary where both halves are pieces already available (single codepoints always
// are; longer pieces once they have been made).
json spm_merges(const TokenizerData& t) {
  std::unordered_set<std::string> available;
  std::unordered_set<std::string> vocab(t.pieces.begin(), t.pieces.end());
  std::vector<size_t> order;
  for (size_t i = 0; i < t.pieces.size(); ++i) {
    if (type_of(t, i) == TokenType::kNormal && codepoints(t.pieces[i]) >= 2) order.push_back(i);
    if (codepoints(t.pieces[i]) == 1) available.insert(t.pieces[i]);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return t.scores[a] > t.scores[b]; });
  json merges = json::array();
  for (size_t id : order) {
    const std::string& p = t.pieces[id];
    for (size_t k = 1; k < p.size(); ++k) {
      if ((static_cast<unsigned char>(p[k]) & 0xc0) == 0x80) continue;
      const std::string a = p.substr(0, k), b = p.substr(k);
      if (available.count(a) && available.count(b)) {
        merges.push_back(a + " " + b);
        break;
      }
    }
    available.insert(p);
  }
  return merges;
}

json pre_tokenizer_json(const std::string& name) {
  const json byte_level_regex = {{"type", "ByteLevel"},
                                 {"add_prefix_space", false},
                                 {"trim_offsets", true},
                                 {"use_regex", true}};
  if (name == "llama3") {
    const char* regex =
        R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
    json split = {{"type", "Split"},
                  {"pattern", {{"Regex", regex}}},
                  {"behavior", "Isolated"},
                  {"invert", false}};
    json bl = byte_level_regex;
    bl["use_regex"] = false;
    return {{"type", "Sequence"}, {"pretokenizers", {split, bl}}};
  }
  if (name == "smollm") {
    json digits = {{"type", "Digits"}, {"individual_digits", true}};
    return {{"type", "Sequence"}, {"pretokenizers", {digits, byte_level_regex}}};
  }
  return byte_level_regex;  // gpt2
}

// The rows of the weights one after another (a fused projection).
frontend::Weight concat_rows(std::initializer_list<const frontend::Weight*> parts) {
  std::vector<float> values;
  std::vector<int64_t> shape = (*parts.begin())->shape;
  shape[0] = 0;
  for (const frontend::Weight* w : parts) {
    values.insert(values.end(), w->f32().begin(), w->f32().end());
    shape[0] += w->shape[0];
  }
  return frontend::Weight::from_floats(shape, values);
}

}  // namespace

std::vector<std::byte> encode_floats(std::span<const float> values, StoredDType dtype) {
  std::vector<std::byte> out(values.size() *
                             static_cast<size_t>(frontend::stored_dtype_size(dtype)));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == StoredDType::kF32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
      continue;
    }
    const uint16_t h = dtype == StoredDType::kF16 ? frontend::f32_to_f16(values[i])
                                                  : frontend::f32_to_bf16(values[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                         size_t header_alignment) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % header_alignment != 0) text.push_back(' ');
  std::vector<std::byte> bytes(8 + text.size());
  const uint64_t n = text.size();
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, text.data(), text.size());
  for (const SafetensorsEntry& t : tensors) bytes.insert(bytes.end(), t.data.begin(), t.data.end());
  return write_file_atomic(path, bytes);
}

Status write_hf_tokenizer(const TokenizerData& t, const std::string& dir) {
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < t.pieces.size(); ++i) {
    vocab[t.pieces[i]] = i;
    const TokenType type = type_of(t, i);
    if (type == TokenType::kControl || type == TokenType::kUserDefined ||
        type == TokenType::kUnknown) {
      added.push_back({{"id", i},
                       {"content", t.pieces[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type != TokenType::kUserDefined}});
    }
  }
  json tok = {
      {"version", "1.0"}, {"added_tokens", added}, {"truncation", nullptr}, {"padding", nullptr}};
  json model = {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}};
  if (t.kind == TokenizerKind::kByteLevelBpe) {
    model["byte_fallback"] = false;
    model["merges"] = t.merges;
    tok["normalizer"] = nullptr;
    tok["pre_tokenizer"] = pre_tokenizer_json(t.pre_tokenizer);
    tok["decoder"] = {{"type", "ByteLevel"},
                      {"add_prefix_space", true},
                      {"trim_offsets", true},
                      {"use_regex", true}};
  } else if (t.kind == TokenizerKind::kSpm) {
    model["byte_fallback"] = true;
    model["fuse_unk"] = true;
    if (t.unk_id >= 0) model["unk_token"] = t.pieces[t.unk_id];
    model["merges"] = spm_merges(t);
    json normalizers = json::array();
    if (t.add_space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
    normalizers.push_back(
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
    tok["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
    tok["pre_tokenizer"] = nullptr;
    tok["decoder"] = {{"type", "Sequence"},
                      {"decoders",
                       {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                        {{"type", "ByteFallback"}},
                        {{"type", "Fuse"}}}}};
  } else {
    return errorf(ErrorKind::kUnsupported, "{}: cannot write a llama2c tokenizer as tokenizer.json",
                  dir);
  }
  tok["model"] = model;
  HS_TRY(write_file_atomic(dir + "/tokenizer.json", dump(tok)));

  json config = {{"add_bos_token", t.add_bos}};
  if (t.bos_id >= 0) config["bos_token"] = t.pieces[t.bos_id];
  if (t.eos_id >= 0) config["eos_token"] = {{"content", t.pieces[t.eos_id]}, {"special", true}};
  if (!t.chat_template.empty()) config["chat_template"] = t.chat_template;
  HS_TRY(write_file_atomic(dir + "/tokenizer_config.json", dump(config)));
  json gen = json::object();
  if (t.bos_id >= 0) gen["bos_token_id"] = t.bos_id;
  if (t.eos_id >= 0) {
    if (t.extra_eos_ids.empty()) {
      gen["eos_token_id"] = t.eos_id;
    } else {
      json list = {t.eos_id};
      for (int32_t id : t.extra_eos_ids) list.push_back(id);
      gen["eos_token_id"] = list;
    }
  }
  return write_file_atomic(dir + "/generation_config.json", dump(gen));
}

namespace {

// config.json and the tensors of the llama-like families (model.layers.N...).
Status llama_config_and_tensors(const frontend::LlamaModel& m, const std::string& dir,
                                const HfWriteOptions& o, std::vector<SafetensorsEntry>& entries) {
  const frontend::LlamaConfig& c = m.config;
  const std::pair<std::string, std::string> arch =
      c.family == "qwen2"     ? std::pair{"Qwen2ForCausalLM", "qwen2"}
      : c.family == "qwen3"   ? std::pair{"Qwen3ForCausalLM", "qwen3"}
      : c.family == "smollm3" ? std::pair{"SmolLM3ForCausalLM", "smollm3"}
      : c.family == "granite" ? std::pair{"GraniteForCausalLM", "granite"}
      : c.family == "gemma"   ? std::pair{"GemmaForCausalLM", "gemma"}
      : c.family == "gemma3"  ? std::pair{"Gemma3ForCausalLM", "gemma3_text"}
      : c.family == "phi3"    ? std::pair{"Phi3ForCausalLM", "phi3"}
      : c.family == "glm"     ? std::pair{"GlmForCausalLM", "glm"}
                              : std::pair{"LlamaForCausalLM", "llama"};
  const bool gemma = c.family == "gemma" || c.family == "gemma3";
  json config = {{"architectures", {arch.first}},
                 {"model_type", arch.second},
                 {"hidden_size", c.dim},
                 {"num_hidden_layers", c.n_layers},
                 {"num_attention_heads", c.n_heads},
                 {"num_key_value_heads", c.n_kv_heads},
                 {"head_dim", c.head_dim},
                 {"intermediate_size", c.hidden_dim},
                 {"rms_norm_eps", c.rms_eps},
                 {"rope_theta", c.rope_theta},
                 {"tie_word_embeddings", c.tied_embeddings},
                 {"attention_bias", c.attention_bias},
                 {"vocab_size", c.vocab_size},
                 {"max_position_embeddings", c.max_seq_len},
                 {"hidden_act", "silu"},
                 {"torch_dtype", o.dtype == StoredDType::kBF16 ? "bfloat16" : "float32"}};
  if (c.rope_scaling) {
    config["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling->factor},
        {"low_freq_factor", c.rope_scaling->low_freq_factor},
        {"high_freq_factor", c.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  } else {
    config["rope_scaling"] = nullptr;
  }
  if (c.family == "qwen2") config.erase("attention_bias");  // Qwen2 has biases and no key
  if (c.family == "phi3" || c.family == "glm") {
    config["partial_rotary_factor"] =
        static_cast<double>(c.rope_dims()) / static_cast<double>(c.head_dim);
  }
  if (c.longrope) {  // Phi-3 layout: original_max_position_embeddings at the top level
    config["rope_scaling"] = {{"type", "longrope"},
                              {"short_factor", c.longrope->short_factor},
                              {"long_factor", c.longrope->long_factor}};
    config["original_max_position_embeddings"] = c.longrope->original_max_position_embeddings;
  }
  if (c.family == "smollm3") {
    json layers = json::array();  // 1: the layer uses RoPE
    for (int64_t l = 0; l < c.n_layers; ++l) layers.push_back(c.uses_rope(l) ? 1 : 0);
    config["no_rope_layers"] = layers;
  }
  if (c.family == "granite") {
    config["embedding_multiplier"] = c.embedding_multiplier;
    config["attention_multiplier"] = c.attention_multiplier.value_or(1.0);
    config["residual_multiplier"] = c.residual_multiplier;
    config["logits_scaling"] = c.logits_scaling;
  }
  if (gemma) {  // hidden_activation, and Gemma's (1 + w) norms (written as w - 1 below)
    config.erase("hidden_act");
    config["hidden_activation"] = c.ffn_act == frontend::FfnActivation::kGelu ? "gelu"
                                                                              : "gelu_pytorch_tanh";
    config["final_logit_softcapping"] =
        c.final_logit_softcapping > 0 ? json(c.final_logit_softcapping) : json(nullptr);
    config["attn_logit_softcapping"] = nullptr;
  }
  if (c.family == "gemma3") {
    config["query_pre_attn_scalar"] =
        c.attention_multiplier ? 1.0 / (*c.attention_multiplier * *c.attention_multiplier)
                               : static_cast<double>(c.head_dim);
    config["sliding_window"] = c.sliding_window;
    config["rope_local_base_freq"] = c.rope_local_theta;
    json types = json::array();
    for (int64_t l = 0; l < c.n_layers; ++l) {
      types.push_back(c.is_sliding(l) ? "sliding_attention" : "full_attention");
    }
    if (o.sliding_window_pattern > 0) {
      config["sliding_window_pattern"] = o.sliding_window_pattern;
    } else {
      config["layer_types"] = types;
    }
  }
  if (o.rope_parameters) {  // newer transformers: theta and scaling under rope_parameters
    json rp =
        config["rope_scaling"].is_null() ? json{{"rope_type", "default"}} : config["rope_scaling"];
    rp["rope_theta"] = c.rope_theta;
    config["rope_parameters"] = rp;
    config.erase("rope_theta");
    config.erase("rope_scaling");
  }
  HS_TRY(write_file_atomic(dir + "/config.json", dump(config)));

  auto add = [&](const std::string& name, const frontend::Weight& w) {
    if (name == o.skip_tensor || w.empty()) return;
    std::vector<float> v(w.f32().begin(), w.f32().end());
    if (gemma && name.ends_with("norm.weight")) {
      for (float& x : v) x -= 1.0f;  // exact for weights in [0.5, 2] (Sterbenz)
    }
    entries.push_back({name, dtype_name(o.dtype), w.shape, encode_floats(v, o.dtype)});
  };
  add("model.embed_tokens.weight", m.weights.tok_embeddings);
  for (size_t l = 0; l < m.weights.layers.size(); ++l) {
    const frontend::LayerWeights& lw = m.weights.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    add(p + "input_layernorm.weight", lw.attn_norm);
    if (c.family == "phi3") {  // fused qkv_proj: q rows, k rows, v rows
      add(p + "self_attn.qkv_proj.weight", concat_rows({&lw.wq, &lw.wk, &lw.wv}));
    } else if (c.family == "glm") {  // interleaved RoPE pairs in the rotary part (HF GLM layout)
      auto inter = [&](const frontend::Weight& w, int64_t heads) {
        return w.empty() ? w
                         : frontend::permute_rotate_half_to_interleaved(w, heads, c.head_dim,
                                                                        c.rope_dims());
      };
      add(p + "self_attn.q_proj.weight", inter(lw.wq, c.n_heads));
      add(p + "self_attn.k_proj.weight", inter(lw.wk, c.n_kv_heads));
      add(p + "self_attn.v_proj.weight", lw.wv);
      add(p + "self_attn.q_proj.bias", inter(lw.bq, c.n_heads));
      add(p + "self_attn.k_proj.bias", inter(lw.bk, c.n_kv_heads));
      add(p + "self_attn.v_proj.bias", lw.bv);
    } else {
      add(p + "self_attn.q_proj.weight", lw.wq);
      add(p + "self_attn.k_proj.weight", lw.wk);
      add(p + "self_attn.v_proj.weight", lw.wv);
      add(p + "self_attn.q_proj.bias", lw.bq);
      add(p + "self_attn.k_proj.bias", lw.bk);
      add(p + "self_attn.v_proj.bias", lw.bv);
    }
    add(p + "self_attn.o_proj.weight", lw.wo);
    add(p + "self_attn.q_norm.weight", lw.q_norm);
    add(p + "self_attn.k_norm.weight", lw.k_norm);
    if (c.post_norms) {  // Gemma3's four norms
      add(p + "post_attention_layernorm.weight", lw.post_attn_norm);
      add(p + "pre_feedforward_layernorm.weight", lw.ffn_norm);
      add(p + "post_feedforward_layernorm.weight", lw.post_ffn_norm);
    } else {
      add(p + "post_attention_layernorm.weight", lw.ffn_norm);
    }
    if (c.family == "phi3" || c.family == "glm") {  // fused gate_up_proj: gate rows, up rows
      add(p + "mlp.gate_up_proj.weight", concat_rows({&lw.w1, &lw.w3}));
    } else {
      add(p + "mlp.gate_proj.weight", lw.w1);
      add(p + "mlp.up_proj.weight", lw.w3);
    }
    add(p + "mlp.down_proj.weight", lw.w2);
  }
  add("model.norm.weight", m.weights.norm);
  if (!c.tied_embeddings) add("lm_head.weight", m.weights.output);
  return ok_status();
}

// CodeGen (transformers' CodeGenForCausalLM): GPT-J style config keys; qkv_proj fused in
// CodeGenAttention's layout: 4 groups of rows, each the query, value and key rows of H/4 heads,
// with q/k rows in interleaved RoPE pairs within the rotary part (written here independently of
// the reader's split).
Status codegen_config_and_tensors(const frontend::LlamaModel& m, const std::string& dir,
                                  const HfWriteOptions& o,
                                  std::vector<SafetensorsEntry>& entries) {
  const frontend::LlamaConfig& c = m.config;
  json config = {{"architectures", {"CodeGenForCausalLM"}},
                 {"model_type", "codegen"},
                 {"n_embd", c.dim},
                 {"n_layer", c.n_layers},
                 {"n_head", c.n_heads},
                 {"n_inner", c.hidden_dim},
                 {"rotary_dim", c.rope_dims()},
                 {"n_positions", c.max_seq_len},
                 {"n_ctx", c.max_seq_len},
                 {"activation_function",
                  c.ffn_act == frontend::FfnActivation::kGelu ? "gelu" : "gelu_new"},
                 {"layer_norm_epsilon", c.rms_eps},
                 {"vocab_size", c.vocab_size},
                 {"tie_word_embeddings", c.tied_embeddings},
                 {"use_cache", true},
                 {"torch_dtype", o.dtype == StoredDType::kBF16 ? "bfloat16" : "float32"}};
  HS_TRY(write_file_atomic(dir + "/config.json", dump(config)));
  auto add = [&](const std::string& name, const frontend::Weight& w) {
    if (name == o.skip_tensor || w.empty()) return;
    entries.push_back({name, dtype_name(o.dtype), w.shape, encode_floats(w.f32(), o.dtype)});
  };
  const int64_t D = c.dim, H = c.n_heads, Dh = c.head_dim, R = c.rope_dims();
  const int64_t groups = 4, local = D / groups;
  // Rotate-half row j of a head -> interleaved row: j < R/2 -> 2j, R/2 <= j < R -> 2(j-R/2)+1.
  auto interleaved_row = [&](int64_t j) {
    return j >= R ? j : j < R / 2 ? 2 * j : 2 * (j - R / 2) + 1;
  };
  add("transformer.wte.weight", m.weights.tok_embeddings);
  for (size_t l = 0; l < m.weights.layers.size(); ++l) {
    const frontend::LayerWeights& lw = m.weights.layers[l];
    const std::string p = fmt::format("transformer.h.{}.", l);
    add(p + "ln_1.weight", lw.attn_norm);
    add(p + "ln_1.bias", lw.attn_norm_bias);
    std::vector<float> qkv(static_cast<size_t>(3 * D * D));
    // Group g, part (0 query, 1 value, 2 key), row u of the part: head g*H/4 + u/Dh, dim u%Dh.
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t part = 0; part < 3; ++part) {
        const frontend::Weight& src = part == 0 ? lw.wq : part == 1 ? lw.wv : lw.wk;
        for (int64_t u = 0; u < local; ++u) {
          const int64_t head = g * (H / groups) + u / Dh, i = u % Dh;
          // The graph's row head*Dh + i holds what the checkpoint keeps at interleaved_row(i).
          int64_t from = head * Dh + i;
          if (part != 1) {
            for (int64_t j = 0; j < Dh; ++j) {
              if (interleaved_row(j) == i) from = head * Dh + j;
            }
          }
          const int64_t to = g * 3 * local + part * local + u;
          std::copy_n(src.f32().begin() + from * D, D, qkv.begin() + to * D);
        }
      }
    }
    add(p + "attn.qkv_proj.weight", frontend::Weight::from_floats({3 * D, D}, qkv));
    add(p + "attn.out_proj.weight", lw.wo);
    add(p + "mlp.fc_in.weight", lw.w1);
    add(p + "mlp.fc_in.bias", lw.b1);
    add(p + "mlp.fc_out.weight", lw.w2);
    add(p + "mlp.fc_out.bias", lw.b2);
  }
  add("transformer.ln_f.weight", m.weights.norm);
  add("transformer.ln_f.bias", m.weights.norm_bias);
  if (!c.tied_embeddings) add("lm_head.weight", m.weights.output);
  add("lm_head.bias", m.weights.output_bias);
  return ok_status();
}

}  // namespace

Status write_hf_folder(const frontend::LlamaModel& m, const std::string& dir,
                       const HfWriteOptions& o) {
  const frontend::LlamaConfig& c = m.config;
  std::vector<SafetensorsEntry> entries;
  HS_TRY(c.family == "codegen" ? codegen_config_and_tensors(m, dir, o, entries)
                               : llama_config_and_tensors(m, dir, o, entries));

  if (o.shards <= 1) {
    HS_TRY(write_safetensors(dir + "/model.safetensors", entries));
  } else {
    json weight_map = json::object();
    size_t total = 0;
    const size_t per_shard = (entries.size() + o.shards - 1) / o.shards;
    for (int s = 0; s < o.shards; ++s) {
      const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, o.shards);
      const size_t begin = std::min(entries.size(), s * per_shard);
      const size_t end = std::min(entries.size(), begin + per_shard);
      std::vector<SafetensorsEntry> shard(entries.begin() + begin, entries.begin() + end);
      for (const SafetensorsEntry& e : shard) {
        weight_map[e.name] = file;
        total += e.data.size();
      }
      HS_TRY(write_safetensors(dir + "/" + file, shard));
    }
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    HS_TRY(write_file_atomic(dir + "/model.safetensors.index.json", dump(index)));
  }
  if (o.write_tokenizer && m.tokenizer) HS_TRY(write_hf_tokenizer(*m.tokenizer, dir));
  return ok_status();
}

}  // namespace hs::testing

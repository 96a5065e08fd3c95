// Phi-3 / Phi-4 and GLM config keys (hf_phi_glm.h).
//
// Partial rotary (transformers' Phi3/Glm apply_rotary_pos_emb): rotary_dim R = int(Dh * f); RoPE
// rotates q[..., :R] and passes q[..., R:] through; inverse frequencies theta^(-2i/R).
// longrope (_compute_longrope_parameters): inv_freq[i] = 1 / (ext[i] * theta^(2i/R)), ext the
// short factors, or the long ones beyond original_max_position_embeddings; cos and sin times
// attention_factor (given, or sqrt(1 + ln(s) / ln(original)), s = max_position_embeddings /
// original, 1 when s <= 1).
#include "hf_phi_glm.h"

#include <cmath>

namespace hs::frontend::hf {

namespace {

using json::Json;

Result<std::vector<double>> read_factors(const Json& rs, const char* key, const std::string& what) {
  const Json* list = json::member(rs, key);
  if (list == nullptr || !list->is_array()) {
    return errorf(ErrorKind::kParse, "{}: rope_scaling.{} is missing or not a list of numbers",
                  what, key);
  }
  std::vector<double> out;
  for (const Json& x : *list) {
    if (!x.is_number()) {
      return errorf(ErrorKind::kParse, "{}: rope_scaling.{} holds {}, expected numbers", what, key,
                    json::text(x));
    }
    out.push_back(x.get<double>());
  }
  return out;
}

Status read_longrope(const Json& j, LlamaConfig& c, const std::string& what) {
  const Json* rs = json::member(j, "rope_scaling");
  if (rs == nullptr) rs = json::member(j, "rope_parameters");
  if (rs == nullptr || !rs->is_object()) return ok_status();
  HS_ASSIGN_OR_RETURN(std::string type, json::get_string_or(*rs, "type", "", what));
  HS_ASSIGN_OR_RETURN(type, json::get_string_or(*rs, "rope_type", type, what));
  if (!is_longrope_type(type)) return ok_status();
  LongRope lr;
  HS_ASSIGN_OR_RETURN(lr.short_factor, read_factors(*rs, "short_factor", what));
  HS_ASSIGN_OR_RETURN(lr.long_factor, read_factors(*rs, "long_factor", what));
  // Phi-3 keeps the pretrained length at the top level; else rope_scaling's, else the context.
  HS_ASSIGN_OR_RETURN(int64_t inner, json::get_int_or(*rs, "original_max_position_embeddings",
                                                      c.max_seq_len, what));
  HS_ASSIGN_OR_RETURN(lr.original_max_position_embeddings,
                      json::get_int_or(j, "original_max_position_embeddings", inner, what));
  if (lr.original_max_position_embeddings <= 0) {
    return errorf(ErrorKind::kParse, "{}: original_max_position_embeddings is {}, expected > 0",
                  what, lr.original_max_position_embeddings);
  }
  const double fallback =
      longrope_default_attention_factor(c.max_seq_len, lr.original_max_position_embeddings);
  HS_ASSIGN_OR_RETURN(lr.attention_factor,
                      json::get_number_or(*rs, "attention_factor", fallback, what));
  c.longrope = std::move(lr);
  return ok_status();
}

}  // namespace

bool is_longrope_type(const std::string& type) { return type == "longrope" || type == "su"; }

Status read_phi_glm_features(const Json& j, LlamaConfig& c, const std::string& what) {
  if (c.family != "phi3" && c.family != "glm") return ok_status();
  HS_ASSIGN_OR_RETURN(double factor, json::get_number_or(j, "partial_rotary_factor",
                                                         c.family == "glm" ? 0.5 : 1.0, what));
  if (!(factor > 0.0 && factor <= 1.0)) {
    return errorf(ErrorKind::kParse, "{}: partial_rotary_factor is {}, expected (0, 1]", what,
                  factor);
  }
  // int(head_dim * factor), as transformers.
  const auto r = static_cast<int64_t>(static_cast<double>(c.head_dim) * factor);
  c.rotary_dim = r == c.head_dim ? 0 : r;
  if (c.family == "glm") {
    HS_ASSIGN_OR_RETURN(c.attention_bias, json::get_bool_or(j, "attention_bias", true, what));
    return ok_status();
  }
  if (const Json* w = json::member(j, "sliding_window"); w != nullptr) {
    HS_ASSIGN_OR_RETURN(int64_t window, json::as_int(*w, what + ": sliding_window"));
    if (window < c.max_seq_len) {
      return errorf(ErrorKind::kUnsupported,
                    "{}: sliding_window {} is below max_position_embeddings {}; sliding-window "
                    "attention is not supported",
                    what, window, c.max_seq_len);
    }
  }
  return read_longrope(j, c, what);
}

Weight weight_row_range(const Weight& w, int64_t begin, int64_t end) {
  int64_t row_elems = 1;
  for (size_t i = 1; i < w.shape.size(); ++i) row_elems *= w.shape[i];
  Weight out;
  out.shape = w.shape;
  out.shape[0] = end - begin;
  out.data = w.data.sub(static_cast<size_t>(begin * row_elems * 4),
                        static_cast<size_t>((end - begin) * row_elems * 4));
  return out;
}

}  // namespace hs::frontend::hf

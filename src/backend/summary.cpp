// Export summary measurements (op counts, attention projections, cache I/O, arena) and the
// artifact metadata of an export.
#include <string_view>

#include "export_internal.h"

namespace hs::backend {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// conv2d / linear nodes whose result belongs to layer 0's attention ("layers.0.attn.*").
int64_t attention_projections(const ir::Graph& g) {
  int64_t count = 0;
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased || (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear)) continue;
    if (starts_with(g.value(node.outputs[0]).name, "layers.0.attn.")) ++count;
  }
  return count;
}

int64_t count_named(const ir::Graph& g, const std::vector<ir::ValueId>& values,
                    std::string_view k_prefix, std::string_view v_prefix) {
  int64_t count = 0;
  for (ir::ValueId v : values) {
    const std::string& name = g.value(v).name;
    if (starts_with(name, k_prefix) || starts_with(name, v_prefix)) ++count;
  }
  return count;
}

// Bits of the named graph I/O value's quantization (0: float or absent).
int32_t io_bits(const ir::Graph& g, std::string_view name) {
  auto id = g.find_value(name);
  if (!id) return 0;
  const ir::QuantParams& q = g.type(*id).quant;
  return q.is_quantized() ? q.bits : 0;
}

std::string_view form_name(frontend::AttentionForm form) {
  return form == frontend::AttentionForm::kMha ? "mha" : "sha-from-source";
}

}  // namespace

void record_before(const ir::Graph& graph, GraphSummary& s) {
  s.ops_before = graph.op_counts();
  s.nodes_before = graph.live_node_count();
  s.attention_projections_before = attention_projections(graph);
}

void record_after(const ir::Graph& graph, GraphSummary& s) {
  s.ops_after = graph.op_counts();
  s.nodes_after = graph.live_node_count();
  s.attention_projections_after = attention_projections(graph);
  s.cache_inputs = count_named(graph, graph.inputs(), "k_cache.", "v_cache.");
  s.cache_outputs = count_named(graph, graph.outputs(), "k_new.", "v_new.");
}

void record_plan(const MemoryPlan& plan, GraphSummary& s) {
  s.arena_bytes = plan.arena_bytes;
  s.arena_tensor_bytes = plan.tensor_bytes;
  s.arena_tensors = plan.arena_tensors;
  s.arena_aliases = plan.aliases;
}

artifact::ModelMetadata make_metadata(const frontend::LlamaModel& model,
                                      const ExportOptions& options, int64_t context_len,
                                      const std::vector<int64_t>& ar_lens,
                                      const QuantizeResult& quant, const ir::Graph& graph) {
  const frontend::LlamaConfig& c = model.config;
  artifact::ModelMetadata m;
  m.model_name = c.name;
  m.model_source = model.source;
  m.dim = c.dim;
  m.n_layers = c.n_layers;
  m.n_heads = c.n_heads;
  m.n_kv_heads = c.n_kv_heads;
  m.head_dim = c.head_dim;
  m.hidden_dim = c.hidden_dim;
  m.vocab_size = c.vocab_size;
  m.context_len = context_len;
  m.rope_theta = c.rope_theta;
  m.rms_eps = c.rms_eps;
  if (c.rope_scaling) {
    m.rope_scaling_type = "llama3";
    m.rope_scaling_factor = c.rope_scaling->factor;
    m.rope_low_freq_factor = c.rope_scaling->low_freq_factor;
    m.rope_high_freq_factor = c.rope_scaling->high_freq_factor;
    m.rope_original_max_positions = c.rope_scaling->original_max_position_embeddings;
  }
  m.ar_lengths = ar_lens;
  m.quant_scheme = quant.scheme;
  const bool per_head = options.cache_layout == frontend::CacheLayout::kPerHead;
  m.kv_cache_bits = io_bits(graph, per_head ? "k_cache.0.0" : "k_cache.0");
  m.mask_bits = io_bits(graph, "attention_mask");
  m.logits_bits = io_bits(graph, "logits");
  m.split_applied = options.preprocess.split && options.form == frontend::AttentionForm::kMha;
  m.r3 = options.r3;
  m.masked_softmax = options.mask == frontend::MaskKind::kMaskedSoftmax;
  m.producer = "headsplit 0.1.0";
  m.extra["attention_form"] = form_name(options.form);
  m.extra["cache_layout"] = per_head ? "per-head" : "per-layer";
  m.extra["projection"] =
      options.projection == frontend::ProjectionKind::kConv ? "conv2d" : "linear";
  if (c.sliding_window > 0) m.extra["sliding_window"] = std::to_string(c.sliding_window);
  if (!quant.recipe.empty()) m.extra["quant_recipe"] = quant.recipe;
  if (!quant.calibration_source.empty()) m.extra["calibration"] = quant.calibration_source;
  if (!quant.weight_search.empty()) m.extra["weight_search"] = quant.weight_search;
  if (!quant.calibration_arithmetic.empty())
    m.extra["calibration_arithmetic"] = quant.calibration_arithmetic;
  return m;
}

}  // namespace hs::backend

// inspect_artifact: the artifact summary printed by `headsplit inspect`.
#include "headsplit/runtime/inspect.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <memory>

#include "headsplit/artifact/reader.h"
#include "headsplit/runtime/executor.h"
#include "headsplit/tokenizer/chat.h"

namespace hs::runtime {

namespace {

std::string bytes_text(int64_t b) {
  if (b >= (int64_t{1} << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1 << 20));
  if (b >= (int64_t{1} << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / (1 << 10));
  return fmt::format("{} B", b);
}

std::string quant_text(const artifact::Quant& q) {
  switch (q.kind) {
    case artifact::QuantKind::kNone: return "";
    case artifact::QuantKind::kPerTensor:
      return fmt::format(" q(scale {:.6g}, zero point {})", q.scales[0],
                         q.zero_points.empty() ? 0 : q.zero_points[0]);
    case artifact::QuantKind::kPerAxis: return fmt::format(" q(per axis {})", q.axis);
    case artifact::QuantKind::kPerBlock: return fmt::format(" q(per block {})", q.block);
  }
  return "";
}

std::string type_text(const artifact::TensorDesc& t) {
  return fmt::format("{}[{}]{}", opset::dtype_name(t.dtype), fmt::join(t.shape, ","),
                     quant_text(t.quant));
}

// Cache I/O groups by their base name; other I/O one per line.
void describe_io(std::string& out, const artifact::GraphDesc& g, const std::vector<int32_t>& io,
                 std::string_view kind) {
  out += fmt::format("    {} ({}):\n", kind, io.size());
  std::map<std::string, std::pair<int64_t, int32_t>> groups;  // base -> (count, first tensor)
  std::vector<std::string> order;
  for (int32_t i : io) {
    const std::string& name = g.tensors[static_cast<size_t>(i)].name;
    const std::string base = name.substr(0, name.find('.'));
    const bool cache = base == "k_cache" || base == "v_cache" || base == "k_new" || base == "v_new";
    if (!cache) {
      out += fmt::format("      {:<16} {}\n", name, type_text(g.tensors[static_cast<size_t>(i)]));
      continue;
    }
    auto [it, fresh] = groups.try_emplace(base, 0, i);
    if (fresh) order.push_back(base);
    ++it->second.first;
  }
  for (const std::string& base : order) {
    const auto& [count, first] = groups[base];
    const artifact::TensorDesc& t = g.tensors[static_cast<size_t>(first)];
    const bool per_head = std::count(t.name.begin(), t.name.end(), '.') == 2;
    out += fmt::format("      {:<16} {} x {}  (first: {})\n",
                       base + (per_head ? ".{l}.{g}" : ".{l}"), count, type_text(t), t.name);
  }
}

}  // namespace

Result<std::string> inspect_artifact(const std::string& path, const InspectOptions& options) {
  HS_ASSIGN_OR_RETURN(artifact::LoadedArtifact loaded,
                      artifact::load_artifact(path, {.verify_checksum = options.verify_checksum,
                                                     .residence = artifact::Residence::kMapped}));
  auto a = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
  const artifact::Program& p = a->program();
  const artifact::ModelMetadata& m = p.metadata;
  const artifact::FileHeader& h = a->header();
  std::string out;
  out += fmt::format("artifact: {} ({}, format {}.{})\n", path, bytes_text(static_cast<int64_t>(h.file_size)),
                     h.major, h.minor);
  int64_t weight_bytes = 0, param_bytes = 0;
  for (const artifact::WeightDesc& w : p.weights) {
    weight_bytes += static_cast<int64_t>(w.size_bytes);
    param_bytes += static_cast<int64_t>(w.params_size);
  }
  out += fmt::format("sections: program {}, data {} ({} weights: {}, their quant params {})\n",
                     bytes_text(static_cast<int64_t>(h.program_size)),
                     bytes_text(static_cast<int64_t>(h.data_size)), p.weights.size(),
                     bytes_text(weight_bytes), bytes_text(param_bytes));
  out += fmt::format("checksum: xxh3 {:016x} {}\n", h.checksum,
                     options.verify_checksum ? "(verified)" : "(not verified)");
  out += fmt::format("model:    {} from {} (producer {})\n", m.model_name, m.model_source, m.producer);
  out += fmt::format("          L={} D={} H={} Hkv={} Dh={} F={} V={} C={}, rope theta {}, rms eps {}\n",
                     m.n_layers, m.dim, m.n_heads, m.n_kv_heads, m.head_dim, m.hidden_dim,
                     m.vocab_size, m.context_len, m.rope_theta, m.rms_eps);
  out += fmt::format("          quant {}, kv cache {} bits, mask {} bits, logits {} bits; split {}, "
                     "r3 {}, masked softmax {}; ar lengths [{}]\n",
                     m.quant_scheme.empty() ? "none (float)" : m.quant_scheme, m.kv_cache_bits,
                     m.mask_bits, m.logits_bits, m.split_applied ? "applied" : "not applied",
                     m.r3 ? "on" : "off", m.masked_softmax ? "on" : "off",
                     fmt::join(m.ar_lengths, ", "));
  for (const artifact::GraphDesc& g : p.graphs) {
    std::map<std::string_view, int64_t> ops;
    for (const artifact::NodeDesc& n : g.nodes) ++ops[opset::op_name(n.op)];
    out += fmt::format("graph '{}' (AR-{}): {} nodes, {} tensors, arena {}\n", g.name, g.ar_len,
                       g.nodes.size(), g.tensors.size(), bytes_text(g.arena_bytes));
    std::vector<std::string> op_list;
    for (const auto& [name, count] : ops) op_list.push_back(fmt::format("{} {}", name, count));
    out += fmt::format("    ops: {}\n", fmt::join(op_list, ", "));
    describe_io(out, g, g.inputs, "inputs");
    describe_io(out, g, g.outputs, "outputs");
    if (!options.plan) continue;
    auto exec = GraphExecutor::create(a, g.name);
    if (!exec.ok()) {
      out += fmt::format("    runtime plan: FAILED: {}\n", exec.error().message());
      continue;
    }
    const PlanSummary& s = (*exec)->summary();
    out += fmt::format("    runtime plan: {} steps; {} layout nodes run no code; {} cache concats "
                       "read in place; {} inputs dequantized up front; staging {}, load-time "
                       "constants {}\n",
                       s.steps, s.views, s.fused_concats, s.staged_inputs,
                       bytes_text(s.staging_bytes), bytes_text(s.prepared_bytes));
    if (s.head_groups > 0) {
      out += fmt::format(
          "    per-head chains: {} attentions run their {} chains as one step "
          "each ({} tasks: a run of stacked steps is one)\n",
          s.head_groups, s.head_chains, s.head_tasks);
    }
    if (s.merged_calls > 0) {
      out += fmt::format("    merged projections: {} per-head projections run as {} calls (each "
                         "call: one x, the heads' weight rows side by side)\n",
                         s.merged_parts, s.merged_calls);
    }
    if (s.stacked_calls > 0) {
      out += fmt::format(
          "    stacked head steps: {} per-head steps run as {} calls (each call: "
          "one op of every head, the heads' tensors side by side)\n",
          s.stacked_parts, s.stacked_calls);
    }
    if (s.fused_ropes > 0) {
      out += fmt::format("    fused RoPE: {} rotations run as one step each (instead of their "
                         "slices, products, sums and concat)\n",
                         s.fused_ropes);
    }
    if (s.lpbq_projections > 0) {
      out += fmt::format("    LPBQ: {} int4 per-block projections keep one float per row and a "
                         "1-byte multiplier per block (their scales are c * m, m in 1..16)\n",
                         s.lpbq_projections);
    }
    if (s.row_outputs > 0) {
      out += fmt::format("    output rows: {} output(s) computed only for the token rows a caller "
                         "reads (the LM head of a prefill chunk: its last token)\n",
                         s.row_outputs);
    }
    if (s.column_skips > 0) {
      out += fmt::format("    masked columns: {} attentions skip the score columns the mask "
                         "kills in every row (only n_past + T of C are computed)\n",
                         s.column_skips);
    }
  }
  std::map<std::string_view, std::pair<int64_t, int64_t>> by_type;
  int64_t total = 0;
  for (const artifact::WeightDesc& w : p.weights) {
    auto& [count, bytes] = by_type[opset::dtype_name(w.dtype)];
    ++count;
    bytes += static_cast<int64_t>(w.size_bytes);
    total += static_cast<int64_t>(w.size_bytes);
  }
  std::vector<std::string> types;
  for (const auto& [t, cb] : by_type) {
    types.push_back(fmt::format("{} {} ({})", t, cb.first, bytes_text(cb.second)));
  }
  out += fmt::format("weights:  {} unique, {} (shared by every graph); by type: {}\n",
                     p.weights.size(), bytes_text(total), fmt::join(types, ", "));
  const tokenizer::TokenizerData& t = p.tokenizer;
  std::string chat = "none";
  if (!t.chat_template.empty()) {
    auto detected = tokenizer::detect_chat_template(t.chat_template);
    chat = detected.ok() ? std::string(tokenizer::chat_template_name(*detected))
                         : std::string("present (not recognised)");
  }
  static constexpr std::string_view kKinds[] = {"llama2c", "spm", "byte-level bpe"};
  const auto kind = static_cast<size_t>(t.kind);
  out += fmt::format("tokenizer: {}, {} pieces, {} merges, bos {}, eos {}{}, chat template {}\n",
                     kind < 3 ? kKinds[kind] : "?", t.pieces.size(), t.merges.size(), t.bos_id,
                     t.eos_id,
                     t.extra_eos_ids.empty()
                         ? std::string()
                         : fmt::format(" (+ {})", fmt::join(t.extra_eos_ids, ", ")),
                     chat);
  return out;
}

}  // namespace hs::runtime

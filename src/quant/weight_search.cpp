// search_weights: SeqMSE scales and GPTQ integers for every projection of a float graph.
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/quant/annotate.h"
#include "headsplit/quant/weight_search.h"
#include "headsplit/support/progress.h"

namespace hs::quant {

Result<std::vector<Projection>> find_projections(const ir::Graph& graph,
                                                 const QuantConfig& config) {
  HS_ASSIGN_OR_RETURN(const Annotation a, annotate(graph, config));
  std::vector<Projection> out;
  std::unordered_set<ir::ValueId> seen;
  for (ir::NodeId n = 0; n < graph.num_nodes(); ++n) {
    const ir::Node& node = graph.node(n);
    if (node.erased || node.inputs.size() < 2) continue;
    if (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear) continue;
    const ir::ValueId wid = node.inputs[1];
    const ir::Value& wv = graph.value(wid);
    if (a.role[static_cast<size_t>(wid)] != ValueRole::kWeight || !wv.is_constant() ||
        wv.type.dtype != ir::DType::kF32 || wv.type.shape.size() < 2 || !seen.insert(wid).second) {
      continue;
    }
    const Scheme& s = a.weight_scheme[static_cast<size_t>(wid)];
    out.push_back(Projection{wv.name, graph.value(node.inputs[0]).name,
                             WeightSpec{s.weight_bits, s.block}});
  }
  return out;
}

Status search_weights(const ir::Graph& graph, const QuantConfig& config,
                      const ActivationSamples& samples, const WeightSearchOptions& options,
                      WeightOverrides& out, WeightSearchStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  out.clear();
  if (!options.active()) return ok_status();
  HS_ASSIGN_OR_RETURN(const std::vector<Projection> projections, find_projections(graph, config));
  // Weights by name (one value per name).
  std::unordered_map<std::string, ir::ValueId> ids;
  for (ir::ValueId id = 0; id < graph.num_values(); ++id) ids.emplace(graph.value(id).name, id);

  kernels::ThreadPool pool(options.threads);
  int64_t total_rows = 0;
  for (const Projection& p : projections) total_rows += graph.value(ids.at(p.weight)).type.shape[0];
  std::optional<Progress> progress;
  std::string label = options.seq_mse > 0 ? fmt::format("seq-mse {}", options.seq_mse) : "";
  if (options.gptq) label += label.empty() ? "gptq" : " + gptq";
  if (options.progress) progress.emplace(label, total_rows, "rows");

  // Factors and Gram matrices by input name (q, k and v read one input).
  std::unordered_map<std::string, ErrorFactor> factors;
  std::unordered_map<std::string, std::vector<double>> grams;
  WeightSearchStats st;
  for (const Projection& p : projections) {
    const ir::Value& wv = graph.value(ids.at(p.weight));
    const int64_t rows = wv.type.shape[0];
    const int64_t in = wv.type.numel() / std::max<int64_t>(rows, 1);
    if (in != wv.type.shape[1]) {
      return errorf(ErrorKind::kUnsupported, "weight '{}': shape {} is not [O, I] or [O, I, 1, 1]",
                    p.weight, ir::shape_str(wv.type.shape));
    }
    auto it = samples.find(p.input);
    if (it == samples.end() || it->second.dim != in || it->second.last_count() == 0) {
      return errorf(ErrorKind::kInvalidArgument,
                    "weight '{}': no calibration activations captured for its input '{}' "
                    "(dimension {})",
                    p.weight, p.input, in);
    }
    const ActivationRows& x = it->second;
    if ((options.gptq || options.seq_mse_tokens == SeqMseTokens::kAll) && x.all_count() == 0) {
      return errorf(ErrorKind::kInvalidArgument,
                    "weight '{}': every token's activations of '{}' are needed but were not "
                    "captured",
                    p.weight, p.input);
    }
    std::vector<float> w(static_cast<size_t>(wv.type.numel()));
    std::memcpy(w.data(), wv.data->bytes().data(), w.size() * sizeof(float));
    WeightOverride ov;
    if (options.seq_mse > 0) {
      auto f = factors.find(p.input);
      if (f == factors.end()) {
        const bool all = options.seq_mse_tokens == SeqMseTokens::kAll;
        const std::vector<float>& rows_x = all ? x.all : x.last;
        f = factors.emplace(p.input, error_factor(rows_x, all ? x.all_count() : x.last_count(), in))
                .first;
      }
      ov.scales = seq_mse_scales(w, rows, in, p.spec, f->second, options.seq_mse, &pool);
    } else {
      ov.scales = minmax_scales(w, rows, in, p.spec);
    }
    if (options.gptq) {
      auto g = grams.find(p.input);
      if (g == grams.end()) g = grams.emplace(p.input, gram(x.all, x.all_count(), in)).first;
      HS_ASSIGN_OR_RETURN(ov.q, gptq_quantize(w, rows, in, p.spec, ov.scales, g->second,
                                              options.gptq_damp, &pool));
    }
    out.emplace(p.weight, std::move(ov));
    ++st.weights;
    st.rows += rows;
    if (progress) progress->advance(rows);
  }
  if (progress) progress->finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats != nullptr) *stats = st;
  return ok_status();
}

}  // namespace hs::quant

// `headsplit report`: builds the static llama graph of a checkpoint (or of random weights in a
// named shape), runs the preprocess pipeline, and prints what changed: op counts by kind, graph
// I/O with shapes (and how many are KV caches), attention projections per layer, the split
// report and pass timings. `headsplit passes` lists the registered passes.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "headsplit/cli/commands.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/passes/passes.h"
#include "headsplit/passes/split_heads.h"

namespace hs::cli {
namespace {

struct ReportArgs {
  std::string model;
  std::string tokenizer;
  std::string shape;
  int64_t ar_len = 1;
  int64_t ctx_len = 128;
  bool r3 = false;
  bool masked_softmax = false;
  bool linear = false;
  bool no_split = false;
  std::string attention = "mha";
  std::vector<std::string> print_after;
  bool verify_each = false;
  bool log = false;
};

bool is_cache_name(const std::string& name) {
  return name.rfind("k_cache.", 0) == 0 || name.rfind("v_cache.", 0) == 0 ||
         name.rfind("k_new.", 0) == 0 || name.rfind("v_new.", 0) == 0;
}

// Attention projections (conv2d/linear whose output is named layers.<l>.attn.*) per layer.
std::map<int64_t, int64_t> projections_per_layer(const ir::Graph& g) {
  std::map<int64_t, int64_t> counts;
  for (ir::NodeId i = 0; i < g.num_nodes(); ++i) {
    const ir::Node& n = g.node(i);
    if (n.erased || (n.op != ir::OpKind::kConv2d && n.op != ir::OpKind::kLinear)) continue;
    const std::string& name = g.value(n.outputs[0]).name;
    long long layer = 0;
    int consumed = 0;
    if (std::sscanf(name.c_str(), "layers.%lld.attn.%n", &layer, &consumed) == 1 && consumed > 0) {
      ++counts[layer];
    }
  }
  return counts;
}

void print_io(const char* title, const ir::Graph& g, const std::vector<ir::ValueId>& ids) {
  int64_t caches = 0;
  for (ir::ValueId v : ids) caches += is_cache_name(g.value(v).name);
  std::printf("%s: %zu (%lld KV cache)\n", title, ids.size(), static_cast<long long>(caches));
  size_t shown = 0;
  for (ir::ValueId v : ids) {
    const std::string& name = g.value(v).name;
    // Caches are listed for layer 0 and summarized for the rest.
    long long layer = 0;
    if (is_cache_name(name) && std::sscanf(name.c_str(), "%*[a-z_].%lld", &layer) == 1 &&
        layer != 0) {
      continue;
    }
    std::printf("  %-24s %s\n", name.c_str(), ir::type_str(g.type(v)).c_str());
    ++shown;
  }
  if (shown < ids.size())
    std::printf("  ... and %zu more caches of the other layers\n", ids.size() - shown);
}

Result<frontend::LlamaModel> load(const ReportArgs& a) {
  if (!a.shape.empty()) {
    HS_ASSIGN_OR_RETURN(frontend::LlamaConfig config, frontend::named_config(a.shape));
    return frontend::make_random_llama(config, 1);
  }
  if (a.model.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "give a checkpoint with -m/--model or a shape with --shape");
  }
  return frontend::load_model(a.model, a.tokenizer);
}

Status run_report(const ReportArgs& a) {
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, load(a));
  frontend::BuildOptions o;
  o.ar_len = a.ar_len;
  o.context_len = a.ctx_len;
  o.r3 = a.r3;
  o.mask = a.masked_softmax ? frontend::MaskKind::kMaskedSoftmax : frontend::MaskKind::kAdditive;
  o.projection = a.linear ? frontend::ProjectionKind::kLinear : frontend::ProjectionKind::kConv;
  o.form = a.attention == "sha" ? frontend::AttentionForm::kShaFromSource
                                : frontend::AttentionForm::kMha;
  HS_ASSIGN_OR_RETURN(ir::Graph graph, frontend::build_llama(model, o));
  const ir::Graph before = graph;

  passes::PassContext ctx;
  ctx.verify_each = a.verify_each;
  ctx.print_after = std::set<std::string>(a.print_after.begin(), a.print_after.end());
  for (const std::string& p : a.print_after) {
    if (p != "all" && passes::find_pass(p) == nullptr) {
      return errorf(ErrorKind::kInvalidArgument,
                    "--print-after: no pass named '{}' (see 'headsplit passes')", p);
    }
  }
  std::vector<std::string> log;
  ctx.log = [&](std::string_view line) { log.emplace_back(line); };
  passes::PreprocessOptions po;
  po.split = !a.no_split;
  HS_ASSIGN_OR_RETURN(std::vector<passes::PassRun> runs, passes::run_preprocess(graph, po, ctx));

  const frontend::LlamaConfig& c = model.config;
  std::printf("model: %s (D=%lld L=%lld H=%lld Hkv=%lld Dh=%lld F=%lld V=%lld)\n",
              model.source.c_str(), static_cast<long long>(c.dim),
              static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads),
              static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.head_dim),
              static_cast<long long>(c.hidden_dim), static_cast<long long>(c.vocab_size));
  std::printf("graph: %s form, T=%lld C=%lld P=%lld, %s projections%s%s\n\n", a.attention.c_str(),
              static_cast<long long>(a.ar_len), static_cast<long long>(a.ctx_len),
              static_cast<long long>(a.ctx_len - a.ar_len), a.linear ? "linear" : "1x1 conv",
              a.r3 ? ", R3" : "", a.masked_softmax ? ", masked softmax" : "");

  std::printf("%-16s %10s %10s\n", "op", "before", a.no_split ? "after" : "after split");
  auto ops_before = before.op_counts(), ops_after = graph.op_counts();
  std::set<std::string> kinds;
  for (const auto& [k, _] : ops_before) kinds.insert(k);
  for (const auto& [k, _] : ops_after) kinds.insert(k);
  for (const std::string& k : kinds) {
    std::printf("  %-14s %10lld %10lld\n", k.c_str(), static_cast<long long>(ops_before[k]),
                static_cast<long long>(ops_after[k]));
  }
  std::printf("  %-14s %10lld %10lld\n\n", "total",
              static_cast<long long>(before.live_node_count()),
              static_cast<long long>(graph.live_node_count()));

  print_io("graph inputs", graph, graph.inputs());
  print_io("graph outputs", graph, graph.outputs());

  auto proj_before = projections_per_layer(before), proj_after = projections_per_layer(graph);
  std::printf("\nattention projections per layer (q/k/v/o convs):\n");
  for (const auto& [layer, n] : proj_before) {
    std::printf("  layer %-3lld %3lld -> %lld\n", static_cast<long long>(layer),
                static_cast<long long>(n), static_cast<long long>(proj_after[layer]));
  }
  std::printf("  expected after the split: H + 2*Hkv + 1 = %lld\n\n",
              static_cast<long long>(c.n_heads + 2 * c.n_kv_heads + 1));

  std::printf("passes:\n");
  for (const passes::PassRun& r : runs) {
    std::printf("  %-16s %8.2f ms  %s  %lld nodes\n", r.pass.c_str(), r.seconds * 1e3,
                r.changed ? "changed  " : "unchanged", static_cast<long long>(r.nodes_after));
  }
  if (a.log) {
    std::printf("\nrewrites:\n");
    for (const std::string& line : log) std::printf("  %s\n", line.c_str());
  } else {
    for (const std::string& line : log) {
      if (line.find("left as MHA") != std::string::npos) std::printf("  %s\n", line.c_str());
    }
    std::printf("  (%zu rewrite lines; --log prints them all)\n", log.size());
  }
  return {};
}

Status run_passes_list() {
  std::printf("backend preprocess passes, in pipeline order:\n");
  for (const passes::PassInfo& p : passes::pass_registry()) {
    std::printf("  %-16s %s\n", p.name.c_str(), p.summary.c_str());
    for (const passes::PassOptionSpec& o : p.options) {
      std::printf("  %-16s   option %s (%s, default %s): %s\n", "", o.name.c_str(), o.type.c_str(),
                  o.default_value.c_str(), o.help.c_str());
    }
  }
  return {};
}

}  // namespace

void register_report(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Build a model's static graph, run the preprocess passes (split included) and "
      "print op counts, graph I/O and projections per layer before and after");
  cmd->add_option("-m,--model", args->model,
                  "checkpoint: llama2.c .bin, .gguf or Hugging Face folder");
  cmd->add_option("-t,--tokenizer", args->tokenizer, "tokenizer file (not needed for the report)");
  cmd->add_option("--shape", args->shape,
                  fmt::format("random weights in a named shape instead of a checkpoint: {}",
                              fmt::join(frontend::named_config_names(), ", ")));
  cmd->add_option("--ar-len", args->ar_len, "T: tokens per step")->capture_default_str();
  cmd->add_option("--ctx-len", args->ctx_len, "C: context length")->capture_default_str();
  cmd->add_flag("--r3", args->r3, "SpinQuant R3: Hadamard on q and k after RoPE");
  cmd->add_flag("--masked-softmax", args->masked_softmax,
                "where(mask==0, s, rowmin(s)-20) instead of s + mask");
  cmd->add_flag("--linear", args->linear, "linear projections instead of 1x1 convs");
  cmd->add_option("--attention", args->attention,
                  "mha (split at preprocess) or sha (per-head from source)")
      ->check(CLI::IsMember({"mha", "sha"}))
      ->capture_default_str();
  cmd->add_flag("--no-split", args->no_split, "keep multi-head attention");
  cmd->add_option("--print-after", args->print_after,
                  "print the graph after this pass (repeatable; 'all')");
  cmd->add_flag("--verify-each", args->verify_each, "verify the graph after every pass");
  cmd->add_flag("--log", args->log, "print one line per applied rewrite");
  cmd->footer(
      "Examples:\n"
      "  headsplit report -m ../shared/models/stories260K/stories260K.bin\n"
      "  headsplit report --shape llama3.2-1b --ar-len 32 --ctx-len 1024 --r3\n"
      "  headsplit report --shape stories260k --ctx-len 8 --print-after split-heads");
  set_action(*cmd, [args] { return run_report(*args); });

  CLI::App* list =
      app.add_subcommand("passes", "List the backend preprocess passes and their options");
  set_action(*list, [] { return run_passes_list(); });
}

}  // namespace hs::cli

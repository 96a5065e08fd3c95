// Backend preprocess, graph part: one readable function.
#include <chrono>

#include "headsplit/passes/passes.h"

namespace hs::passes {

Result<std::vector<PassRun>> run_preprocess(ir::Graph& graph, const PreprocessOptions& options,
                                            const PassContext& context) {
  std::vector<std::unique_ptr<Pass>> pipeline;
  pipeline.push_back(make_canonicalize());
  if (options.split) pipeline.push_back(make_split_heads(options.split_options));
  pipeline.push_back(make_fold_constants());
  pipeline.push_back(make_dead_code());

  std::vector<PassRun> runs;
  for (auto& pass : pipeline) {
    auto start = std::chrono::steady_clock::now();
    HS_ASSIGN_OR_RETURN(bool changed, run_pass(*pass, graph, context));
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    runs.push_back({std::string(pass->name()), changed, seconds, graph.live_node_count()});
  }
  return runs;
}

}  // namespace hs::passes

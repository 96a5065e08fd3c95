// The passes of backend preprocess, and the pipeline that runs them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "headsplit/passes/pass.h"

namespace hs::passes {

// canonicalize: drop identity ops (reshape/expand to the same shape, identity transpose, slice
// of a whole axis, single-operand concat, reshape of a reshape), make broadcast operands of
// elementwise ops rank-equal (leading size-1 axes: constants re-typed, values reshaped).
std::unique_ptr<Pass> make_canonicalize();

// split-heads: the MHA -> SHA split (split_heads.h has its options and report).
struct SplitHeadsOptions {
  // Fail instead of leaving an attention that does not match as MHA.
  bool require_all = false;
};
std::unique_ptr<Pass> make_split_heads(SplitHeadsOptions options = {});

// fold-constants: evaluates nodes whose operands are all constants. Slices of constants on
// their outermost non-unit axis and reshapes become views of the same bytes (no copy); other
// foldable nodes are computed with the reference kernels.
std::unique_ptr<Pass> make_fold_constants();

// dead-code: removes nodes no graph output depends on, and unused constants.
std::unique_ptr<Pass> make_dead_code();

struct PreprocessOptions {
  bool split = true;  // MHA -> SHA split (`--no-split` turns it off)
  SplitHeadsOptions split_options;
};

struct PassRun {
  std::string pass;
  bool changed = false;
  double seconds = 0;
  int64_t nodes_after = 0;
};

// Backend preprocess, graph part:
//   canonicalize -> split-heads (optional) -> fold-constants -> dead-code
Result<std::vector<PassRun>> run_preprocess(ir::Graph& graph, const PreprocessOptions& options,
                                            const PassContext& context);

}  // namespace hs::passes

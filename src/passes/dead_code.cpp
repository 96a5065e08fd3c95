// dead-code: a node is live when a graph output depends on it; everything else goes, and so
// do constants nothing reads.
#include "headsplit/passes/passes.h"

namespace hs::passes {
namespace {

class DeadCode final : public Pass {
 public:
  std::string_view name() const override { return "dead-code"; }
  Result<bool> run(ir::Graph& g, const PassContext& ctx) override {
    const int32_t values_before = g.num_values();
    HS_TRY(g.topo_sort());
    int64_t removed = g.eliminate_dead_code();
    int32_t values_removed = values_before - g.num_values();
    if (removed > 0 || values_removed > 0) {
      ctx.note(name(), fmt::format("removed {} nodes and {} values", removed, values_removed));
    }
    return removed > 0 || values_removed > 0;
  }
};

}  // namespace

std::unique_ptr<Pass> make_dead_code() { return std::make_unique<DeadCode>(); }

}  // namespace hs::passes

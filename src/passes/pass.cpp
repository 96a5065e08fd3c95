// The pass registry and the instruments applied after each pass.
#include "headsplit/passes/pass.h"

#include <chrono>

#include "headsplit/ir/text.h"
#include "headsplit/ir/verifier.h"
#include "headsplit/passes/passes.h"

namespace hs::passes {

void PassContext::note(std::string_view pass, std::string_view line) const {
  if (log) log(fmt::format("{}: {}", pass, line));
}

namespace {

template <typename Factory>
std::function<Result<std::unique_ptr<Pass>>(const PassOptions&)> no_options(Factory f) {
  return [f](const PassOptions& options) -> Result<std::unique_ptr<Pass>> {
    if (!options.empty()) {
      return errorf(ErrorKind::kInvalidArgument, "this pass takes no options, got '{}'",
                    options.begin()->first);
    }
    return f();
  };
}

Result<std::unique_ptr<Pass>> create_split(const PassOptions& options) {
  SplitHeadsOptions o;
  for (const auto& [name, value] : options) {
    if (name == "require-all" && std::holds_alternative<bool>(value)) {
      o.require_all = std::get<bool>(value);
    } else {
      return errorf(ErrorKind::kInvalidArgument, "split-heads: unknown option '{}'", name);
    }
  }
  return make_split_heads(o);
}

const std::vector<PassInfo>& registry() {
  static const std::vector<PassInfo> passes = {
      {"canonicalize",
       "drop identity ops; make broadcast operands rank-equal",
       {},
       no_options(make_canonicalize)},
      {"split-heads",
       "split multi-head attention into single-head attention (MHA -> SHA), slicing q/k/v "
       "weights and their quantization params per head",
       {{"require-all", "bool", "false",
         "fail when an attention does not match instead of leaving it as MHA"}},
       create_split},
      {"fold-constants",
       "evaluate nodes whose operands are constants (weight slices become views)",
       {},
       no_options(make_fold_constants)},
      {"dead-code", "remove nodes and constants no output depends on", {},
       no_options(make_dead_code)},
  };
  return passes;
}

}  // namespace

std::span<const PassInfo> pass_registry() { return registry(); }

const PassInfo* find_pass(std::string_view name) {
  for (const PassInfo& p : registry()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Result<std::unique_ptr<Pass>> create_pass(std::string_view name, const PassOptions& options) {
  const PassInfo* info = find_pass(name);
  if (info == nullptr) {
    std::string known;
    for (const PassInfo& p : registry()) known += (known.empty() ? "" : ", ") + p.name;
    return errorf(ErrorKind::kNotFound, "no pass named '{}' (passes: {})", name, known);
  }
  return info->create(options);
}

Result<bool> run_pass(Pass& pass, ir::Graph& graph, const PassContext& context) {
  HS_ASSIGN_OR_RETURN(bool changed, pass.run(graph, context));
  if (context.verify_each) {
    HS_TRY_CTX(ir::verify(graph), fmt::format("verify after {}", pass.name()));
  }
  std::string name(pass.name());
  if (context.print_after.count(name) != 0 || context.print_after.count("all") != 0) {
    std::fprintf(context.print_out, "// ----- graph after %s -----\n%s\n", name.c_str(),
                 ir::print_graph(graph).c_str());
  }
  return changed;
}

}  // namespace hs::passes

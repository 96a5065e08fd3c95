// Pass infrastructure: a pass has a name, a one-line summary and typed options; one registry
// lists them (the CLI prints it); instruments --print-after and --verify-each live in the
// PassContext; every applied rewrite can log one line saying what changed.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "headsplit/ir/graph.h"

namespace hs::passes {

// Instruments and logging shared by every pass of a pipeline run.
struct PassContext {
  bool verify_each = false;              // verify the graph after every pass
  std::set<std::string> print_after;     // print the graph after these passes ("all": every)
  std::FILE* print_out = stdout;         // where --print-after goes
  // One line per applied rewrite (`split-heads: layers.0.attn: ...`); null: silent.
  std::function<void(std::string_view)> log;

  void note(std::string_view pass, std::string_view line) const;
};

// A typed pass option, for --help and the registry listing.
struct PassOptionSpec {
  std::string name;
  std::string type;           // "bool", "int", "string"
  std::string default_value;  // printed form
  std::string help;
};

using PassOptionValue = std::variant<bool, int64_t, std::string>;
using PassOptions = std::map<std::string, PassOptionValue>;

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Rewrites the graph. Returns whether anything changed. A pass that fails leaves a graph
  // that still verifies or returns an error that makes the whole pipeline fail.
  virtual Result<bool> run(ir::Graph& graph, const PassContext& context) = 0;
};

struct PassInfo {
  std::string name;
  std::string summary;
  std::vector<PassOptionSpec> options;
  std::function<Result<std::unique_ptr<Pass>>(const PassOptions&)> create;
};

// Every registered pass, in pipeline order.
std::span<const PassInfo> pass_registry();
const PassInfo* find_pass(std::string_view name);
Result<std::unique_ptr<Pass>> create_pass(std::string_view name, const PassOptions& options = {});

// Runs one pass with the context's instruments (verify, print) applied after it.
Result<bool> run_pass(Pass& pass, ir::Graph& graph, const PassContext& context);

}  // namespace hs::passes

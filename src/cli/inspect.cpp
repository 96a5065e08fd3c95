// `headsplit inspect`: what a .hsa artifact holds and what the runtime makes of it.
#include "headsplit/runtime/inspect.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "headsplit/cli/commands.h"

namespace hs::cli {

namespace {

struct InspectArgs {
  std::string path;
  bool no_verify = false;
  bool no_plan = false;
};

Status run_inspect(const InspectArgs& a) {
  HS_ASSIGN_OR_RETURN(
      std::string text,
      runtime::inspect_artifact(a.path, {.verify_checksum = !a.no_verify, .plan = !a.no_plan}));
  std::fputs(text.c_str(), stdout);
  return ok_status();
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Describe a .hsa artifact: metadata, graphs (AR length, nodes, op counts, I/O, arena), "
      "weights, tokenizer, checksum, and the runtime's plan of each graph.");
  cmd->add_option("artifact", args->path, "the .hsa file")->required();
  cmd->add_flag("--no-verify-checksum", args->no_verify, "skip hashing the whole file");
  cmd->add_flag("--no-plan", args->no_plan, "do not plan the graphs with the runtime");
  cmd->footer(
      "Example:\n"
      "  headsplit export -m ../shared/models/stories260K/stories260K.bin -o stories.hsa\n"
      "  headsplit inspect stories.hsa");
  set_action(*cmd, [args] { return run_inspect(*args); });
}

}  // namespace hs::cli

// The headsplit command: builds the CLI11 App, lets every command register itself, parses, and
// runs the selected command's Action. The only place an Error becomes an exit code:
//   0 success, 1 error ("headsplit: error: <message>" on stderr), 2 usage error.
#include "headsplit/cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <utility>
#include <vector>

#include "headsplit/cli/commands.h"

namespace hs::cli {

namespace {

std::vector<std::pair<const CLI::App*, Action>>& actions() {
  static std::vector<std::pair<const CLI::App*, Action>> registered;
  return registered;
}

}  // namespace

void set_action(CLI::App& command, Action action) {
  actions().emplace_back(&command, std::move(action));
}

int main(int argc, char** argv) {
  actions().clear();  // main may run more than once in a process (tests)
  CLI::App app{
      "headsplit: lower llama-family models to static quantized graphs (quantize as multi-head "
      "attention, deploy as single-head attention) and run them.",
      "headsplit"};
  app.require_subcommand(1);
  app.footer("Run 'headsplit <command> --help' for the options of a command.");
  register_generate(app);
  register_eval(app);
  register_report(app);
  register_export(app);
  register_demo(app);
  register_run(app);
  register_inspect(app);
  register_chat(app);
  register_tokenize(app);
  register_info(app);
  register_perplexity(app);
  register_bench(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the usage error on stderr
    return code == 0 ? 0 : 2;
  }
  for (const CLI::App* selected : app.get_subcommands()) {
    for (const auto& [command, action] : actions()) {
      if (command != selected) continue;
      Status status = action();
      if (!status.ok()) {
        std::fprintf(stderr, "headsplit: error: %s\n", status.error().message().c_str());
        return 1;
      }
      return 0;
    }
  }
  std::fprintf(stderr, "headsplit: error: the selected command has no action\n");
  return 1;
}

}  // namespace hs::cli

// --lookahead N,W,G: the option text shared by `run`, `generate` and `chat`, parsed by the runner.
#include <CLI/CLI.hpp>

#include "headsplit/cli/commands.h"

namespace hs::cli {

void add_lookahead_option(CLI::App& command, std::string& text) {
  command.add_option("--lookahead", text,
                     "lookahead decoding with n-gram size N, window W and G guesses per step, "
                     "e.g. 3,8,8 (same greedy text, several tokens per step; needs a graph with "
                     "an AR length >= (W + G)(N - 1): see export --lookahead-ar)");
}

Result<runner::LookaheadOptions> parse_lookahead_option(const std::string& text) {
  if (text.empty()) return runner::LookaheadOptions{};
  auto parsed = runner::parse_lookahead(text);
  if (!parsed.ok()) return std::move(parsed).error().with_context("--lookahead");
  return parsed;
}

}  // namespace hs::cli

// The headsplit command: builds the CLI11 App, lets every command register itself, parses, and
// runs the selected command's Action. The only place an Error becomes an exit code:
//   0 success, 1 error ("headsplit: error: <message>" on stderr), 2 usage error.
#include "headsplit/cli/cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <new>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "headsplit/cli/commands.h"
#include "headsplit/support/message.h"

namespace hs::cli {

namespace {

std::vector<std::pair<const CLI::App*, Action>>& actions() {
  static std::vector<std::pair<const CLI::App*, Action>> registered;
  return registered;
}

// Bounds of the size and count options, checked on the option's text before CLI11 converts it
// (its conversion saturates 2^63 to INT64_MAX and wraps --seed -1 to 2^64-1 without a word).
// The model-dependent limits (context <= trained context, memory) are checked later, by
// frontend::step_lengths and the runner.
struct IntegerBound {
  std::string_view option;
  int64_t lo;
  uint64_t hi;
};
constexpr int64_t kMaxSteps = int64_t{1} << 24;  // context and AR lengths: 16M tokens
constexpr IntegerBound kIntegerBounds[] = {
    {"-n", 0, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())},
    {"--seed", 0, std::numeric_limits<uint64_t>::max()},
    {"--ctx-len", 0, kMaxSteps},
    {"--ar-len", 1, kMaxSteps},
    {"--lookahead-ar", 0, kMaxSteps},
    {"--top-k", 0, std::numeric_limits<int32_t>::max()},
    {"--threads", 0, 4096},
    {"--kv-bits", 0, 64},
    {"--decode-tokens", 0, kMaxSteps},
};

CLI::Validator integer_bound(const IntegerBound& b) {
  return CLI::Validator(
      [b](std::string& text) -> std::string {
        const char* first = text.data();
        const char* last = text.data() + text.size();
        if (first != last && *first == '+') ++first;
        if (first != last && *first == '-') {
          int64_t v = 0;
          auto [end, ec] = std::from_chars(first, last, v);
          if (ec == std::errc() && end == last && v >= b.lo) return {};
          return fmt::format("{} {}: expected an integer in [{}, {}]", b.option, text, b.lo, b.hi);
        }
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(first, last, v);
        if (ec == std::errc::result_out_of_range ||
            (ec == std::errc() && end == last && v > b.hi)) {
          return fmt::format("{} {}: out of range, the largest accepted value is {}", b.option,
                             text, b.hi);
        }
        if (ec != std::errc() || end != last) {
          return fmt::format("{} '{}': expected an integer in [{}, {}]", b.option, text, b.lo,
                             b.hi);
        }
        if (static_cast<int64_t>(v) < b.lo && v < static_cast<uint64_t>(b.lo)) {
          return fmt::format("{} {}: expected an integer in [{}, {}]", b.option, text, b.lo, b.hi);
        }
        return {};
      },
      "", "integer bound");
}

// CLI11's NonNegativeNumber/PositiveNumber/Range print their bounds with %f (DBL_MAX in 309
// digits); the same checks with compact numbers.
std::function<std::string(std::string&)> compact_range(double lo, double hi, bool lo_open) {
  return [lo, hi, lo_open](std::string& text) -> std::string {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) {
      return fmt::format("'{}' is not a number", clip_for_message(text, 40));
    }
    if (v < lo || (lo_open && v == lo) || v > hi || std::isnan(v)) {
      return fmt::format("{} is outside {}{}, {}]", clip_for_message(text, 40), lo_open ? "(" : "[",
                         number_for_message(lo), number_for_message(hi));
    }
    return {};
  };
}

// CLI11's Range keeps "NONNEGATIVE"/"POSITIVE" as its description (its name stays empty).
void replace_validators(CLI::Option* option) {
  const double max = std::numeric_limits<double>::max();
  for (int i = 0;; ++i) {
    CLI::Validator* v = nullptr;
    try {
      v = option->get_validator(i);
    } catch (const CLI::OptionNotFound&) {
      return;
    }
    const std::string desc = v->get_description();
    if (desc == "NONNEGATIVE") v->operation(compact_range(0, max, false));
    if (desc == "POSITIVE") v->operation(compact_range(0, max, true));
    if (option->check_name("--top-p") && desc.find(" in [") != std::string::npos) {
      v->operation(compact_range(0, 1, false));
    }
  }
}

void add_integer_bounds(CLI::App& app) {
  for (CLI::App* command : app.get_subcommands({})) {
    for (CLI::Option* option : command->get_options()) replace_validators(option);
    for (const IntegerBound& b : kIntegerBounds) {
      const std::string name(b.option);
      for (CLI::Option* option : command->get_options()) {
        if (option->check_name(name)) option->check(integer_bound(b));
      }
    }
  }
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
  add_integer_bounds(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the usage error on stderr
    return code == 0 ? 0 : 2;
  }
  for (const CLI::App* selected : app.get_subcommands()) {
    for (const auto& [command, action] : actions()) {
      if (command != selected) continue;
      Status status = ok_status();
      try {
        status = action();
      } catch (const std::bad_alloc&) {  // a last resort: sizes are checked before allocating
        status = Error(ErrorKind::kInvalidArgument,
                       "out of memory: the requested sizes need more memory than is available");
      } catch (const std::length_error& e) {
        status =
            errorf(ErrorKind::kInvalidArgument, "a requested size is too large ({})", e.what());
      }
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

// Runs the `headsplit` command in process (cli::main) and captures its exit code, stdout and
// stderr. Header-only: included by test binaries that link hs_cli.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "headsplit/cli/cli.h"

namespace hs::testing {

struct CliRun {
  int code = -1;
  std::string out, err;
};

// `args` without the program name, e.g. {"run", "-m", "x.hsa"}.
inline CliRun run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "headsplit");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  CliRun r;
  r.code = cli::main(static_cast<int>(argv.size()), argv.data());
  r.out = ::testing::internal::GetCapturedStdout();
  r.err = ::testing::internal::GetCapturedStderr();
  return r;
}

}  // namespace hs::testing

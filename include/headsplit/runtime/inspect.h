// A readable summary of a .hsa artifact (`headsplit inspect`): file and checksum status,
// model metadata, each graph (AR length, node and op counts, I/O with shapes and types, arena
// bytes, and what the runtime's plan makes of it), weights by element type, tokenizer.
#pragma once

#include <string>

#include "headsplit/support/result.h"

namespace hs::runtime {

struct InspectOptions {
  bool verify_checksum = true;
  bool plan = true;  // also plan each graph with the runtime and report steps, views, fusions
};

// Loads `path` (verifying it) and describes it; ends with a newline. Load errors are
// returned; a graph the runtime cannot plan is reported in the text with the planner's error.
Result<std::string> inspect_artifact(const std::string& path, const InspectOptions& options = {});

}  // namespace hs::runtime

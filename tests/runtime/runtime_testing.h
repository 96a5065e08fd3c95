// Helpers for the runtime tests: write IR graphs as an artifact (the backend's memory plan,
// lowering and writer), make seeded inputs, run a graph on the reference interpreter and the
// same graph's artifact on the runtime, and compare the outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "headsplit/backend/memory_plan.h"
#include "headsplit/ir/graph.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/runtime/executor.h"

namespace hs::runtime::testing {

struct NamedGraph {
  std::string name;  // "decode", "prefill", "g"
  const ir::Graph* graph = nullptr;
  int64_t ar_len = 1;
};

// Plans memory (aliases on unless `memory` says otherwise), lowers and writes `graphs` to a
// fresh file in a temp dir, and loads it back.
Result<std::shared_ptr<const artifact::LoadedArtifact>> make_artifact(
    const std::vector<NamedGraph>& graphs, const backend::MemoryPlanOptions& memory = {});
Result<std::shared_ptr<const artifact::LoadedArtifact>> make_artifact(const ir::Graph& graph);

// Seeded inputs for every graph input: i32 values in [0, index_limit), reals uniform in
// [-2, 2] (quantized inputs: random integers in [qmin, qmax], given as their real values).
std::vector<ir::NamedTensor> random_inputs(const ir::Graph& graph, uint64_t seed,
                                           int32_t index_limit = 4);

// Binds `inputs` (converted to each input's storage: integers for quantized inputs) and
// output buffers, executes, and returns the outputs as float / int32 tensors (integer
// outputs dequantized with their params).
Result<std::vector<ir::Tensor>> run_executor(GraphExecutor& exec, const ir::Graph& graph,
                                             const std::vector<ir::NamedTensor>& inputs);

// Runs `graph` on the interpreter and its artifact on the runtime with `kernels`; returns
// {interpreter outputs, runtime outputs}.
struct BothRuns {
  std::vector<ir::Tensor> reference, runtime;
  PlanSummary summary;
};
Result<BothRuns> run_both(const ir::Graph& graph, const std::vector<ir::NamedTensor>& inputs,
                          KernelChoice kernels, const backend::MemoryPlanOptions& memory = {});

// Largest |a - b| over all float elements (int32 tensors must be equal: +inf otherwise).
double max_abs_diff(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b);
// True when every element has the same bits; otherwise describes the first difference.
bool bit_identical(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b,
                   std::string* why);

}  // namespace hs::runtime::testing

// Test fixtures on graphs: random step inputs for a static llama graph, and synthetic
// quantization (weights per-channel int8 or per-block int4; activations per-tensor uint16
// from one float calibration run, layout ops sharing their input's params).
#pragma once

#include <cstdint>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/ir/interpreter.h"

namespace hs::testing {

// Inputs for one step of a graph built by frontend::build_llama: random token ids, positions
// n_past..n_past+T-1 (n_past random in [0, P]), a causal SmartMask mask over n_past cached
// slots, random cache contents. Deterministic in `seed`.
std::vector<ir::NamedTensor> random_step_inputs(const ir::Graph& graph, uint64_t seed);

enum class SyntheticWeights { kNone, kPerChannelInt8, kPerBlockInt4 };

struct SyntheticQuant {
  SyntheticWeights weights = SyntheticWeights::kPerChannelInt8;
  int64_t block = 32;          // per-block int4: block size along input channels
  bool activations = true;     // per-tensor uint16 on every real activation and graph input
  uint64_t calibration_seed = 99;
};

// Quantizes the projection weights (operand 1 of conv2d/linear) and, optionally, activations.
Status quantize_synthetic(ir::Graph& graph, const SyntheticQuant& options);

// True when both tensor lists are bit-identical (shapes, dtypes and every float's bits);
// otherwise describes the first difference in `why`.
bool bit_identical(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b,
                   std::string* why);

}  // namespace hs::testing

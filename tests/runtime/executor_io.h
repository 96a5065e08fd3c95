// Test helpers for driving a GraphExecutor with raw bytes: seeded inputs with a SmartMask
// causal mask, and one execution returning every output's bytes.
#pragma once

#include <cstring>
#include <random>
#include <vector>

#include "headsplit/runner/kv_manager.h"
#include "headsplit/runtime/executor.h"
#include "headsplit/support/result.h"

namespace hs::runtime::testing {

using Bytes = std::vector<std::byte>;

// Bytes for every input of `exec`: the attention_mask input a causal SmartMask mask at n_past
// (an f32 mask: 0 / -255, as ArtifactStepModel converts it), i32 inputs in [0, i32_bound), f32
// inputs (float caches) seeded values in [-2, 2], everything else (integer storage) seeded
// bytes.
inline std::vector<Bytes> causal_inputs(const GraphExecutor& exec, int64_t n_past, uint64_t seed,
                                        int32_t i32_bound = 4) {
  std::mt19937_64 rng(seed);
  std::vector<Bytes> out;
  for (const IoDesc& d : exec.inputs()) {
    Bytes bytes(static_cast<size_t>(d.bytes));
    if (d.name == "attention_mask" && d.type == artifact::ElementType::kF32) {
      const int64_t c = d.shape.back(), t = static_cast<int64_t>(d.bytes / 4) / c;
      runner::AttentionMask mask(t, c);
      mask.init_causal(n_past);
      for (size_t i = 0; i < mask.data().size(); ++i) {
        const float v = mask.data()[i] == runner::AttentionMask::kAttend ? 0.f : -255.f;
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
    } else if (d.name == "attention_mask") {
      const int64_t c = d.shape.back(), t = static_cast<int64_t>(d.bytes / 2) / c;
      runner::AttentionMask mask(t, c);
      mask.init_causal(n_past);
      std::memcpy(bytes.data(), mask.data().data(), bytes.size());
    } else if (d.type == artifact::ElementType::kF32) {
      std::uniform_real_distribution<float> value(-2.f, 2.f);
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        const float v = value(rng);
        std::memcpy(bytes.data() + i, &v, 4);
      }
    } else if (d.type == artifact::ElementType::kI32) {
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        const auto k = static_cast<int32_t>(rng() % static_cast<uint64_t>(i32_bound));
        std::memcpy(bytes.data() + i, &k, 4);
      }
    } else {
      for (std::byte& b : bytes) b = static_cast<std::byte>(rng());
    }
    out.push_back(std::move(bytes));
  }
  return out;
}

// Binds `in` and fresh output buffers, executes, returns the outputs.
inline Result<std::vector<Bytes>> execute_bytes(GraphExecutor& exec, const std::vector<Bytes>& in) {
  for (size_t i = 0; i < in.size(); ++i) HS_TRY(exec.bind_input(static_cast<int>(i), in[i]));
  std::vector<Bytes> out;
  for (const IoDesc& d : exec.outputs()) out.emplace_back(static_cast<size_t>(d.bytes));
  for (size_t i = 0; i < out.size(); ++i) HS_TRY(exec.bind_output(static_cast<int>(i), out[i]));
  HS_TRY(exec.execute());
  return out;
}

}  // namespace hs::runtime::testing

// BFloat16 copies of a graph's constant projection weights for KernelSet::kFast with
// InterpreterOptions::bf16_weights (kernels/gemm_bf16.h): shared by the interpreters that run the
// same graphs on several threads (calibration windows), so each weight is converted, and held,
// once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "headsplit/kernels/gemm_bf16.h"
#include "headsplit/support/result.h"

namespace hs::ir {

class Bf16Weights {
 public:
  // The bfloat16 copy of W[N,K] whose float32 data starts at `w` (a graph constant's bytes: the
  // key, so the graph must outlive this store), converted on the first call. Thread-safe.
  // Large weights are converted on `pool` (null: the calling thread).
  Result<const kernels::Bf16Matrix*> get(const float* w, int64_t n, int64_t k,
                                         kernels::ThreadPool* pool = nullptr);
  // Bytes held by the copies.
  size_t bytes() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<const float*, std::unique_ptr<kernels::Bf16Matrix>> copies_;
};

}  // namespace hs::ir

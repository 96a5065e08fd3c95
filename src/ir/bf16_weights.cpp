#include "headsplit/ir/bf16_weights.h"

#include <span>
#include <utility>

namespace hs::ir {

Result<const kernels::Bf16Matrix*> Bf16Weights::get(const float* w, int64_t n, int64_t k,
                                                    kernels::ThreadPool* pool) {
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = copies_.find(w);
  if (it != copies_.end()) {
    if (it->second->n != n || it->second->k != k) {
      return errorf(ErrorKind::kShape,
                    "bf16 weights: the weight at {} was converted as {}x{}, asked for as {}x{}",
                    static_cast<const void*>(w), it->second->n, it->second->k, n, k);
    }
    return it->second.get();
  }
  HS_ASSIGN_OR_RETURN(
      kernels::Bf16Matrix m,
      kernels::to_bf16(std::span<const float>(w, static_cast<size_t>(n * k)), n, k, pool));
  auto copy = std::make_unique<kernels::Bf16Matrix>(std::move(m));
  const kernels::Bf16Matrix* p = copy.get();
  copies_.emplace(w, std::move(copy));
  return p;
}

size_t Bf16Weights::bytes() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  size_t total = 0;
  for (const auto& [key, m] : copies_) total += m->pairs().size_bytes();
  return total;
}

}  // namespace hs::ir

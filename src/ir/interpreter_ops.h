// Internal to the interpreter: how an IR node runs on the reference kernels.
#pragma once

#include <span>

#include "headsplit/ir/interpreter.h"
#include "headsplit/kernels/reference.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::ir::detail {

// A read-only operand: a Tensor, or a float32 constant's bytes viewed in place (no copy).
// Real values use `f`, i32 and bool values `i`.
struct Operand {
  DType dtype = DType::kF32;  // kF32, kI32 or kBool
  const Shape* shape = nullptr;
  const float* f = nullptr;
  const int32_t* i = nullptr;
  // A constant projection weight's bfloat16 copy (InterpreterOptions::bf16_weights), or null.
  const kernels::Bf16Matrix* bf16 = nullptr;

  int64_t numel() const { return num_elements(*shape); }
  static Operand of(const Tensor& t) {
    return {t.dtype, &t.shape, t.f.data(), t.i.data(), nullptr};
  }
};

// One pool for the fast kernels of every interpreter in the process, for calls of at least 2^20
// multiply-adds (m * n * k): smaller ones run on the calling thread, where waking (and then
// spinning) workers costs more than it saves. Null on a thread in a SerialKernelsScope (the
// pool is then not even created).
kernels::ThreadPool* fast_pool(int64_t m, int64_t n, int64_t k);

// While alive, the kFast kernels of the calling thread run without the shared pool
// (InterpreterOptions::threaded_kernels == false); restores the previous setting.
class SerialKernelsScope {
 public:
  explicit SerialKernelsScope(bool serial);
  ~SerialKernelsScope();
  SerialKernelsScope(const SerialKernelsScope&) = delete;
  SerialKernelsScope& operator=(const SerialKernelsScope&) = delete;

 private:
  bool previous_;
};

// Runs `node` on its operands `in` (one per node input, with the shapes and kinds the
// interpreter checked at create) into `y`, already allocated with the output shape and kind.
// Returns the kernel's error (gather index out of range) without context.
Status run_node(const Node& node, std::span<const Operand> in, KernelSet kernels, Tensor& y);

// KernelSet::kFast matmul(a, R) where R [...,Hkv*group,a,b] is the GQA repeat of x
// [...,Hkv,a,b] (interpreter_fusion.h), reading x in place. Bit-identical to materialising
// R and running the fast matmul on it.
Status run_repeat_kv_matmul(const Operand& a, const Operand& x, const Shape& r_shape, int64_t group,
                            Tensor& y);

}  // namespace hs::ir::detail

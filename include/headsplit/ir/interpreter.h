// The reference interpreter: runs any graph in float32, one naive kernel per op.
//
// Semantics of quantized graphs (docs/ir.md): every quantized value holds its fake-quantized
// real value (quantize with round-half-to-even and clamp, then dequantize); arithmetic is
// float32. Quantized constants (integer storage + params) are dequantized once when the
// interpreter is created. Real-valued graph inputs are given as float tensors and are
// fake-quantized on entry when their type is quantized.
#pragma once

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/ir/bf16_weights.h"
#include "headsplit/ir/graph.h"

namespace hs::ir {

namespace detail {
struct Operand;  // interpreter_ops.h
}

// A runtime tensor of the interpreter. Real values (f32 and quantized types) use `f`;
// i32 and bool use `i` (bool as 0/1).
struct Tensor {
  DType dtype = DType::kF32;  // kF32, kI32 or kBool only
  Shape shape;
  std::vector<float> f;
  std::vector<int32_t> i;

  int64_t numel() const { return num_elements(shape); }
  static Tensor zeros_f32(Shape shape);
  static Tensor from_f32(Shape shape, std::vector<float> data);
  static Tensor from_i32(Shape shape, std::vector<int32_t> data);
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// A graph input given by reference, read in place during one run (no copy). Real inputs
// read `f`, i32 and bool inputs `i` (bool as 0/1); the caller keeps name, shape and data
// alive for the call.
struct InputView {
  std::string_view name;
  DType dtype = DType::kF32;  // the tensor's kind: kF32, kI32 or kBool (i32 accepted for bool)
  const Shape* shape = nullptr;
  std::span<const float> f;
  std::span<const int32_t> i;

  static InputView of(const NamedTensor& t) {
    return {t.name, t.tensor.dtype, &t.tensor.shape, t.tensor.f, t.tensor.i};
  }
};

enum class KernelSet : uint8_t {
  kReference,  // naive kernels: obviously correct, deterministic per-element order
  kFast,       // SIMD/threaded kernels for conv2d/linear/matmul (calibration of big models)
};

struct InterpreterOptions {
  KernelSet kernels = KernelSet::kReference;
  // Apply fake quantization to values with quantized types (off: run a quantized graph as
  // if it were float, for debugging).
  bool fake_quant = true;
  // kFast: large conv2d/linear/matmul calls run on the process-wide kernel thread pool (true)
  // or on the calling thread only (false: for callers that run several interpreters on their
  // own threads, e.g. calibration windows in parallel). Results are bit-identical either way.
  bool threaded_kernels = true;
  // With threaded_kernels false: the kernels still take the pool in the runs that start while
  // *pool_when is true (the caller raises it when the other threads it runs interpreters on
  // have finished, e.g. calibration's last window). Null: never. Bit-identical either way.
  const std::atomic<bool>* pool_when = nullptr;
  // kFast on a CPU with AVX512_BF16 (kernels::bf16_matmul_supported()): conv2d and linear with a
  // constant float32 weight multiply in bfloat16 (kernels::matmul_bf16: both operands rounded to
  // bfloat16, float32 sums; about 2^-8 relative error per product), reading the weight's copy
  // from this store, made when the interpreter is created. Twice the multiply-adds per
  // instruction and half the weight bytes: for calibration, where only ranges matter. Null, or
  // no AVX512_BF16: float32 (gemm.h).
  std::shared_ptr<Bf16Weights> bf16_weights;
};

class Interpreter {
 public:
  // Prepares constants (dequantizes quantized ones). The graph must outlive the interpreter
  // and must verify.
  static Result<Interpreter> create(const Graph& graph, InterpreterOptions options = {});

  // Called after each node with every output value it produced (after fake quantization).
  // KernelSet::kFast skips the unsqueeze/expand/reshape of a GQA KV repeat feeding a matmul
  // (the matmul reads the unexpanded value), so those three values are not reported.
  using Observer = std::function<void(ValueId, const Tensor&)>;

  // Runs the graph. `inputs` are matched to graph inputs by name; all must be present with
  // their declared shapes. Returns the graph outputs in order. Not for concurrent calls on
  // one interpreter: runs reuse the interpreter's storage pool (one interpreter per thread).
  Result<std::vector<Tensor>> run(std::span<const NamedTensor> inputs,
                                  const Observer& observer = nullptr);

  // As run, for callers that step the same graph repeatedly: inputs are read in place (real
  // inputs with a quantized type are copied to be fake-quantized), and the graph outputs are
  // written into `outputs` (resized to the output count), reusing the storage of the tensors
  // it holds. On error, `outputs` is left in an unspecified valid state.
  Status run_into(std::span<const InputView> inputs, std::vector<Tensor>& outputs,
                  const Observer& observer = nullptr);

  const Graph& graph() const { return *graph_; }

 private:
  Interpreter(const Graph& graph, InterpreterOptions options) : graph_(&graph), options_(options) {}
  Status prepare();
  Status prepare_bf16();
  // Checks `inputs` against the graph inputs and sets what each reads from (bound[id], by
  // ValueId): the caller's data, or a fake-quantized copy in `live` (quantized real inputs).
  Status bind_inputs(std::span<const InputView> inputs, std::vector<Tensor>& live,
                     std::vector<detail::Operand>& bound) const;

  const Graph* graph_;
  InterpreterOptions options_;
  std::vector<Tensor> constants_;  // indexed by ValueId; empty for non-constants
  // Indexed by ValueId: the bfloat16 copy of a constant projection weight (bf16_weights), or null.
  std::vector<const kernels::Bf16Matrix*> bf16_;
  // Per value: the last live node reading it (kNoNode if none). Intermediates and inputs are
  // freed after that node runs, unless they are graph outputs.
  std::vector<NodeId> last_use_;
  // Storage of freed node outputs, reused by later nodes and later runs instead of fresh
  // zero-filled allocations (page faults and memset on every step). Every kernel writes
  // all of its output, so reused storage is not cleared.
  std::vector<std::vector<float>> free_f_;
  std::vector<std::vector<int32_t>> free_i_;
};

// The value of a constant as the interpreter sees it: real constants (f32, or integer
// storage dequantized with their params) as f32; i32 and bool constants as i32 (bool 0/1).
Result<Tensor> read_constant(const Graph& graph, ValueId id);

// Fake-quantizes a real tensor in place with `quant` (no-op for QuantKind::kNone).
// The caller guarantees `quant` fits `tensor.shape` (check_quant).
void fake_quantize(const QuantParams& quant, Tensor& tensor);

// One-shot convenience: create + run.
Result<std::vector<Tensor>> run_graph(const Graph& graph, std::span<const NamedTensor> inputs,
                                      InterpreterOptions options = {});

}  // namespace hs::ir

// The reference interpreter: runs any graph in float32, one naive kernel per op.
//
// Semantics of quantized graphs (docs/ir.md): every quantized value holds its fake-quantized
// real value (quantize with round-half-to-even and clamp, then dequantize); arithmetic is
// float32. Quantized constants (integer storage + params) are dequantized once when the
// interpreter is created. Real-valued graph inputs are given as float tensors and are
// fake-quantized on entry when their type is quantized.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "headsplit/ir/graph.h"

namespace hs::ir {

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
  // their declared shapes. Returns the graph outputs in order.
  Result<std::vector<Tensor>> run(std::span<const NamedTensor> inputs,
                                  const Observer& observer = nullptr);

  const Graph& graph() const { return *graph_; }

 private:
  Interpreter(const Graph& graph, InterpreterOptions options) : graph_(&graph), options_(options) {}
  Status prepare();
  // Checks `inputs` against the graph inputs and stores them (fake-quantized) in `live`.
  Status bind_inputs(std::span<const NamedTensor> inputs, std::vector<Tensor>& live,
                     std::vector<const Tensor*>& env) const;

  const Graph* graph_;
  InterpreterOptions options_;
  std::vector<Tensor> constants_;  // indexed by ValueId; empty for non-constants
  // Per value: the last live node reading it (kNoNode if none). Intermediates and inputs are
  // freed after that node runs, unless they are graph outputs.
  std::vector<NodeId> last_use_;
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

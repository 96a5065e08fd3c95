// ArtifactStepModel: the graphs of a loaded artifact (prefill AR-N and decode AR-1) as a
// runner::StepModel, so runner::Generator drives them exactly as it drives the interpreter
// (irexec/graph_step_model.h): one shared KvManager whose caches stay in their stored form
// (u8/u16 integers for quantized caches, bound to the graphs in place), SmartMask, sampler.
//
// The graphs' I/O is checked against the step-I/O contract (opset/step_io.h). Per step it binds
// the graph's I/O to the runner's buffers (contract §5):
//   tokens, input_pos       the runner's int32 spans
//   attention_mask          the runner's uint16 SmartMask as is (quantized graphs: 65535/0 are
//                           the stored integers); float graphs get 0 / -255 floats
//   k_cache.{l}, v_cache.{l}   KvManager::k_in(l), v_in(l); per-head layouts (k_cache.{l}.{g})
//   k_new.{l}, v_new.{l}       bind head g's contiguous slice of the per-layer buffers
//   logits                  the runner's float span (f32 graphs) or a u16 buffer dequantized
//                           with the output's params after the step
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/runtime/executor.h"

namespace hs::kernels {
class ThreadPool;
}  // namespace hs::kernels

namespace hs::runtime {

using CacheLayout = opset::CacheLayout;

struct StepModelOptions {
  KernelChoice kernels = KernelChoice::kFast;
  int threads = 0;                      // the model's own pool; <= 0: hardware concurrency
  kernels::ThreadPool* pool = nullptr;  // use this pool instead (must outlive the model)
  bool batch_heads = true;              // ExecOptions::batch_heads
  bool skip_dead_columns = true;        // ExecOptions::skip_dead_columns
  bool fuse_rope = true;                // ExecOptions::fuse_rope
};

// Graph I/O bound per step.
struct BindingCounts {
  int64_t inputs = 0, outputs = 0;        // all graph I/O
  int64_t kv_inputs = 0, kv_outputs = 0;  // k_cache/v_cache inputs, k_new/v_new outputs
};

class ArtifactStepModel final : public runner::StepModel {
 public:
  // Plans every graph of the artifact. All graphs must agree on L, Hkv, Dh, C, V, the cache
  // layout, element type and encodings (they share one KvManager). Errors name the artifact,
  // the graph and the I/O tensor, with expected and actual types.
  static Result<std::unique_ptr<ArtifactStepModel>> create(
      std::shared_ptr<const artifact::LoadedArtifact> artifact,
      const StepModelOptions& options = {});
  ~ArtifactStepModel() override;
  ArtifactStepModel(const ArtifactStepModel&) = delete;
  ArtifactStepModel& operator=(const ArtifactStepModel&) = delete;

  const runner::StepModelInfo& info() const override { return info_; }
  void want_logits_rows(int64_t first, int64_t count) override {
    rows_first_ = first;
    rows_count_ = count;
  }
  Status step(int64_t ar_len, std::span<const int32_t> tokens, std::span<const int32_t> positions,
              std::span<const uint16_t> mask, runner::KvManager& kv,
              std::span<float> logits) override;

  CacheLayout cache_layout() const { return layout_; }
  int threads() const;
  // The executor of the graph for `ar_len`, or nullptr.
  const GraphExecutor* executor(int64_t ar_len) const;
  BindingCounts binding_counts(int64_t ar_len) const;
  // Time spent binding I/O and running graphs, summed over steps (for benchmarks).
  double bind_seconds() const { return bind_seconds_; }
  double execute_seconds() const { return execute_seconds_; }

 private:
  int64_t rows_first_ = 0, rows_count_ = -1;  // want_logits_rows, for the next step
  struct Run;  // one graph: executor, I/O positions, conversion buffers (step_model.cpp)
  ArtifactStepModel();
  Run* find(int64_t ar_len) const;

  std::shared_ptr<const artifact::LoadedArtifact> artifact_;
  std::unique_ptr<kernels::ThreadPool> own_pool_;
  kernels::ThreadPool* pool_ = nullptr;
  runner::StepModelInfo info_;
  CacheLayout layout_ = CacheLayout::kPerLayer;
  std::vector<std::unique_ptr<Run>> runs_;
  double bind_seconds_ = 0.0, execute_seconds_ = 0.0;
};

}  // namespace hs::runtime

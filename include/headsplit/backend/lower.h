// Lowering of preprocessed graphs to the artifact's program (artifact::Program), and writing
// it. Every IR value becomes a tensor of the same type (role input, output, constant or
// intermediate; intermediates carry their memory-plan offset). Constants become weights,
// deduplicated across graphs: two constants share one weight when they view the same bytes
// of the same source buffer, or when their bytes are equal (content hash, then a byte
// compare), and they have the same dtype, quant params, element count and leading dimension
// (a tied LM head [V,D,1,1] shares the embedding [V,D]). A weight is named after its first
// constant ("name.1", ... when another weight already has that name).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "headsplit/artifact/program.h"
#include "headsplit/artifact/writer.h"
#include "headsplit/backend/memory_plan.h"
#include "headsplit/ir/graph.h"
#include "headsplit/support/buffer.h"

namespace hs::backend {

struct GraphToLower {
  const ir::Graph* graph = nullptr;  // preprocessed, verified
  std::string name;                  // "prefill" (AR-N) or "decode" (AR-1)
  int64_t ar_len = 1;                // T
  const MemoryPlan* plan = nullptr;  // plan_memory(*graph)
};

struct LoweredProgram {
  artifact::Program program;
  // The IR bytes of each weight (i4: one element per byte; write_lowered packs it).
  std::vector<BufferView> weight_data;
  // Per graph: ValueId -> tensor index in program.graphs[i].tensors.
  std::vector<std::vector<int32_t>> tensor_of_value;

  // Stored bytes of the weights (int4 packed), without alignment padding.
  int64_t weight_bytes() const;
};

// Lowers the graphs (in the given order) into one program with `metadata` and `tokenizer`.
// Errors: a graph or plan missing, a constant whose data does not match its type
// (kInternal), and check failures of the resulting program (artifact::check_program).
Result<LoweredProgram> lower(std::span<const GraphToLower> graphs, artifact::ModelMetadata metadata,
                             tokenizer::TokenizerData tokenizer);

struct WriteOptions {
  // Called before weight `index` of `count` is written. An error cancels the write: nothing is
  // left at the destination (an existing file there is untouched) and no temporary file.
  std::function<Status(int64_t index, int64_t count)> before_weight;
};

// Writes a lowered program to `path` atomically (artifact::write_artifact), streaming each
// weight from its source buffer; i4 weights are packed per row (artifact/int4.h).
Result<artifact::WriteSummary> write_lowered(const std::string& path, const LoweredProgram& lowered,
                                             const WriteOptions& options = {});

}  // namespace hs::backend

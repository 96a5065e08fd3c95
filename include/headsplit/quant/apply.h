// Apply: a float graph + a calibration table + a config -> the quantized graph.
//
// Every activation takes its sharing group's encoding (annotate.h): integer storage type
// (u8/u16) and per-tensor params from the union of the members' observed ranges (mask: the
// fixed mask encoding). Weights become integer storage (i8/i4) with per-channel or per-block
// params, the token embedding per-row int8; other constants stay float32. Quantization is
// expressed in types only: no quantize/dequantize nodes are inserted.
//
// Weights are quantized once per source: a WeightCache keys them by the identity of the
// float bytes they view (buffer, offset, size), shape and spec, so the prefill and decode graphs
// built from one model view one quantized buffer with identical params.
#pragma once

#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/quant/annotate.h"
#include "headsplit/quant/params.h"

namespace hs::quant {

class WeightCache {
 public:
  // The quantized form of float32 constant `value` under `spec`, quantized on first use.
  // `override` (SeqMSE / GPTQ, weight_search.h) replaces MinMax + rounding; it is part of the
  // key by address, so it must outlive the cache.
  Result<QuantizedWeight> get(const ir::Value& value, const WeightSpec& spec,
                              const WeightOverride* override = nullptr);
  size_t size() const { return entries_.size(); }

 private:
  using Key =
      std::tuple<const Buffer*, size_t, size_t, ir::Shape, int, int64_t, bool, const WeightOverride*>;
  struct Entry {
    std::shared_ptr<const Buffer> source;  // keeps the key's buffer address unique
    QuantizedWeight weight;
  };
  std::map<Key, Entry> entries_;
};

// Quantizes a copy of `graph`. Errors: annotation errors (rules), a group none of whose values
// was observed (kInvalidArgument naming a value: the graph was not calibrated with `table`),
// non-finite ranges or weights, and a result that does not verify (kInternal).
// `overrides` (by weight name; SeqMSE / GPTQ) replace MinMax + rounding for the weights they
// name.
Result<ir::Graph> apply_quantization(const ir::Graph& graph, const CalibrationTable& table,
                                     const QuantConfig& config, WeightCache& cache,
                                     const WeightOverrides* overrides = nullptr);

// All graphs of one export with one WeightCache.
Result<std::vector<ir::Graph>> apply_quantization(std::span<const ir::Graph> graphs,
                                                  const CalibrationTable& table,
                                                  const QuantConfig& config,
                                                  const WeightOverrides* overrides = nullptr);

}  // namespace hs::quant

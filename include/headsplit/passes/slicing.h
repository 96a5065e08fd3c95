// Slicing a tensor's type and a constant's data together, so per-axis and per-block
// quantization parameters always travel with the elements they describe.
#pragma once

#include <cstdint>

#include "headsplit/ir/graph.h"

namespace hs::passes {

// The type side of a slice (shape and quantization params) is the op set's.
using opset::slice_type;

// The data of `constant` restricted to [start, end) along `axis`. When every axis before
// `axis` has size 1 the slice is contiguous and the result is a view of the same bytes (no
// copy); otherwise the elements are copied into a new buffer.
Result<BufferView> slice_constant_data(const ir::Value& constant, int64_t axis, int64_t start,
                                       int64_t end);

// True when slice_constant_data returns a view for this slice.
bool slice_is_view(const ir::Shape& shape, int64_t axis);

}  // namespace hs::passes

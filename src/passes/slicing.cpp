// Slicing a constant's data (the type side is opset::slice_type).
#include "headsplit/passes/slicing.h"

#include <cstring>

namespace hs::passes {

bool slice_is_view(const ir::Shape& shape, int64_t axis) {
  for (int64_t i = 0; i < axis; ++i) {
    if (shape[static_cast<size_t>(i)] != 1) return false;
  }
  return true;
}

Result<BufferView> slice_constant_data(const ir::Value& constant, int64_t axis, int64_t start,
                                       int64_t end) {
  if (!constant.is_constant()) {
    return errorf(ErrorKind::kInternal, "'{}' is not a constant", constant.name);
  }
  const ir::TensorType& t = constant.type;
  HS_ASSIGN_OR_RETURN(int64_t a, ir::normalize_axis(axis, t.rank(), constant.name));
  const int64_t dim = t.shape[static_cast<size_t>(a)];
  if (start < 0 || end > dim || start >= end) {
    return errorf(ErrorKind::kShape, "'{}': slice [{}, {}) outside axis {} of size {}",
                  constant.name, start, end, a, dim);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < a; ++i) outer *= t.shape[static_cast<size_t>(i)];
  for (int64_t i = a + 1; i < t.rank(); ++i) inner *= t.shape[static_cast<size_t>(i)];
  const auto esize = static_cast<size_t>(ir::dtype_size(t.dtype));
  const auto chunk = static_cast<size_t>((end - start) * inner) * esize;
  const auto row = static_cast<size_t>(dim * inner) * esize;
  const auto first = static_cast<size_t>(start * inner) * esize;
  if (outer == 1) return constant.data->sub(first, chunk);  // contiguous: a view
  auto buffer = std::make_shared<HeapBuffer>(chunk * static_cast<size_t>(outer));
  std::span<const std::byte> src = constant.data->bytes();
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(buffer->mutable_bytes().data() + static_cast<size_t>(o) * chunk,
                src.data() + static_cast<size_t>(o) * row + first, chunk);
  }
  size_t size = buffer->size();
  return BufferView{std::move(buffer), 0, size};
}

}  // namespace hs::passes

// Small IR graph building helpers for the runtime op tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/support/buffer.h"

namespace hs::runtime::testing {

// A per-tensor u16 encoding covering [lo, hi] (the activation params of the 16-bit schemes).
inline ir::QuantParams u16_params(float lo, float hi) {
  const float scale = (hi - lo) / 65535.f;
  const auto zp = static_cast<int32_t>(std::lround(-lo / scale));
  return ir::QuantParams::per_tensor(scale, zp, 16, 0, 65535);
}

inline ir::ValueId must(Result<ir::ValueId> r) {
  HS_CHECK(r.ok(), r.ok() ? "" : r.error().message());
  return *r;
}

// A float constant with seeded values in [-1, 1] (or the given data).
inline ir::ValueId f32_constant(ir::Graph& g, const std::string& name, ir::Shape shape,
                                uint64_t seed, std::vector<float> data = {}) {
  const auto n = static_cast<size_t>(ir::num_elements(shape));
  if (data.empty()) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    data.resize(n);
    for (float& v : data) v = dist(rng);
  }
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span<const float>(data)));
  return must(g.add_constant(name, ir::TensorType::f32(std::move(shape)),
                             BufferView{buf, 0, buf->size()}));
}

// An integer-storage constant (one byte per element for i8/u8/i4, two for u16/i16) with
// seeded values in [qmin, qmax] of `quant`.
inline ir::ValueId int_constant(ir::Graph& g, const std::string& name, ir::DType dtype,
                                ir::Shape shape, ir::QuantParams quant, uint64_t seed) {
  const auto n = static_cast<size_t>(ir::num_elements(shape));
  const auto size = static_cast<size_t>(ir::dtype_size(dtype));
  std::vector<std::byte> bytes(n * size);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; ++i) {
    const auto range = static_cast<uint64_t>(quant.qmax - quant.qmin + 1);
    const int32_t q = quant.qmin + static_cast<int32_t>(rng() % range);
    if (size == 1) {
      bytes[i] = static_cast<std::byte>(static_cast<uint8_t>(q));
    } else {
      const auto v = static_cast<uint16_t>(q);
      std::memcpy(bytes.data() + 2 * i, &v, 2);
    }
  }
  auto buf = HeapBuffer::copy_of(bytes);
  return must(g.add_constant(name, ir::TensorType{dtype, std::move(shape), std::move(quant)},
                             BufferView{buf, 0, buf->size()}));
}

inline ir::ValueId emit(ir::Graph& g, ir::OpKind op, std::vector<ir::ValueId> in, ir::Attrs attrs,
                        const std::string& name) {
  return must(g.emit(op, std::move(in), std::move(attrs), name));
}

// Gives every real value produced by a node (and every real graph input) u16 params over
// [-8, 8], turning a float graph into a quantized one (fake-quant after every node).
inline void quantize_activations(ir::Graph& g) {
  for (ir::ValueId v = 0; v < g.num_values(); ++v) {
    ir::Value& value = g.value(v);
    if (value.is_constant() || value.type.dtype != ir::DType::kF32) continue;
    value.type.dtype = ir::DType::kU16;
    value.type.quant = u16_params(-8.f, 8.f);
  }
}

}  // namespace hs::runtime::testing

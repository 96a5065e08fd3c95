// Internal plumbing of the fast matmuls (gemm.h, qgemm.h), shared by their translation units:
// validated call arguments, blocking constants, the int4 k order, per-thread scratch and the
// row-parallel driver. Not SIMD code: the per-target pieces are in matmul-inl.h.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "headsplit/kernels/gemm.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/support/result.h"

namespace hs::kernels::detail {

// One validated matmul call (sizes checked against the spans).
struct MatmulCall {
  size_t m = 0, n = 0, k = 0;
  ActLayout layout = ActLayout::kTokenMajor;
  const float* x = nullptr;     // token-major [M,K], channel-major [K,M]
  float* y = nullptr;           // token-major [M,N], channel-major [N,M]
  const float* bias = nullptr;  // [N] or null
  ThreadPool* pool = nullptr;   // null: the calling thread only
};

// Quantized weights of a validated call.
struct QWeightsCall {
  const uint8_t* data = nullptr;  // int8 [N,K] or packed int4 [N, ceil(K/2)]
  const float* scales = nullptr;  // [N, blocks]
  size_t block = 0;               // 0: per output channel (blocks = 1)
  size_t blocks = 1;              // scales per row
  // LPBQ factors (qgemm.h QuantizedWeights::lpbq_*): [N] and [N, blocks], or null.
  const float* lpbq_scales = nullptr;
  const uint8_t* lpbq_mult = nullptr;
  const int32_t* lpbq_sums = nullptr;  // [N] (QuantizedWeights::lpbq_row_sums), or null
};

// Blocking (the same on every target).
inline constexpr size_t kPanelMinM = 8;  // M below this takes the dot path
inline constexpr size_t kMr = 6;         // weight rows per panel register tile
inline constexpr size_t kDotRows = 4;    // weight rows per dot tile
inline constexpr size_t kKc = 256;       // k per block; a multiple of kNibbleGroup
inline constexpr size_t kNc = 8 * kMr;   // weight rows per n block (staged together)
inline constexpr size_t kMc = 256;       // tokens per m block
inline constexpr size_t kNibbleGroup = 16;
// Calls with fewer multiply-adds than this run on the calling thread only (2^17: the split
// graph's per-head projections, e.g. 64 x 576, stay inline; one parallel region costs about as
// much as they do, and far more on an oversubscribed machine).
inline constexpr size_t kMinParallelMacs = size_t{1} << 17;

// The order in which packed x holds the inputs k. kNibbleGroups matches packed int4 rows:
// within each full group of 16 inputs ([0, K16), K16 = K rounded down to 16) the even k come
// first, then the odd k, so the low and high nibbles of 8 bytes meet 8 contiguous x values
// each. Inputs from K16 on keep their natural order.
enum class KOrder : uint8_t { kNatural, kNibbleGroups };

inline size_t grouped_end(size_t k) { return k / kNibbleGroup * kNibbleGroup; }

// The input k stored at packed position `pos`.
inline size_t source_k(KOrder order, size_t pos, size_t k_grouped) {
  if (order == KOrder::kNatural || pos >= k_grouped) return pos;
  const size_t group = pos / kNibbleGroup * kNibbleGroup, o = pos % kNibbleGroup;
  return group + (o < kNibbleGroup / 2 ? 2 * o : 2 * (o - kNibbleGroup / 2) + 1);
}

// Signed nibble of k in a packed int4 row (low nibble = even k).
inline int32_t int4_at(const uint8_t* row, size_t k) {
  const uint8_t byte = row[k / 2];
  const int32_t nib = (k % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
  return nib >= 8 ? nib - 16 : nib;
}

// Per-thread grow-only 64-byte aligned float buffers, one per slot. Null if allocation fails.
enum class ScratchSlot : uint8_t { kPackedX, kTile, kStage, kExactAct, kExactComb, kCount };
float* thread_scratch(ScratchSlot slot, size_t floats);
Error out_of_memory(std::string_view op, size_t floats);

// Checks shape, x, y and bias; fills everything of MatmulCall.
Result<MatmulCall> check_call(std::string_view op, const MatmulShape& shape,
                              std::span<const float> x, std::span<const float> bias,
                              std::span<float> y, ThreadPool* pool);

// Handles the calls with nothing to multiply (M or N == 0: nothing; K == 0: y = bias or 0).
// Returns true when it did.
bool handle_empty(const MatmulCall& c);

// Calls fn(n_begin, n_end) over [0, N) on the pool, in ranges aligned to `unit` rows.
template <typename Fn>
void for_rows(const MatmulCall& c, size_t unit, Fn&& fn) {
  const double macs =
      static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k);
  ThreadPool* pool = macs < static_cast<double>(kMinParallelMacs) ? nullptr : c.pool;
  const size_t units = (c.n + unit - 1) / unit;
  parallel_for(pool, static_cast<int64_t>(units), [&](int64_t b, int64_t e) {
    fn(static_cast<size_t>(b) * unit, std::min(static_cast<size_t>(e) * unit, c.n));
  });
}

// The Highway target (HWY_AVX2, ...) the dynamically dispatched kernels run on now: the best of
// the CPU's supported targets (or of those ScopedSimdTarget allows) that was compiled. Cheap,
// unlike hwy::SupportedTargets(), which re-runs CPUID on every call (tens of microseconds in a
// virtual machine: more than a decode-sized matmul). simd_info.cpp.
int64_t dispatched_simd_target();

// The hand-written AVX-512 kernels (VNNI, BF16) may run: the CPU has AVX-512 F/BW/VL/DQ and the
// dispatched target is AVX3 or better (so a ScopedSimdTarget forcing AVX2 or below turns them
// off). Their own extension (avx512vnni, avx512bf16) is checked by the caller.
bool avx512_dispatched();

// The quantized entry points of the per-format translation units.
Status matmul_int8(const MatmulCall& c, const QWeightsCall& q);  // qgemm_int8.cpp
Status matmul_int4(const MatmulCall& c, const QWeightsCall& q);  // qgemm_int4.cpp

}  // namespace hs::kernels::detail

// The attention matmul with a right-hand side assembled from parts (kernels/matmul_parts.h):
// QKᵀ, P·V and other small batched float products whose B may be concat(cache, new) read in
// place, with u8/u16 cache columns dequantized in registers.
//
//   concat on N (scores = q · k_all, k_all = [K=Dh, N=C]): per part, column blocks of 4
//     vectors; per block acc[r][j] += a[m,k] * B[k, cols] over k increasing.
//   concat on K (out = p · v_all, v_all = [K=C, N=Dh]): column blocks of 4 vectors; per block
//     the parts in order, k increasing inside each, one accumulator chain per element.
// Each output element is `acc = 0; acc = acc + a[m,k] * b[k,n]` for k = 0..K-1 with separate
// multiply and add (no FMA: this file is compiled with -ffp-contract=off), exactly
// ref::matmul, so results are bit-identical to it.
// Threads: tasks are (batch, column block) pairs; a call below kMinParallelMacs runs inline.
#include <cstring>
#include <type_traits>

#include "simd_config.h"  // first: selects the Highway targets

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/matmul_parts_f32.cpp"  // relative to include/
#include "headsplit/kernels/matmul_parts.h"
#include "headsplit/kernels/quant.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef HS_KERNELS_MATMUL_PARTS_ONCE_
#define HS_KERNELS_MATMUL_PARTS_ONCE_
namespace hs::kernels::detail {
// Calls with fewer multiply-adds run on the calling thread: the split graph's per-head QK^T and
// P·V (M = 1, K or N = C = 1024, Dh = 64: 65536) stay inline instead of paying a parallel region
// each; P·V also skips the masked (zero) rows, so its real work is far below the nominal count.
inline constexpr int64_t kMinParallelMacs = int64_t{1} << 17;
}  // namespace hs::kernels::detail
#endif

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using opset::DType;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::Rebind<int32_t, DF>;

constexpr size_t kBlockVectors = 4;  // columns per block: 4 vectors

// Reads B elements of one part: float32 in place, integer storage dequantized in registers
// exactly as dequantize_one (scale * float(q - zero_point)).
template <DType kElem>
struct PartReader {
  // Integer storage dequantizes to finite values, so a zero a[m,k] adds a signed zero product,
  // which leaves acc unchanged (acc starts at +0 and a round-to-nearest sum is never -0 unless
  // both terms are): such k may be skipped bit-exactly (P·V over masked cache slots).
  static constexpr bool kFinite = kElem != DType::kF32;
  const std::byte* base;
  float scale;
  int32_t zero_point;

  HWY_INLINE VF Load(DF d, int64_t i) const {
    if constexpr (kElem == DType::kF32) {
      return hn::LoadU(d, reinterpret_cast<const float*>(base) + i);
    } else {
      using T = std::conditional_t<
          kElem == DType::kU8, uint8_t,
          std::conditional_t<kElem == DType::kI8, int8_t,
                             std::conditional_t<kElem == DType::kU16, uint16_t, int16_t>>>;
      const DI di;
      const hn::Rebind<T, DF> dt;
      const auto q = hn::PromoteTo(di, hn::LoadU(dt, reinterpret_cast<const T*>(base) + i));
      return hn::Mul(hn::ConvertTo(d, hn::Sub(q, hn::Set(di, zero_point))), hn::Set(d, scale));
    }
  }
  HWY_INLINE float At(int64_t i) const {
    if constexpr (kElem == DType::kF32) {
      float v;
      std::memcpy(&v, base + i * 4, 4);
      return v;
    } else {
      using T = std::conditional_t<
          kElem == DType::kU8, uint8_t,
          std::conditional_t<kElem == DType::kI8, int8_t,
                             std::conditional_t<kElem == DType::kU16, uint16_t, int16_t>>>;
      T q;
      std::memcpy(&q, base + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
      return dequantize_one(static_cast<int32_t>(q), scale, zero_point);
    }
  }
};

// Calls fn(reader) with the PartReader of the part's element type.
template <typename Fn>
HWY_INLINE void WithReader(const MatmulPart& part, const std::byte* base, Fn&& fn) {
  const float s = part.scale;
  const int32_t zp = part.zero_point;
  switch (part.storage) {
    case DType::kF32: return fn(PartReader<DType::kF32>{base, s, zp});
    case DType::kU8: return fn(PartReader<DType::kU8>{base, s, zp});
    case DType::kI8: return fn(PartReader<DType::kI8>{base, s, zp});
    case DType::kU16: return fn(PartReader<DType::kU16>{base, s, zp});
    case DType::kI16: return fn(PartReader<DType::kI16>{base, s, zp});
    default: break;
  }
}

// Concat on N: columns [c0, c0 + NV*lanes) of one part (row stride `ld`), all M rows.
template <size_t NV, typename Reader>
HWY_INLINE void NBlock(const Reader& rd, int64_t ld, int64_t c0, const float* a, int64_t m,
                       int64_t k, float* y, int64_t ldy) {
  const DF d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t r = 0;
  for (; r + 2 <= m; r += 2) {
    VF acc0[NV], acc1[NV];
    for (size_t j = 0; j < NV; ++j) acc0[j] = acc1[j] = hn::Zero(d);
    const float* a0 = a + r * k;
    const float* a1 = a0 + k;
    for (int64_t kk = 0; kk < k; ++kk) {
      const VF x0 = hn::Set(d, a0[kk]), x1 = hn::Set(d, a1[kk]);
      for (size_t j = 0; j < NV; ++j) {
        const VF b = rd.Load(d, kk * ld + c0 + static_cast<int64_t>(j) * lanes);
        acc0[j] = hn::Add(acc0[j], hn::Mul(x0, b));
        acc1[j] = hn::Add(acc1[j], hn::Mul(x1, b));
      }
    }
    for (size_t j = 0; j < NV; ++j) {
      hn::StoreU(acc0[j], d, y + r * ldy + static_cast<int64_t>(j) * lanes);
      hn::StoreU(acc1[j], d, y + (r + 1) * ldy + static_cast<int64_t>(j) * lanes);
    }
  }
  for (; r < m; ++r) {
    VF acc[NV];
    for (size_t j = 0; j < NV; ++j) acc[j] = hn::Zero(d);
    const float* a0 = a + r * k;
    for (int64_t kk = 0; kk < k; ++kk) {
      const VF x0 = hn::Set(d, a0[kk]);
      for (size_t j = 0; j < NV; ++j) {
        const VF b = rd.Load(d, kk * ld + c0 + static_cast<int64_t>(j) * lanes);
        acc[j] = hn::Add(acc[j], hn::Mul(x0, b));
      }
    }
    for (size_t j = 0; j < NV; ++j) {
      hn::StoreU(acc[j], d, y + r * ldy + static_cast<int64_t>(j) * lanes);
    }
  }
}

// Concat on N: columns [c0, c1) of one part; y points at the part's first column.
template <typename Reader>
void NColumns(const Reader& rd, int64_t ld, int64_t c0, int64_t c1, const float* a, int64_t m,
              int64_t k, float* y, int64_t ldy) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t c = c0;
  for (; c + static_cast<int64_t>(kBlockVectors) * lanes <= c1;
       c += static_cast<int64_t>(kBlockVectors) * lanes) {
    NBlock<kBlockVectors>(rd, ld, c, a, m, k, y + c, ldy);
  }
  for (; c + lanes <= c1; c += lanes) NBlock<1>(rd, ld, c, a, m, k, y + c, ldy);
  for (; c < c1; ++c) {
    for (int64_t r = 0; r < m; ++r) {
      float acc = 0.f;
      for (int64_t kk = 0; kk < k; ++kk) acc = acc + a[r * k + kk] * rd.At(kk * ld + c);
      y[r * ldy + c] = acc;
    }
  }
}

// Concat on K: columns [c0, c0 + NV*lanes) of y for all M rows, over every part in order.
// Rows go in pairs sharing each loaded (and dequantized) B vector; every element keeps its own
// accumulator chain, k increasing.
template <size_t NV>
void KBlock(const MatmulShapeInfo& s, const float* a, const MatmulPart* parts,
            const std::byte* const* bases, int64_t n_parts, int64_t c0, float* y) {
  const DF d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t r = 0;
  for (; r + 2 <= s.m; r += 2) {
    VF acc0[NV], acc1[NV];
    for (size_t j = 0; j < NV; ++j) acc0[j] = acc1[j] = hn::Zero(d);
    const float* a0 = a + r * s.k;
    const float* a1 = a0 + s.k;
    for (int64_t p = 0; p < n_parts; ++p) {
      const MatmulPart& part = parts[p];
      WithReader(part, bases[p], [&](const auto& rd) {
        for (int64_t kk = 0; kk < part.extent; ++kk) {
          if constexpr (std::decay_t<decltype(rd)>::kFinite) {
            if (a0[part.begin + kk] == 0.f && a1[part.begin + kk] == 0.f) continue;
          }
          const VF x0 = hn::Set(d, a0[part.begin + kk]), x1 = hn::Set(d, a1[part.begin + kk]);
          for (size_t j = 0; j < NV; ++j) {
            const VF b = rd.Load(d, kk * s.n + c0 + static_cast<int64_t>(j) * lanes);
            acc0[j] = hn::Add(acc0[j], hn::Mul(x0, b));
            acc1[j] = hn::Add(acc1[j], hn::Mul(x1, b));
          }
        }
      });
    }
    for (size_t j = 0; j < NV; ++j) {
      hn::StoreU(acc0[j], d, y + r * s.n + c0 + static_cast<int64_t>(j) * lanes);
      hn::StoreU(acc1[j], d, y + (r + 1) * s.n + c0 + static_cast<int64_t>(j) * lanes);
    }
  }
  for (; r < s.m; ++r) {
    VF acc[NV];
    for (size_t j = 0; j < NV; ++j) acc[j] = hn::Zero(d);
    const float* ar = a + r * s.k;
    for (int64_t p = 0; p < n_parts; ++p) {
      const MatmulPart& part = parts[p];
      WithReader(part, bases[p], [&](const auto& rd) {
        for (int64_t kk = 0; kk < part.extent; ++kk) {
          if constexpr (std::decay_t<decltype(rd)>::kFinite) {
            if (ar[part.begin + kk] == 0.f) continue;
          }
          const VF x = hn::Set(d, ar[part.begin + kk]);
          for (size_t j = 0; j < NV; ++j) {
            const VF b = rd.Load(d, kk * s.n + c0 + static_cast<int64_t>(j) * lanes);
            acc[j] = hn::Add(acc[j], hn::Mul(x, b));
          }
        }
      });
    }
    for (size_t j = 0; j < NV; ++j) {
      hn::StoreU(acc[j], d, y + r * s.n + c0 + static_cast<int64_t>(j) * lanes);
    }
  }
}

void KColumnScalar(const MatmulShapeInfo& s, const float* a, const MatmulPart* parts,
                   const std::byte* const* bases, int64_t n_parts, int64_t c, float* y) {
  for (int64_t r = 0; r < s.m; ++r) {
    float acc = 0.f;
    const float* ar = a + r * s.k;
    for (int64_t p = 0; p < n_parts; ++p) {
      const MatmulPart& part = parts[p];
      WithReader(part, bases[p], [&](const auto& rd) {
        for (int64_t kk = 0; kk < part.extent; ++kk) {
          acc = acc + ar[part.begin + kk] * rd.At(kk * s.n + c);
        }
      });
    }
    y[r * s.n + c] = acc;
  }
}

// Columns per task.
HWY_INLINE int64_t TaskColumns() { return static_cast<int64_t>(kBlockVectors * hn::Lanes(DF())); }

void MatmulParts(const MatmulShapeInfo& s, const float* a, const MatmulPart* parts,
                 const std::byte* const* part_ptrs, int64_t n_parts, float* y, ThreadPool* pool) {
  const int64_t tc = TaskColumns();
  // Tasks per batch: column blocks of every part (concat on N) or of N (concat on K).
  int64_t per_batch = 0;
  if (s.concat_on_n) {
    for (int64_t p = 0; p < n_parts; ++p) per_batch += (parts[p].extent + tc - 1) / tc;
  } else {
    per_batch = (s.n + tc - 1) / tc;
  }
  const int64_t tasks = s.batches * per_batch;
  const int64_t macs = s.batches * s.m * s.k * s.n;
  ThreadPool* use = macs >= detail::kMinParallelMacs ? pool : nullptr;
  parallel_for(use, tasks, [&](int64_t begin, int64_t end) {
    constexpr int64_t kMaxParts = 8;
    const std::byte* bases[kMaxParts];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / per_batch;
      int64_t block = t % per_batch;
      const float* ab = a + s.a_offsets[b];
      float* yb = y + b * s.m * s.n;
      for (int64_t p = 0; p < n_parts; ++p) {
        const int64_t eb = opset::dtype_size(parts[p].storage);
        bases[p] = part_ptrs[p] + s.b_batches[b] * parts[p].batch_stride * eb;
      }
      if (!s.concat_on_n) {
        const int64_t c0 = block * tc, c1 = std::min(s.n, c0 + tc);
        const auto lanes = static_cast<int64_t>(hn::Lanes(DF()));
        int64_t c = c0;
        if (c + tc <= c1) {
          KBlock<kBlockVectors>(s, ab, parts, bases, n_parts, c, yb);
          c += tc;
        }
        for (; c + lanes <= c1; c += lanes) KBlock<1>(s, ab, parts, bases, n_parts, c, yb);
        for (; c < c1; ++c) KColumnScalar(s, ab, parts, bases, n_parts, c, yb);
        continue;
      }
      for (int64_t p = 0; p < n_parts; ++p) {
        const int64_t blocks = (parts[p].extent + tc - 1) / tc;
        if (block >= blocks) {
          block -= blocks;
          continue;
        }
        const int64_t c0 = block * tc, c1 = std::min(parts[p].extent, c0 + tc);
        WithReader(parts[p], bases[p], [&](const auto& rd) {
          const int64_t ld = parts[p].ld > 0 ? parts[p].ld : parts[p].extent;
          NColumns(rd, ld, c0, c1, ab, s.m, s.k, yb + parts[p].begin, s.n);
        });
        break;
      }
    }
  });
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hs::kernels {

HWY_EXPORT(MatmulParts);

void matmul_parts(const MatmulShapeInfo& shape, const float* a, const MatmulPart* parts,
                  const std::byte* const* part_ptrs, int64_t n_parts, float* y, ThreadPool* pool) {
  HS_CHECK(n_parts >= 1 && n_parts <= 8, "matmul_parts: 1..8 parts");
  HWY_DYNAMIC_DISPATCH(MatmulParts)(shape, a, parts, part_ptrs, n_parts, y, pool);
}

}  // namespace hs::kernels
#endif  // HWY_ONCE

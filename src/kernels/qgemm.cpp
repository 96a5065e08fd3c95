// matmul_quantized: checks the quantized weights and routes to the int8 / int4 kernels.
#include "headsplit/kernels/qgemm.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "matmul_internal.h"
#include "qgemm_exact.h"

namespace hs::kernels {

Status matmul_quantized(const MatmulShape& shape, std::span<const float> x,
                        const QuantizedWeights& weights, std::span<float> y, ThreadPool* pool) {
  constexpr std::string_view op = "matmul_quantized";
  HS_ASSIGN_OR_RETURN(const detail::MatmulCall c,
                      detail::check_call(op, shape, x, weights.bias, y, pool));
  const int bits = static_cast<int>(weights.bits);
  if (bits != 4 && bits != 8) {
    return errorf(ErrorKind::kInvalidArgument, "{}: bits must be 4 or 8, got {}", op, bits);
  }
  if (weights.block < 0) {
    return errorf(ErrorKind::kInvalidArgument, "{}: block must be >= 0 (0: per channel), got {}",
                  op, weights.block);
  }
  const size_t row_bytes = bits == 8 ? c.k : (c.k + 1) / 2;
  if (weights.data.size() != c.n * row_bytes) {
    return errorf(ErrorKind::kShape, "{}: int{} data has {} bytes, expected {} = {}*{} ({})", op,
                  bits, weights.data.size(), c.n * row_bytes, c.n, row_bytes,
                  bits == 8 ? "N*K" : "N*ceil(K/2)");
  }
  detail::QWeightsCall q;
  q.data = reinterpret_cast<const uint8_t*>(weights.data.data());
  q.scales = weights.scales.data();
  q.block = static_cast<size_t>(weights.block);
  q.blocks = q.block == 0 ? 1 : (c.k + q.block - 1) / q.block;
  if (weights.scales.size() != c.n * q.blocks) {
    if (q.block == 0) {
      return errorf(ErrorKind::kShape, "{}: scales has {} elements, expected N = {} (per channel)",
                    op, weights.scales.size(), c.n);
    }
    return errorf(ErrorKind::kShape,
                  "{}: scales has {} elements, expected N*ceil(K/block) = {}*{} = {} (block {})",
                  op, weights.scales.size(), c.n, q.blocks, c.n * q.blocks, q.block);
  }
  if (!weights.lpbq_row_scales.empty() || !weights.lpbq_mult.empty()) {
    if (bits != 4 || q.block == 0 || weights.lpbq_row_scales.size() != c.n ||
        weights.lpbq_mult.size() != c.n * q.blocks) {
      return errorf(ErrorKind::kShape,
                    "{}: LPBQ factors of {} row scales and {} multipliers for int{} weights, "
                    "block {}: expected int4 per block, N = {} and N*ceil(K/block) = {}",
                    op, weights.lpbq_row_scales.size(), weights.lpbq_mult.size(), bits, q.block,
                    c.n, c.n * q.blocks);
    }
    q.lpbq_scales = weights.lpbq_row_scales.data();
    q.lpbq_mult = weights.lpbq_mult.data();
  }
  if (!weights.lpbq_row_sums.empty()) {
    if (q.lpbq_mult == nullptr || weights.lpbq_row_sums.size() != c.n) {
      return errorf(ErrorKind::kShape,
                    "{}: {} LPBQ row sums with {} multipliers: expected N = {} sums, with the "
                    "factors",
                    op, weights.lpbq_row_sums.size(), weights.lpbq_mult.size(), c.n);
    }
    q.lpbq_sums = weights.lpbq_row_sums.data();
  }
  if (detail::handle_empty(c)) return ok_status();
  // HS_QGEMM_FLOAT=1 in the environment forces the float path (for comparisons and debugging).
  static const bool force_float = [] {
    const char* v = std::getenv("HS_QGEMM_FLOAT");
    return v != nullptr && v[0] == '1';
  }();
  if (!force_float && weights.act_scale > 0.f && std::isfinite(weights.act_scale)) {
    bool ran = false;
    HS_TRY(detail::matmul_exact(c, q, bits, {weights.act_scale, weights.act_offset}, &ran));
    if (ran) return ok_status();
  }
  return bits == 8 ? detail::matmul_int8(c, q) : detail::matmul_int4(c, q);
}

bool quantized_exact_is_fast(WeightBits bits, int64_t block, int64_t k) {
  if (k < 0 || block < 0) return false;
  detail::MatmulCall c;
  c.k = static_cast<size_t>(k);
  detail::QWeightsCall q;
  q.block = static_cast<size_t>(block);
  const int b = static_cast<int>(bits);
  return detail::exact_simd_handles(c, q, b) &&
         detail::exact_simd() != detail::ExactSimd::kPortable;
}

namespace {
std::atomic<ExactIsa>& isa_slot() {
  static std::atomic<ExactIsa> isa = [] {
    const char* v = std::getenv("HS_QGEMM_VNNI");
    return v != nullptr && v[0] == '1' ? ExactIsa::kVnni : ExactIsa::kAvx2;
  }();
  return isa;
}
}  // namespace

void set_exact_isa(ExactIsa isa) { isa_slot().store(isa, std::memory_order_relaxed); }
ExactIsa exact_isa() { return isa_slot().load(std::memory_order_relaxed); }

const char* exact_path_name() {
  switch (detail::exact_simd()) {
    case detail::ExactSimd::kVnni: return "AVX-512 VNNI";
    case detail::ExactSimd::kAvx2:
      return detail::vnni_supported() ? "AVX2 int16, AVX-512 VNNI prefill panels and int4 LPBQ decode"
                                      : "AVX2 int16";
    case detail::ExactSimd::kPortable: break;
  }
  return "portable";
}

bool lpbq_factor(std::span<const float> scales, int64_t n, int64_t k, int64_t block,
                 std::vector<float>& row_scales, std::vector<uint8_t>& mult) {
  if (n < 0 || k <= 0 || block <= 0) return false;
  const int64_t nb = (k + block - 1) / block;
  if (static_cast<int64_t>(scales.size()) != n * nb) return false;
  row_scales.resize(static_cast<size_t>(n));
  mult.resize(static_cast<size_t>(n * nb));
  // Bound: C * K * 8 * 65535 * 16 < 2^53, i.e. C * K < 2^53 / (128 * 65535).
  const double limit = 9007199254740992.0 / (128.0 * 65535.0);
  for (int64_t r = 0; r < n; ++r) {
    const float* s = scales.data() + r * nb;
    float smax = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      if (!(s[b] > 0.f) || !std::isfinite(s[b])) return false;
      smax = std::max(smax, s[b]);
    }
    const float c = smax / 16.f;
    if (!std::isnormal(c) || static_cast<double>(c) * 16.0 != static_cast<double>(smax)) return false;
    int e = 0;
    // c's significand as an integer (exact: 53 bits), then its odd part C.
    auto mant = static_cast<uint64_t>(std::ldexp(std::frexp(static_cast<double>(c), &e), 53));
    mant >>= std::countr_zero(mant);  // mant > 0: c is normal
    if (static_cast<double>(mant) * static_cast<double>(k) >= limit) return false;
    for (int64_t b = 0; b < nb; ++b) {
      const float m = s[b] / c;
      if (m != std::nearbyint(m) || m < 1.f || m > 16.f ||
          static_cast<double>(c) * m != static_cast<double>(s[b])) {  // exact in double
        return false;
      }
      mult[static_cast<size_t>(r * nb + b)] = static_cast<uint8_t>(m);
    }
    row_scales[static_cast<size_t>(r)] = c;
  }
  return true;
}

bool lpbq_row_sums_used(int64_t m) {
  return m >= 0 && static_cast<size_t>(m) < detail::kVnniLpbqMaxM && detail::vnni_supported();
}

std::vector<int32_t> lpbq_row_sums(std::span<const std::byte> data, std::span<const uint8_t> mult,
                                   int64_t n, int64_t k, int64_t block) {
  if (n < 0 || k <= 0 || k > static_cast<int64_t>(detail::kExactSimdMaxK) || block <= 0) return {};
  const int64_t nb = (k + block - 1) / block, rb = int4_row_bytes(k);
  if (static_cast<int64_t>(data.size()) != n * rb || static_cast<int64_t>(mult.size()) != n * nb) {
    return {};
  }
  std::vector<int32_t> sums(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(data.data()) + r * rb;
    const uint8_t* m = mult.data() + r * nb;
    int32_t s = 0;  // |s| <= 32768 * 8 * 16
    int64_t b = 0;
#if defined(__SSE2__)
    // Whole blocks of 32 (16 bytes): with x = byte ^ 0x88 each nibble is q + 8 in 0..15, so a
    // block's sum of q is the byte sums (psadbw) of both nibbles of x minus 8 * 32.
    if (block == 32) {
      const __m128i flip = _mm_set1_epi8(static_cast<char>(0x88)), low = _mm_set1_epi8(0x0f);
      for (; (b + 1) * 32 <= k; ++b) {
        const __m128i x =
            _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16)), flip);
        const __m128i t = _mm_add_epi64(
            _mm_sad_epu8(_mm_and_si128(x, low), _mm_setzero_si128()),
            _mm_sad_epu8(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_setzero_si128()));
        const int32_t sb = _mm_cvtsi128_si32(t) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(t, t)) - 256;
        s += int32_t{m[b]} * sb;
      }
    }
#endif
    for (int64_t i = b * block; i < k; ++i) {
      s += int32_t{m[i / block]} * detail::int4_at(row, static_cast<size_t>(i));
    }
    sums[static_cast<size_t>(r)] = s;
  }
  return sums;
}

}  // namespace hs::kernels

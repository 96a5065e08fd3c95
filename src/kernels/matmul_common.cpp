// Shared non-SIMD parts of the fast matmuls: argument checks, empty calls, per-thread
// scratch, and int4 packing.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>

#include "headsplit/kernels/qgemm.h"
#include "matmul_internal.h"

namespace hs::kernels::detail {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

struct Scratch {
  std::unique_ptr<float, FreeDeleter> data;
  size_t floats = 0;
};

thread_local std::array<Scratch, static_cast<size_t>(ScratchSlot::kCount)> t_scratch;

// a * b, or an error when it overflows int64.
Result<int64_t> product(std::string_view op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: size {} * {} overflows", op, a, b);
  }
  return r;
}

}  // namespace

float* thread_scratch(ScratchSlot slot, size_t floats) {
  Scratch& s = t_scratch[static_cast<size_t>(slot)];
  if (s.floats >= floats && s.data) return s.data.get();
  const size_t bytes = (std::max<size_t>(floats, 16) * sizeof(float) + 63) / 64 * 64;
  s.data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  s.floats = s.data ? bytes / sizeof(float) : 0;
  return s.data.get();
}

Error out_of_memory(std::string_view op, size_t floats) {
  return errorf(ErrorKind::kInternal, "{}: out of memory allocating {} bytes of scratch", op,
                floats * sizeof(float));
}

Result<MatmulCall> check_call(std::string_view op, const MatmulShape& shape,
                              std::span<const float> x, std::span<const float> bias,
                              std::span<float> y, ThreadPool* pool) {
  if (shape.m < 0 || shape.n < 0 || shape.k < 0) {
    return errorf(ErrorKind::kInvalidArgument, "{}: negative dimension in M={} N={} K={}", op,
                  shape.m, shape.n, shape.k);
  }
  HS_ASSIGN_OR_RETURN(const int64_t mk, product(op, shape.m, shape.k));
  HS_ASSIGN_OR_RETURN(const int64_t mn, product(op, shape.m, shape.n));
  const bool token_major = shape.layout == ActLayout::kTokenMajor;
  if (static_cast<int64_t>(x.size()) != mk) {
    return errorf(ErrorKind::kShape, "{}: x has {} elements, expected {} = {}*{} ({})", op,
                  x.size(), mk, token_major ? shape.m : shape.k, token_major ? shape.k : shape.m,
                  token_major ? "M*K" : "K*M");
  }
  if (static_cast<int64_t>(y.size()) != mn) {
    return errorf(ErrorKind::kShape, "{}: y has {} elements, expected {} = {}*{} ({})", op,
                  y.size(), mn, token_major ? shape.m : shape.n, token_major ? shape.n : shape.m,
                  token_major ? "M*N" : "N*M");
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != shape.n) {
    return errorf(ErrorKind::kShape, "{}: bias has {} elements, expected N = {} (or none)", op,
                  bias.size(), shape.n);
  }
  MatmulCall c;
  c.m = static_cast<size_t>(shape.m);
  c.n = static_cast<size_t>(shape.n);
  c.k = static_cast<size_t>(shape.k);
  c.layout = shape.layout;
  c.x = x.data();
  c.y = y.data();
  c.bias = bias.empty() ? nullptr : bias.data();
  c.pool = pool;
  return c;
}

bool handle_empty(const MatmulCall& c) {
  if (c.m == 0 || c.n == 0) return true;
  if (c.k != 0) return false;
  for (size_t m = 0; m < c.m; ++m) {
    for (size_t n = 0; n < c.n; ++n) {
      const float v = c.bias != nullptr ? c.bias[n] : 0.f;
      if (c.layout == ActLayout::kTokenMajor) {
        c.y[m * c.n + n] = v;
      } else {
        c.y[n * c.m + m] = v;
      }
    }
  }
  return true;
}

}  // namespace hs::kernels::detail

namespace hs::kernels {

Status pack_int4(std::span<const int8_t> q, int64_t n, int64_t k, std::span<std::byte> packed) {
  if (n < 0 || k < 0) {
    return errorf(ErrorKind::kInvalidArgument, "pack_int4: negative dimension N={} K={}", n, k);
  }
  HS_ASSIGN_OR_RETURN(const int64_t count, detail::product("pack_int4", n, k));
  const int64_t row_bytes = int4_row_bytes(k);
  if (static_cast<int64_t>(q.size()) != count) {
    return errorf(ErrorKind::kShape, "pack_int4: q has {} values, expected N*K = {}*{} = {}",
                  q.size(), n, k, count);
  }
  if (static_cast<int64_t>(packed.size()) != n * row_bytes) {
    return errorf(ErrorKind::kShape,
                  "pack_int4: packed has {} bytes, expected N*ceil(K/2) = {}*{} = {}",
                  packed.size(), n, row_bytes, n * row_bytes);
  }
  for (int64_t i = 0; i < count; ++i) {
    const int8_t v = q[static_cast<size_t>(i)];
    if (v < -8 || v > 7) {
      return errorf(ErrorKind::kOutOfRange, "pack_int4: q[{},{}] = {} is outside -8..7", i / k,
                    i % k, v);
    }
  }
  std::fill(packed.begin(), packed.end(), std::byte{0});
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const int8_t v = q[static_cast<size_t>(r * k + c)];
      const auto nib = static_cast<uint8_t>(static_cast<uint8_t>(v) & 0x0f);
      std::byte& b = packed[static_cast<size_t>(r * row_bytes + c / 2)];
      b |= std::byte{static_cast<uint8_t>(c % 2 == 0 ? nib : nib << 4)};
    }
  }
  return ok_status();
}

}  // namespace hs::kernels

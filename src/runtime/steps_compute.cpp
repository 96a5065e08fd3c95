// Compute steps: projections (fast int8/int4/f32 matmuls of kernels/qgemm.h and gemm.h, or the
// reference kernels), attention matmuls, binary ops, reference-kernel ops and I/O conversion.
// Each applies the output's fake quantization after its kernel (contract §2).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <span>

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/gemm.h"
#include "steps.h"

namespace hs::runtime::detail {

namespace ref = kernels::ref;

namespace {

class ProjectionStep final : public Step {
 public:
  explicit ProjectionStep(ProjectionSpec spec) : Step(spec.label), s_(std::move(spec)) {
    if (!s_.own_weights.empty()) {
      if (s_.weights == ProjectionSpec::Weights::kF32) {
        s_.w_f32 = reinterpret_cast<const float*>(s_.own_weights.data());
      } else {
        s_.w_q.data = s_.own_weights;
      }
    }
    if (!s_.own_scales.empty()) s_.w_q.scales = s_.own_scales;
    if (!s_.own_lpbq_mult.empty()) {
      s_.w_q.lpbq_row_scales = s_.own_lpbq_scales;
      s_.w_q.lpbq_mult = s_.own_lpbq_mult;
      s_.w_q.lpbq_row_sums = s_.own_lpbq_sums;
    }
    if (!s_.own_bias.empty()) {
      s_.bias = s_.own_bias.data();
      s_.w_q.bias = s_.own_bias;
    }
  }

  const ProjectionSpec& spec() const { return s_; }

  Status run(const ExecContext& ctx) const override {
    const float* x = ctx.ptr<const float>(s_.x);
    float* y = ctx.ptr<float>(s_.y);
    const int64_t x_count = s_.m * s_.k, y_count = s_.m * s_.n;
    if (s_.row_output >= 0 && s_.images == 1 && ctx.output_rows != nullptr &&
        !ctx.output_rows[s_.row_output].all()) {
      return run_rows(ctx, ctx.output_rows[s_.row_output], x, y);
    }
    for (int64_t img = 0; img < s_.images; ++img) {
      const float* xi = x + img * x_count;
      float* yi = y + img * y_count;
      HS_TRY(run_one(ctx, xi, yi, s_.m, s_.layout));
    }
    if (s_.fake_quant.active()) s_.fake_quant.apply(y, ctx.pool);
    return ok_status();
  }

 private:
  // Tokens [first, first + count) only, with the output's fake quantization: token-major
  // [count, N] into s_.rows when layout steps follow (they place the rows), else into their rows
  // of y. The other tokens' y are not written. Channel-major x [K, M] is gathered into
  // token-major scratch; a channel-major y without s_.rows is scattered from it.
  Status run_rows(const ExecContext& ctx, RowRange rows, const float* x, float* y) const {
    const int64_t first = std::clamp<int64_t>(rows.first, 0, s_.m);
    const int64_t count = std::clamp<int64_t>(rows.count, 0, s_.m - first);
    const FakeQuant& fq = s_.fake_quant;
    constexpr kernels::ActLayout kTokens = kernels::ActLayout::kTokenMajor;
    float* out = nullptr;  // token-major [count, N]
    if (s_.rows != nullptr) {
      s_.rows->rows.resize(static_cast<size_t>(count * s_.n));
      s_.rows->first = first;
      s_.rows->count = count;
      out = s_.rows->rows.data();
    } else if (s_.layout == kTokens) {
      out = y + first * s_.n;
    } else {
      rows_y_.resize(static_cast<size_t>(count * s_.n));
      out = rows_y_.data();
    }
    if (count == 0) return ok_status();
    if (s_.layout == kTokens) {
      HS_TRY(run_one(ctx, x + first * s_.k, out, count, kTokens));
    } else {
      rows_x_.resize(static_cast<size_t>(count * s_.k));
      for (int64_t t = 0; t < count; ++t) {
        for (int64_t k = 0; k < s_.k; ++k) rows_x_[static_cast<size_t>(t * s_.k + k)] = x[k * s_.m + first + t];
      }
      HS_TRY(run_one(ctx, rows_x_.data(), out, count, kTokens));
    }
    if (fq.per_tensor()) fq.apply_first(out, count * s_.n);
    if (s_.rows == nullptr && s_.layout != kTokens) {
      for (int64_t t = 0; t < count; ++t) {
        for (int64_t n = 0; n < s_.n; ++n) y[n * s_.m + first + t] = out[t * s_.n + n];
      }
    }
    // Other granularities (per channel along N) need the whole tensor: y holds the rows there.
    if (fq.active() && !fq.per_tensor()) {
      if (s_.rows != nullptr) {
        return errorf(ErrorKind::kInternal, "row-computed projection with per-channel output params");
      }
      fq.apply(y);
    }
    return ok_status();
  }

  // One image: m tokens of x in `layout` (s_.m and s_.layout, or a row subset token-major).
  Status run_one(const ExecContext& ctx, const float* x, float* y, int64_t m,
                 kernels::ActLayout layout) const {
    const auto xs = std::span<const float>(x, static_cast<size_t>(m * s_.k));
    const auto ys = std::span<float>(y, static_cast<size_t>(m * s_.n));
    const kernels::MatmulShape shape{.m = m, .n = s_.n, .k = s_.k, .layout = layout};
    const auto bias = s_.bias != nullptr
                          ? std::span<const float>(s_.bias, static_cast<size_t>(s_.n))
                          : std::span<const float>();
    switch (s_.weights) {
      case ProjectionSpec::Weights::kF32: {
        const kernels::F32Weights w{
            .w = std::span<const float>(s_.w_f32, static_cast<size_t>(s_.n * s_.k)), .bias = bias};
        return kernels::matmul_f32(shape, xs, w, ys, ctx.pool);
      }
      case ProjectionSpec::Weights::kQuantized:
        return kernels::matmul_quantized(shape, xs, s_.w_q, ys, ctx.pool);
      case ProjectionSpec::Weights::kReference:
        if (layout == kernels::ActLayout::kChannelMajor) {
          ref::conv2d_1x1({.n = 1, .ci = s_.k, .co = s_.n, .spatial = m}, x, s_.w_f32, s_.bias, y);
        } else {
          ref::linear({.m = m, .in = s_.k, .out = s_.n}, x, s_.w_f32, s_.bias, y);
        }
        return ok_status();
    }
    return ok_status();
  }

  ProjectionSpec s_;
  mutable std::vector<float> rows_x_, rows_y_;  // run_rows scratch (a step never runs twice at once)
};

}  // namespace

std::unique_ptr<Step> merge_projections(const std::vector<const Step*>& parts,
                                        const std::vector<Ref>& refs, int64_t* copied_bytes) {
  *copied_bytes = 0;
  if (parts.size() < 2) return nullptr;
  std::vector<const ProjectionSpec*> s;
  for (const Step* p : parts) {
    const auto* step = dynamic_cast<const ProjectionStep*>(p);
    if (step == nullptr) return nullptr;
    s.push_back(&step->spec());
  }
  const ProjectionSpec& a = *s[0];
  using W = ProjectionSpec::Weights;
  if (a.images != 1 || a.row_output >= 0 || a.weights == W::kReference ||
      (a.layout == kernels::ActLayout::kTokenMajor && a.m != 1)) {
    return nullptr;
  }
  const Ref& xa = refs[static_cast<size_t>(a.x)];
  const Ref& ya = refs[static_cast<size_t>(a.y)];
  // Bytes of one weight row, and where row r of part b starts.
  const bool f32 = a.weights == W::kF32;
  const int64_t row_bytes = f32 ? a.k * 4
                            : a.w_q.bits == kernels::WeightBits::kInt4 ? kernels::int4_row_bytes(a.k)
                                                                       : a.k;
  auto weights_of = [&](const ProjectionSpec& b) {
    return f32 ? reinterpret_cast<const std::byte*>(b.w_f32) : b.w_q.data.data();
  };
  int64_t n = 0;
  bool adjacent = true;
  for (const ProjectionSpec* b : s) {
    const Ref& xb = refs[static_cast<size_t>(b->x)];
    const Ref& yb = refs[static_cast<size_t>(b->y)];
    bool same = b->layout == a.layout && b->images == 1 && b->m == a.m && b->k == a.k &&
                b->weights == a.weights && b->row_output < 0 &&
                (b->bias == nullptr) == (a.bias == nullptr) && xb.base == xa.base &&
                xb.offset == xa.offset && yb.base == ya.base &&
                yb.offset == ya.offset + static_cast<uint64_t>(n * a.m * 4) &&
                b->fake_quant.same_per_tensor(a.fake_quant);
    if (same && !f32) {
      const kernels::QuantizedWeights& p = a.w_q;
      const kernels::QuantizedWeights& q = b->w_q;
      same = q.bits == p.bits && q.block == p.block && q.act_scale == p.act_scale &&
             q.act_offset == p.act_offset &&
             static_cast<int64_t>(q.data.size()) == b->n * row_bytes;
    }
    if (!same) return nullptr;
    adjacent = adjacent && weights_of(*b) == weights_of(a) + n * row_bytes;
    n += b->n;
  }
  ProjectionSpec m{.label = a.label + " and " + std::to_string(s.size() - 1) +
                            " more heads' rows (one call)",
                   .layout = a.layout,
                   .m = a.m,
                   .n = n,
                   .k = a.k,
                   .x = a.x,
                   .y = a.y,
                   .weights = a.weights,
                   .w_f32 = a.w_f32,
                   .w_q = a.w_q,
                   .fake_quant = a.fake_quant.over(n * a.m)};
  m.w_q.lpbq_row_scales = {};  // the parts' own factors: set again from m's below, if kept
  m.w_q.lpbq_mult = {};
  m.w_q.lpbq_row_sums = {};
  if (!adjacent) {
    m.own_weights.resize(static_cast<size_t>(n * row_bytes));
    std::byte* to = m.own_weights.data();
    for (const ProjectionSpec* b : s) {
      to = std::copy_n(weights_of(*b), b->n * row_bytes, to);
    }
    *copied_bytes = n * row_bytes;
  } else if (!f32) {
    m.w_q.data = std::span<const std::byte>(a.w_q.data.data(), static_cast<size_t>(n * row_bytes));
  }
  if (!f32) {
    bool lpbq = true, sums = true;
    for (const ProjectionSpec* b : s) {
      m.own_scales.insert(m.own_scales.end(), b->w_q.scales.begin(), b->w_q.scales.end());
      lpbq = lpbq && !b->own_lpbq_mult.empty();
      sums = sums && !b->own_lpbq_sums.empty();
    }
    // LPBQ factors stay when every part has them (row-wise: they stack like the scales).
    for (const ProjectionSpec* b : s) {
      if (!lpbq) break;
      m.own_lpbq_scales.insert(m.own_lpbq_scales.end(), b->own_lpbq_scales.begin(),
                               b->own_lpbq_scales.end());
      m.own_lpbq_mult.insert(m.own_lpbq_mult.end(), b->own_lpbq_mult.begin(),
                             b->own_lpbq_mult.end());
      if (sums) {
        m.own_lpbq_sums.insert(m.own_lpbq_sums.end(), b->own_lpbq_sums.begin(),
                               b->own_lpbq_sums.end());
      }
    }
  }
  if (a.bias != nullptr) {
    for (const ProjectionSpec* b : s) m.own_bias.insert(m.own_bias.end(), b->bias, b->bias + b->n);
  }
  return std::make_unique<ProjectionStep>(std::move(m));
}

namespace {

class MatmulStep final : public Step {
 public:
  explicit MatmulStep(MatmulSpec spec) : Step(spec.label), s_(std::move(spec)) {
    s_.shape.a_offsets = s_.a_offsets.data();
    s_.shape.b_batches = s_.b_batches.data();
    for (const MatmulPartSource& p : s_.parts) {
      parts_.push_back({.storage = p.source.elem,
                        .scale = p.source.scale,
                        .zero_point = p.source.zero_point,
                        .batch_stride = p.batch_stride,
                        .begin = p.begin,
                        .extent = p.extent});
      part_abs_max_.push_back(abs_max(parts_.back()));
    }
  }

  const MatmulSpec& spec() const { return s_; }
  std::unique_ptr<Step> stack(const std::vector<const Step*>& others,
                              StackState& state) const override {
    return stack_matmuls(specs_of(*this, others), state);
  }

  Status run(const ExecContext& ctx) const override {
    const std::byte* bases[8];
    for (size_t p = 0; p < s_.parts.size(); ++p) bases[p] = ctx.ptrs[s_.parts[p].source.ref];
    float* y = ctx.ptr<float>(s_.y);
    if (s_.skip_rows != nullptr && !s_.skip_rows->decided.empty() &&
        run_live(ctx, bases, s_.skip_rows->decided, y)) {
      if (s_.fake_quant.active()) s_.fake_quant.apply(y, ctx.pool);
      return ok_status();
    }
    if (s_.skip != nullptr) {
      decide({});
      const ColumnSpan dead = ctx.masks[s_.skip->mask].dead;
      if (!dead.empty() && run_live(ctx, bases, dead, y)) {
        if (dead_columns_vanish(ctx, dead, y)) {
          decide(dead);
          return ok_status();
        }
      }
    }
    kernels::matmul_parts(s_.shape, ctx.ptr<const float>(s_.a), parts_.data(), bases,
                          static_cast<int64_t>(parts_.size()), y, ctx.pool);
    if (s_.fake_quant.active()) s_.fake_quant.apply(y, ctx.pool);
    return ok_status();
  }

 private:
  // This execution's skipped columns, for the steps that follow the scores (and, stacked, for
  // those of the other heads).
  void decide(ColumnSpan dead) const {
    s_.skip->decided = dead;
    for (const auto& also : s_.skip_also) also->decided = dead;
  }

  // Concat on N (scores): each part is cut into its pieces outside [dead.begin, dead.end),
  // reading the same source rows (ld = the part's extent); y's dead columns are not written.
  // Concat on K (P·V): the parts' rows in the span are left out (A is exactly 0 there; integer
  // parts only). False (nothing done) when the pieces do not fit the kernel. The fake
  // quantization of the scores' live columns is applied here; P·V's is the caller's.
  bool run_live(const ExecContext& ctx, const std::byte* const* bases, ColumnSpan dead,
                float* y) const {
    const bool on_n = s_.shape.concat_on_n;
    if (!on_n) {
      for (size_t p = 0; p < parts_.size(); ++p) {
        const kernels::MatmulPart& part = parts_[p];
        const bool overlaps = part.begin < dead.end && part.begin + part.extent > dead.begin;
        if (!overlaps || opset::dtype_is_integer_storage(part.storage)) continue;
        // A float part: the kernel adds A's exact zeros times its rows one after another into
        // one sum per y (matmul_parts_f32.cpp), which changes nothing when those rows are finite
        // (+0 or -0 added to a sum that starts at +0 and is never -0), so leaving them out is
        // bit-identical; an inf or NaN there (0 * inf = NaN) computes everything.
        if (!(dead_abs_max(ctx.ptrs[s_.parts[p].source.ref], part, dead) <
              std::numeric_limits<float>::infinity())) {
          return false;
        }
      }
    }
    constexpr size_t kMaxParts = 8;
    kernels::MatmulPart pieces[kMaxParts];
    const std::byte* piece_ptrs[kMaxParts];
    size_t n = 0;
    for (size_t p = 0; p < parts_.size(); ++p) {
      const kernels::MatmulPart& part = parts_[p];
      const int64_t pb = part.begin, pe = part.begin + part.extent;
      const std::pair<int64_t, int64_t> live[2] = {{pb, std::min(pe, dead.begin)},
                                                    {std::max(pb, dead.end), pe}};
      for (const auto& [b, e] : live) {
        if (e <= b) continue;
        if (n == kMaxParts) return false;
        pieces[n] = part;
        pieces[n].begin = b;
        pieces[n].extent = e - b;
        pieces[n].ld = on_n ? (part.ld > 0 ? part.ld : part.extent) : 0;
        const int64_t skip = on_n ? b - pb : (b - pb) * s_.shape.n;  // elements
        piece_ptrs[n] = bases[p] + skip * opset::dtype_size(part.storage);
        ++n;
      }
    }
    if (n == 0) return false;
    kernels::matmul_parts(s_.shape, ctx.ptr<const float>(s_.a), pieces, piece_ptrs,
                          static_cast<int64_t>(n), y, ctx.pool);
    if (on_n && s_.fake_quant.active()) s_.fake_quant.apply_live(y, s_.shape.n, dead);
    return true;
  }

  // The run-time bound (step_planner_columns.cpp), row by row: every dead column's x is below
  // the row's max + kSoftmaxExpZeroBelow. On a dead column |q·k| <= sum|q| * kmax (kmax: the
  // largest |value| the dead columns' storage holds; times 1 + 2^-10 for the float rounding of
  // both sums), so x <= U = fq_x(F(fq_s0(bound)) + mask_dead) with F the scalar ops; the row's
  // max is at least x on its largest attended live s0: L = fq_x(F(s0) + mask_live).
  bool dead_columns_vanish(const ExecContext& ctx, ColumnSpan dead, const float* y) const {
    const ColumnSkip& k = *s_.skip;
    const MaskView& mask = ctx.masks[k.mask];
    const int64_t m = s_.shape.m, n = s_.shape.n, kd = s_.shape.k;
    if (mask.rows != m || mask.cols != n) return false;
    float kmax = 0.f;
    for (size_t p = 0; p < parts_.size(); ++p) {
      const kernels::MatmulPart& part = parts_[p];
      if (part.begin >= dead.end || part.begin + part.extent <= dead.begin) continue;
      const float pmax = part.storage == opset::DType::kF32
                             ? dead_abs_max(ctx.ptrs[s_.parts[p].source.ref], part, dead)
                             : part_abs_max_[p];
      if (!(pmax <= kmax)) kmax = pmax;  // keeps a NaN
    }
    if (!std::isfinite(kmax)) return false;  // NaN / inf in a float part: no bound
    const float mask_dead = mask.elem == Elem::kF32 ? mask.dead_value : k.mask_dead;
    auto chain = [&](float v) {
      for (const ScoreOp& op : k.chain) {
        float r = 0.f;
        const float a = op.c_left ? op.c : v, b = op.c_left ? v : op.c;
        switch (op.op) {
          case BinaryKind::kAdd: r = a + b; break;
          case BinaryKind::kSub: r = a - b; break;
          case BinaryKind::kMul: r = a * b; break;
          case BinaryKind::kDiv: r = a / b; break;
        }
        v = op.fq.one(r);
      }
      return v;
    };
    const float* a = ctx.ptr<const float>(s_.a);
    for (int64_t b = 0; b < s_.shape.batches; ++b) {
      for (int64_t r = 0; r < m; ++r) {
        const float* q = a + s_.a_offsets[static_cast<size_t>(b)] + r * kd;
        float l1 = 0.f;
        for (int64_t i = 0; i < kd; ++i) l1 += std::fabs(q[i]);
        const float bound = l1 * kmax * (1.f + 1.f / 1024.f);
        if (!std::isfinite(bound)) return false;
        const float* row = y + (b * m + r) * n;
        // The largest s0 on an attended live column (NaN scores never count).
        float best = -std::numeric_limits<float>::infinity();
        const float* mrow = mask.elem == Elem::kF32 ? reinterpret_cast<const float*>(mask.codes) + r * n : nullptr;
        for (const auto& [c0, c1] : {std::pair<int64_t, int64_t>{0, dead.begin}, {dead.end, n}}) {
          if (mrow != nullptr) {  // f32 mask: attended where >= 0
            for (int64_t c = c0; c < c1; ++c) best = mrow[c] >= 0.f && row[c] > best ? row[c] : best;
          } else {
            for (int64_t c = c0; c < c1; ++c) {
              if (mask.attends(r, c, k.live_code) && row[c] > best) best = row[c];
            }
          }
        }
        if (!(best > -std::numeric_limits<float>::infinity())) return false;  // attends nothing
        const float upper = k.fq_x.one(chain(s_.fake_quant.one(bound)) + mask_dead);
        const float lower = k.fq_x.one(chain(best) + k.mask_live);
        if (!(upper - lower < kernels::kSoftmaxExpZeroBelow)) return false;
      }
    }
    return true;
  }

 public:

 private:
  // A float part's largest |value| in the span `dead` (concat on N, [K, ld] per source batch:
  // its columns there; concat on K, [extent, N]: its rows there) over the batches this matmul
  // reads; NaN when one is inf or NaN. On the bits: |x| of finite x orders as its bit pattern
  // with the sign cleared, and inf / NaN patterns are above every finite one, so one integer
  // max (vectorized) finds both.
  float dead_abs_max(const std::byte* base, const kernels::MatmulPart& part, ColumnSpan dead) const {
    const auto* src = reinterpret_cast<const float*>(base);
    const int64_t d0 = std::max(dead.begin, part.begin) - part.begin;
    const int64_t d1 = std::min(dead.end, part.begin + part.extent) - part.begin;
    // Rows of `len` elements at row stride ld: [K] x [d0, d1) on N; [d0, d1) x [N] on K.
    const bool on_n = s_.shape.concat_on_n;
    const int64_t ld = on_n ? (part.ld > 0 ? part.ld : part.extent) : s_.shape.n;
    const int64_t rows = on_n ? s_.shape.k : 1;
    const int64_t first = on_n ? d0 : d0 * s_.shape.n;
    const int64_t len = on_n ? d1 - d0 : (d1 - d0) * s_.shape.n;
    uint32_t m = 0;
    for (int64_t b = 0; b < s_.shape.batches; ++b) {
      if (b > 0 && s_.b_batches[static_cast<size_t>(b)] == s_.b_batches[static_cast<size_t>(b - 1)]) continue;
      const float* kb = src + s_.b_batches[static_cast<size_t>(b)] * part.batch_stride;
      m = std::max(m, kernels::abs_max_bits_f32(kb + first, rows, len, ld));
    }
    if (m >= 0x7f800000u) return std::numeric_limits<float>::quiet_NaN();  // inf or NaN
    float v;
    std::memcpy(&v, &m, 4);
    return v;
  }

  // The largest |value| part p's integer storage can hold (scale * |code - zero point| over the
  // code range); infinity for float parts.
  static float abs_max(const kernels::MatmulPart& part) {
    const opset::DType st = part.storage;
    if (!opset::dtype_is_integer_storage(st)) return std::numeric_limits<float>::infinity();
    const bool is_unsigned = st == opset::DType::kU8 || st == opset::DType::kU16;
    const bool is_byte = st == opset::DType::kU8 || st == opset::DType::kI8;
    const int64_t lo = is_unsigned ? 0 : is_byte ? -128 : -32768;
    const int64_t hi = is_unsigned ? (is_byte ? 255 : 65535) : (is_byte ? 127 : 32767);
    const float s = std::fabs(part.scale);
    return std::max(s * static_cast<float>(std::llabs(lo - part.zero_point)),
                    s * static_cast<float>(std::llabs(hi - part.zero_point)));
  }

  MatmulSpec s_;
  std::vector<kernels::MatmulPart> parts_;  // s_.parts as the kernel reads them
  std::vector<float> part_abs_max_;         // abs_max(parts_[p]), for the dead-column bound
};

// How one operand of a binary op maps onto the output.
enum class Operand : uint8_t { kFull, kScalar, kTile, kGeneral };

Operand classify(const std::vector<int64_t>& x, const std::vector<int64_t>& y) {
  const int64_t n = ref::count(x);
  if (x == y || (n == ref::count(y) && n > 0 && x.size() <= y.size() &&
                 std::equal(x.begin(), x.end(), y.end() - static_cast<int64_t>(x.size())))) {
    return Operand::kFull;
  }
  if (n == 1) return Operand::kScalar;
  // x (right-aligned, leading 1s dropped) equals the trailing dims of y: it repeats as a block.
  size_t lead = 0;
  while (lead < x.size() && x[lead] == 1) ++lead;
  const size_t rest = x.size() - lead;
  if (rest <= y.size() && std::equal(x.begin() + static_cast<int64_t>(lead), x.end(),
                                     y.end() - static_cast<int64_t>(rest))) {
    return Operand::kTile;
  }
  return Operand::kGeneral;
}

class BinaryStep final : public Step {
 public:
  explicit BinaryStep(BinarySpec spec) : Step(spec.label), s_(std::move(spec)) {
    a_kind_ = classify(s_.a_shape, s_.y_shape);
    b_kind_ = classify(s_.b_shape, s_.y_shape);
    n_ = ref::count(s_.y_shape);
    a_n_ = ref::count(s_.a_shape);
    b_n_ = ref::count(s_.b_shape);
    row_len_ = rows_ok() ? s_.y_shape.back() : 0;
    fused_fq_ = s_.fake_quant.params(&fq_);
  }

  const BinarySpec& spec() const { return s_; }
  std::unique_ptr<Step> stack(const std::vector<const Step*>& others,
                              StackState& state) const override {
    return stack_binaries(specs_of(*this, others), state);
  }

  Status run(const ExecContext& ctx) const override {
    const float* a = ctx.ptr<const float>(s_.a);
    const float* b = ctx.ptr<const float>(s_.b);
    float* y = ctx.ptr<float>(s_.y);
    const ColumnSpan dead = s_.skip != nullptr ? s_.skip->decided : ColumnSpan{};
    const kernels::FakeQuantParams* fq = fused_fq_ ? &fq_ : nullptr;
    if (!dead.empty() && row_len_ > 0) {
      compute_live(a, b, y, dead, fq);
      if (fq == nullptr && s_.fake_quant.active()) s_.fake_quant.apply_live(y, row_len_, dead);
      return ok_status();
    }
    if (!compute(a, b, y, fq, ctx.pool) && s_.fake_quant.active()) s_.fake_quant.apply(y, ctx.pool);
    return ok_status();
  }

 private:
  // Rows of y (row_len_ columns) where each operand is full, a scalar or a tile of whole rows:
  // the op on the columns outside `dead` only (elementwise, so the live columns are exact).
  bool rows_ok() const {
    if (s_.y_shape.empty() || s_.skip == nullptr) return false;
    const int64_t c = s_.y_shape.back();
    auto ok = [&](Operand kind, int64_t count) {
      return kind == Operand::kFull || kind == Operand::kScalar ||
             (kind == Operand::kTile && c > 0 && count % c == 0);
    };
    return c > 0 && ok(a_kind_, a_n_) && ok(b_kind_, b_n_) &&
           (a_kind_ != Operand::kScalar || b_kind_ != Operand::kScalar);
  }

  // The op on y[o, e) from operand pointers (ap, bp) at o, with y's per-tensor fake
  // quantization in the same pass when fq is set (the same bits as the op then apply()).
  void op_run(const float* ap, const float* bp, float* y, int64_t count,
              const kernels::FakeQuantParams* fq) const {
    if (b_kind_ == Operand::kScalar) {
      if (fq != nullptr) {
        kernels::binary_scalar_fq_f32(s_.op, ap, bp[0], /*b_is_rhs=*/true, y, count, *fq);
      } else {
        kernels::binary_scalar_f32(s_.op, ap, bp[0], /*b_is_rhs=*/true, y, count);
      }
    } else if (a_kind_ == Operand::kScalar) {
      if (fq != nullptr) {
        kernels::binary_scalar_fq_f32(s_.op, bp, ap[0], /*b_is_rhs=*/false, y, count, *fq);
      } else {
        kernels::binary_scalar_f32(s_.op, bp, ap[0], /*b_is_rhs=*/false, y, count);
      }
    } else if (fq != nullptr) {
      kernels::binary_fq_f32(s_.op, ap, bp, y, count, *fq);
    } else {
      kernels::binary_f32(s_.op, ap, bp, y, count);
    }
  }

  void compute_live(const float* a, const float* b, float* y, ColumnSpan dead,
                    const kernels::FakeQuantParams* fq) const {
    const int64_t c = row_len_;
    const int64_t d0 = std::clamp<int64_t>(dead.begin, 0, c);
    const int64_t d1 = std::clamp<int64_t>(dead.end, d0, c);
    auto at = [](Operand kind, const float* x, int64_t count, int64_t o) {
      return kind == Operand::kFull ? x + o : kind == Operand::kTile ? x + o % count : x;
    };
    for (int64_t r = 0; r < n_; r += c) {
      const std::pair<int64_t, int64_t> live[2] = {{r, r + d0}, {r + d1, r + c}};
      for (const auto& [o, e] : live) {
        if (e <= o) continue;
        op_run(at(a_kind_, a, a_n_, o), at(b_kind_, b, b_n_, o), y + o, e - o, fq);
      }
    }
  }

  // y = a op b; with fq set, fake-quantized in the same pass where the fast patterns apply.
  // Returns whether y is fake-quantized.
  bool compute(const float* a, const float* b, float* y, const kernels::FakeQuantParams* fq,
               kernels::ThreadPool* pool) const {
    const bool fast_a = a_kind_ != Operand::kGeneral, fast_b = b_kind_ != Operand::kGeneral;
    if (!fast_a || !fast_b || (a_kind_ != Operand::kFull && b_kind_ != Operand::kFull)) {
      ref::binary(static_cast<ref::BinaryOp>(s_.op), {a, s_.a_shape}, {b, s_.b_shape}, y,
                  s_.y_shape);
      return false;
    }
    if (a_kind_ != Operand::kTile && b_kind_ != Operand::kTile) {
      auto at = [](Operand kind, const float* x, int64_t o) { return kind == Operand::kFull ? x + o : x; };
      for_chunks(pool, n_, [&](int64_t first, int64_t last) {
        op_run(at(a_kind_, a, first), at(b_kind_, b, first), y + first, last - first, fq);
      });
      return fq != nullptr;
    }
    // One operand repeats as a block of `block` elements: blocks split over the pool.
    const bool b_tiles = b_kind_ == Operand::kTile;
    const int64_t block = b_tiles ? b_n_ : a_n_;
    const int64_t blocks = n_ / block;
    kernels::ThreadPool* use = n_ >= kParallelMin && blocks > 1 ? pool : nullptr;
    kernels::parallel_for(use, blocks, [&](int64_t first, int64_t last) {
      for (int64_t o = first * block; o < last * block; o += block) {
        const float* ap = b_tiles ? a + o : a;
        const float* bp = b_tiles ? b : b + o;
        if (fq != nullptr) {
          kernels::binary_fq_f32(s_.op, ap, bp, y + o, block, *fq);
        } else {
          kernels::binary_f32(s_.op, ap, bp, y + o, block);
        }
      }
    });
    return fq != nullptr;
  }

  BinarySpec s_;
  Operand a_kind_ = Operand::kGeneral, b_kind_ = Operand::kGeneral;
  int64_t n_ = 0, a_n_ = 0, b_n_ = 0;
  int64_t row_len_ = 0;  // > 0: the step may skip dead columns of rows this long
  bool fused_fq_ = false;  // per-tensor output params: applied in the op's pass (fq_)
  kernels::FakeQuantParams fq_;
};

class RefStep final : public Step {
 public:
  explicit RefStep(RefSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  const RefSpec& spec() const { return s_; }
  std::unique_ptr<Step> stack(const std::vector<const Step*>& others,
                              StackState& state) const override {
    return stack_ref_steps(specs_of(*this, others), state);
  }

  Status run(const ExecContext& ctx) const override {
    auto in = [&](size_t i) { return ctx.ptr<const float>(s_.inputs[i]); };
    auto in_ref = [&](size_t i) { return ref::TensorRef<float>{in(i), s_.in_shapes[i]}; };
    const int64_t n = ref::count(s_.y_shape);
    switch (s_.op) {
      case RefOp::kNeg: ref::neg(in(0), n, ctx.ptr<float>(s_.y)); break;
      case RefOp::kSilu: {  // kernels::silu_f32: ref::silu's bits; chunks split over the pool
        const float* x = in(0);
        float* y = ctx.ptr<float>(s_.y);
        for_chunks(ctx.pool, n, [&](int64_t first, int64_t last) {
          kernels::silu_f32(x + first, y + first, last - first);
        });
        break;
      }
      case RefOp::kTanh: ref::tanh(in(0), n, ctx.ptr<float>(s_.y)); break;
      case RefOp::kGelu:
        ref::gelu(in(0), n, s_.gelu_tanh ? ref::GeluApprox::kTanh : ref::GeluApprox::kNone,
                  ctx.ptr<float>(s_.y));
        break;
      case RefOp::kLayerNorm: {
        const int64_t d = s_.y_shape.empty() ? 1 : s_.y_shape.back();
        ref::layer_norm(d > 0 ? n / d : 0, d, in(0), in(1), s_.inputs.size() > 2 ? in(2) : nullptr,
                        s_.eps, ctx.ptr<float>(s_.y));
        break;
      }
      case RefOp::kRmsNorm: {
        const int64_t d = s_.y_shape.empty() ? 1 : s_.y_shape.back();
        // Rows are independent: split over the pool when there are enough of them.
        const int64_t rows = d > 0 ? n / d : 0;
        const float* x = in(0);
        const float* w = in(1);
        float* y = ctx.ptr<float>(s_.y);
        kernels::ThreadPool* use = n >= kParallelMin && rows > 1 ? ctx.pool : nullptr;
        kernels::parallel_for(use, rows, [&](int64_t first, int64_t last) {
          ref::rms_norm(last - first, d, x + first * d, w, s_.eps, y + first * d);
        });
        break;
      }
      case RefOp::kSoftmax: {
        const ref::AxisDims d = ref::axis_dims(s_.in_shapes[0], s_.axis);
        const ColumnSpan dead = s_.skip != nullptr ? s_.skip->decided : ColumnSpan{};
        if (d.inner == 1 && !dead.empty()) {
          kernels::softmax_rows_live_f32(in(0), ctx.ptr<float>(s_.y), d.outer, d.n, dead.begin,
                                         dead.end, ctx.pool);
        } else if (d.inner == 1) {
          kernels::softmax_rows_f32(in(0), ctx.ptr<float>(s_.y), d.outer, d.n, ctx.pool);
        } else {
          ref::softmax(d, in(0), ctx.ptr<float>(s_.y));
        }
        break;
      }
      case RefOp::kReduceMin:
        ref::reduce_min(ref::axis_dims(s_.in_shapes[0], s_.axis), in(0), ctx.ptr<float>(s_.y));
        break;
      case RefOp::kEq:
        ref::equal(in_ref(0), in_ref(1), ctx.ptr<int32_t>(s_.y), s_.y_shape);
        return ok_status();  // bool output: no fake quantization
      case RefOp::kWhere:
        ref::where({ctx.ptr<const int32_t>(s_.inputs[0]), s_.in_shapes[0]}, in_ref(1), in_ref(2),
                   ctx.ptr<float>(s_.y), s_.y_shape);
        break;
    }
    if (s_.fake_quant.active()) s_.fake_quant.apply(ctx.ptr<float>(s_.y), ctx.pool);
    return ok_status();
  }

 private:
  RefSpec s_;
};

class ConvertStep final : public Step {
 public:
  explicit ConvertStep(ConvertSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    if (s_.to_storage) {
      int64_t first = 0, count = s_.count;
      if (s_.row_output >= 0 && ctx.output_rows != nullptr && !ctx.output_rows[s_.row_output].all()) {
        const RowRange r = ctx.output_rows[s_.row_output];  // token rows of row_elems
        const int64_t tokens = s_.count / s_.row_elems;
        const int64_t t0 = std::clamp<int64_t>(r.first, 0, tokens);
        first = t0 * s_.row_elems;
        count = std::clamp<int64_t>(r.count, 0, tokens - t0) * s_.row_elems;
      }
      const auto bytes = opset::dtype_size(s_.storage);
      const float* from = ctx.ptr<const float>(s_.from) + first;
      std::byte* to = ctx.ptr<std::byte>(s_.to) + first * bytes;
      for_chunks(ctx.pool, count, [&](int64_t b, int64_t e) {
        kernels::quantize_f32(from + b, e - b, s_.scale, s_.zero_point, s_.qmin, s_.qmax,
                              s_.storage, to + b * bytes);
      });
    } else {
      const std::byte* from = ctx.ptr<const std::byte>(s_.from);
      float* to = ctx.ptr<float>(s_.to);
      const auto bytes = opset::dtype_size(s_.storage);
      for_chunks(ctx.pool, s_.count, [&](int64_t b, int64_t e) {
        kernels::dequantize_to_f32(from + b * bytes, s_.storage, e - b, s_.scale, s_.zero_point,
                                   to + b);
      });
    }
    return ok_status();
  }

 private:
  ConvertSpec s_;
};

class ChainsStep final : public Step {
 public:
  explicit ChainsStep(ChainsSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    HS_TRY(run_in_order(ctx, s_.prologue));
    for (const auto& phase : s_.phases) {
      // One task (stacked steps): one after another, each with the whole pool.
      HS_TRY(phase.size() == 1 ? run_in_order(ctx, phase[0]) : run_phase(ctx, phase));
    }
    return ok_status();
  }

 private:
  static Status run_in_order(const ExecContext& ctx,
                             const std::vector<std::unique_ptr<Step>>& steps) {
    for (const auto& step : steps) {
      Status s = step->run(ctx);
      if (!s.ok()) return std::move(s).error().with_context(step->label());
    }
    return ok_status();
  }

  static Status run_phase(const ExecContext& ctx,
                          const std::vector<std::vector<std::unique_ptr<Step>>>& tasks) {
    std::mutex mutex;
    Status first = ok_status();
    int64_t first_chain = -1;
    kernels::parallel_for(
        ctx.pool, static_cast<int64_t>(tasks.size()), [&](int64_t begin, int64_t end) {
          for (int64_t c = begin; c < end; ++c) {
            const auto& task = tasks[static_cast<size_t>(c)];
            for (size_t i = 0; i < task.size(); ++i) {
              if (i + 1 < task.size()) prefetch_step(task[i + 1].get());
              const auto& step = task[i];
              Status s = step->run(ctx);
              if (s.ok()) continue;
              std::lock_guard<std::mutex> lock(mutex);
              if (first_chain < 0 || c < first_chain) {  // the error the serial order meets first
                first_chain = c;
                first = std::move(s).error().with_context(step->label());
              }
              break;
            }
          }
        });
    return first;
  }

  ChainsSpec s_;
};

}  // namespace

std::unique_ptr<Step> make_chains_step(ChainsSpec spec) {
  return std::make_unique<ChainsStep>(std::move(spec));
}
std::unique_ptr<Step> make_projection_step(ProjectionSpec spec) {
  return std::make_unique<ProjectionStep>(std::move(spec));
}
std::unique_ptr<Step> make_matmul_step(MatmulSpec spec) {
  return std::make_unique<MatmulStep>(std::move(spec));
}
std::unique_ptr<Step> make_binary_step(BinarySpec spec) {
  return std::make_unique<BinaryStep>(std::move(spec));
}
std::unique_ptr<Step> make_ref_step(RefSpec spec) {
  return std::make_unique<RefStep>(std::move(spec));
}
std::unique_ptr<Step> make_convert_step(ConvertSpec spec) {
  return std::make_unique<ConvertStep>(std::move(spec));
}

}  // namespace hs::runtime::detail

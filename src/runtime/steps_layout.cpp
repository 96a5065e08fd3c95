// Layout steps: every layout op (transpose, slice, concat, expand, and reshape-like copies) is
// one or more strided copies with collapsed dims, so the split graph's many small layout ops
// cost a memcpy or a short loop; integer sources (u8/u16 graph inputs) are dequantized on the
// way. Gather copies (or dequantizes) table rows.
#include <cstring>

#include "headsplit/kernels/quant.h"
#include "steps.h"

namespace hs::runtime::detail {

namespace {

// Reads element i of an integer-storage source as its real value.
float decode_one(const std::byte* base, Elem elem, int64_t i, float scale, int32_t zp) {
  int32_t q = 0;
  switch (elem) {
    case Elem::kU8: q = static_cast<uint8_t>(base[i]); break;
    case Elem::kI8: q = static_cast<int8_t>(base[i]); break;
    case Elem::kU16: {
      uint16_t v;
      std::memcpy(&v, base + 2 * i, 2);
      q = v;
      break;
    }
    case Elem::kI16: {
      int16_t v;
      std::memcpy(&v, base + 2 * i, 2);
      q = v;
      break;
    }
    default: break;
  }
  return kernels::dequantize_one(q, scale, zp);
}

class CopyStep final : public Step {
 public:
  explicit CopyStep(CopySpec spec) : Step(spec.label), s_(std::move(spec)) {}

  const CopySpec& spec() const { return s_; }
  std::unique_ptr<Step> stack(const std::vector<const Step*>& others,
                              StackState& state) const override {
    return stack_copies(specs_of(*this, others), state);
  }

  Status run(const ExecContext& ctx) const override {
    std::byte* y = ctx.ptr<std::byte>(s_.y);
    if (s_.row_output >= 0 && ctx.output_rows != nullptr && !ctx.output_rows[s_.row_output].all()) {
      if (s_.rows != nullptr && s_.rows->count > 0) {  // [count, N] floats to rows first..
        const size_t bytes = s_.rows->rows.size() * sizeof(float);
        const auto n = static_cast<int64_t>(s_.rows->rows.size()) / s_.rows->count;
        std::memcpy(y + s_.rows->first * n * 4, s_.rows->rows.data(), bytes);
      }
      return ok_status();
    }
    for (const CopyPiece& p : s_.pieces) copy(ctx.ptr<const std::byte>(p.src.ref), p, y);
    if (s_.fake_quant.active()) s_.fake_quant.apply(ctx.ptr<float>(s_.y), ctx.pool);
    return ok_status();
  }

 private:
  // Copies the innermost run (count elements, strides ss / ds) of a piece.
  static void run_copy(const std::byte* src, const CopyPiece& p, int64_t si, int64_t ss,
                       std::byte* dst, int64_t di, int64_t ds, int64_t count) {
    const Elem e = p.src.elem;
    if (!opset::dtype_is_integer_storage(e)) {  // f32 or i32: 4-byte moves
      if (ss == 1 && ds == 1) {
        std::memcpy(dst + di * 4, src + si * 4, static_cast<size_t>(count) * 4);
        return;
      }
      for (int64_t i = 0; i < count; ++i) {
        std::memcpy(dst + (di + i * ds) * 4, src + (si + i * ss) * 4, 4);
      }
      return;
    }
    auto* out = reinterpret_cast<float*>(dst);
    if (ss == 1 && ds == 1) {
      kernels::dequantize_to_f32(src + si * opset::dtype_size(e), e, count, p.src.scale,
                                 p.src.zero_point, out + di);
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      out[di + i * ds] = decode_one(src, e, si + i * ss, p.src.scale, p.src.zero_point);
    }
  }

  static void copy(const std::byte* src, const CopyPiece& p, std::byte* dst) {
    const size_t rank = p.shape.size();
    if (rank == 0) {
      run_copy(src, p, p.src_offset, 1, dst, p.dst_offset, 1, 1);
      return;
    }
    const int64_t inner = p.shape[rank - 1];
    const int64_t ss = p.src_strides[rank - 1], ds = p.dst_strides[rank - 1];
    int64_t outer = 1;
    for (size_t a = 0; a + 1 < rank; ++a) outer *= p.shape[a];
    // Odometer over the outer axes, tracking both offsets.
    int64_t index[8] = {};
    int64_t si = p.src_offset, di = p.dst_offset;
    for (int64_t o = 0; o < outer; ++o) {
      run_copy(src, p, si, ss, dst, di, ds, inner);
      for (size_t a = rank - 1; a-- > 0;) {
        ++index[a];
        si += p.src_strides[a];
        di += p.dst_strides[a];
        if (index[a] < p.shape[a]) break;
        si -= p.src_strides[a] * p.shape[a];
        di -= p.dst_strides[a] * p.shape[a];
        index[a] = 0;
      }
    }
  }

  CopySpec s_;
};

class GatherStep final : public Step {
 public:
  explicit GatherStep(GatherSpec spec) : Step(spec.label), s_(std::move(spec)) {
    if (s_.block > 0) blocks_ = (s_.width + s_.block - 1) / s_.block;
  }

  Status run(const ExecContext& ctx) const override {
    const int32_t* idx = ctx.ptr<const int32_t>(s_.indices);
    std::byte* y = ctx.ptr<std::byte>(s_.y);
    for (int64_t i = 0; i < s_.count; ++i) {
      const int64_t r = idx[i];
      if (r < 0 || r >= s_.rows) {
        return errorf(ErrorKind::kOutOfRange, "index {} at position {} is outside [0, {})", r, i,
                      s_.rows);
      }
      copy_row(ctx, r, y + i * s_.width * 4);
    }
    if (s_.fake_quant.active()) s_.fake_quant.apply(ctx.ptr<float>(s_.y), ctx.pool);
    return ok_status();
  }

 private:
  void copy_row(const ExecContext& ctx, int64_t r, std::byte* out) const {
    const auto w = static_cast<size_t>(s_.width);
    if (s_.table == GatherSpec::Table::kDense) {
      std::memcpy(out, ctx.ptr<const std::byte>(s_.table_ref) + r * s_.width * 4, w * 4);
      return;
    }
    auto* y = reinterpret_cast<float*>(out);
    const bool per_row = s_.scales.size() > 1;
    for (int64_t j = 0; j < s_.width; ++j) {
      size_t p = 0;
      if (blocks_ > 0) {
        p = static_cast<size_t>(r * blocks_ + j / s_.block);
      } else if (per_row) {
        p = static_cast<size_t>(r);
      }
      const int32_t zp = s_.zero_points.empty() ? 0 : s_.zero_points[p];
      int32_t q = 0;
      if (s_.table == GatherSpec::Table::kInt4) {
        const uint8_t byte = static_cast<uint8_t>(s_.data[r * ((s_.width + 1) / 2) + j / 2]);
        const int32_t nib = (j % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
        q = nib >= 8 ? nib - 16 : nib;
        y[j] = kernels::dequantize_one(q, s_.scales[p], zp);
        continue;
      }
      y[j] = decode_one(s_.data + r * s_.width * opset::dtype_size(s_.storage), s_.storage, j,
                        s_.scales[p], zp);
    }
  }

  GatherSpec s_;
  int64_t blocks_ = 0;
};

}  // namespace

void collapse_piece(CopyPiece& p) {
  std::vector<int64_t> shape, ss, ds;
  for (size_t a = 0; a < p.shape.size(); ++a) {
    if (p.shape[a] == 1) continue;
    if (!shape.empty() && ss.back() == p.src_strides[a] * p.shape[a] &&
        ds.back() == p.dst_strides[a] * p.shape[a]) {
      shape.back() *= p.shape[a];
      ss.back() = p.src_strides[a];
      ds.back() = p.dst_strides[a];
      continue;
    }
    shape.push_back(p.shape[a]);
    ss.push_back(p.src_strides[a]);
    ds.push_back(p.dst_strides[a]);
  }
  p.shape = std::move(shape);
  p.src_strides = std::move(ss);
  p.dst_strides = std::move(ds);
}

std::unique_ptr<Step> make_copy_step(CopySpec spec) {
  for (CopyPiece& p : spec.pieces) {
    collapse_piece(p);
    HS_CHECK(p.shape.size() <= 8, "copy step: more than 8 non-mergeable axes");
  }
  return std::make_unique<CopyStep>(std::move(spec));
}

std::unique_ptr<Step> make_gather_step(GatherSpec spec) {
  return std::make_unique<GatherStep>(std::move(spec));
}

}  // namespace hs::runtime::detail

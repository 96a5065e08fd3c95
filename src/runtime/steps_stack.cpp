// Stacking the steps of identical per-head tasks into one step each (steps.h: StackState).
// Shapes: S tasks; a task's tensor of shape X becomes [S, X...] when stacked (task i's elements
// at i * numel(X)); a shared operand keeps its shape (broadcast over S).
#include <algorithm>
#include <optional>

#include "steps.h"

namespace hs::runtime::detail {

namespace ref = kernels::ref;

bool StackState::tied_together(const std::vector<const ColumnSkip*>& skips) const {
  for (const ColumnSkip* s : skips) {
    if (s == skips[0]) continue;
    if (s == nullptr || skips[0] == nullptr) return false;
    const auto it = std::find(tied.begin(), tied.end(), std::make_pair(s, skips[0]));
    if (it == tied.end()) return false;
  }
  return true;
}

namespace {

enum class Stacking : uint8_t { kShared, kStacked, kNone };

// How the refs r[i] of the S tasks lie: all at the same address (shared), or task i's at the
// first's + i * bytes in the same base (stacked).
Stacking stacking(const StackState& state, const std::vector<int32_t>& r, int64_t bytes) {
  const std::vector<Ref>& refs = *state.refs;
  const Ref& first = refs[static_cast<size_t>(r[0])];
  bool shared = true, stacked = bytes > 0;
  for (size_t i = 1; i < r.size(); ++i) {
    const Ref& x = refs[static_cast<size_t>(r[i])];
    shared = shared && x.base == first.base && x.offset == first.offset;
    stacked = stacked && x.base == first.base &&
              x.offset == first.offset + static_cast<uint64_t>(bytes) * i;
  }
  return shared ? Stacking::kShared : stacked ? Stacking::kStacked : Stacking::kNone;
}

template <typename Spec, typename Field>
std::vector<int32_t> refs_of(const std::vector<const Spec*>& s, Field field) {
  std::vector<int32_t> r;
  for (const Spec* x : s) r.push_back(x->*field);
  return r;
}

template <typename Spec>
bool same_fake_quant(const std::vector<const Spec*>& s, FakeQuant Spec::*field) {
  return std::all_of(s.begin(), s.end(),
                     [&](const Spec* x) { return (x->*field).same_per_tensor(s[0]->*field); });
}

template <typename Spec>
std::vector<const ColumnSkip*> skips_of(const std::vector<const Spec*>& s,
                                        std::shared_ptr<const ColumnSkip> Spec::*field) {
  std::vector<const ColumnSkip*> k;
  for (const Spec* x : s) k.push_back((x->*field).get());
  return k;
}

std::string stacked_label(const std::string& first, size_t s) {
  return first + " and " + std::to_string(s - 1) + " more heads' (one stacked call)";
}

std::vector<int64_t> with_lead(int64_t s, const std::vector<int64_t>& shape) {
  std::vector<int64_t> out{s};
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

// Two heads' column skips decide alike: the same mask, codes and score-chain params.
bool same_skip(const ColumnSkip& a, const ColumnSkip& b) {
  if (a.mask != b.mask || a.mask_dead != b.mask_dead || a.mask_live != b.mask_live ||
      a.live_code != b.live_code || !a.fq_x.same_per_tensor(b.fq_x) ||
      a.chain.size() != b.chain.size()) {
    return false;
  }
  for (size_t i = 0; i < a.chain.size(); ++i) {
    const ScoreOp &x = a.chain[i], &y = b.chain[i];
    if (x.op != y.op || x.c != y.c || x.c_left != y.c_left || !x.fq.same_per_tensor(y.fq)) {
      return false;
    }
  }
  return true;
}

}  // namespace

// Matmuls of one batch each: A [M, K] and y [M, N] stacked; B's parts read per task at the
// first's + b_i * stride (the same b_i for every part: the task's kv head), so the stacked
// matmul has S batches with a_offsets i * M * K and b_batches b_i.
std::unique_ptr<Step> stack_matmuls(const std::vector<const MatmulSpec*>& s, StackState& state) {
  if (s.size() < 2) return nullptr;
  const MatmulSpec& a = *s[0];
  const int64_t m = a.shape.m, n = a.shape.n, k = a.shape.k;
  for (const MatmulSpec* x : s) {
    if (x->shape.batches != 1 || x->shape.m != m || x->shape.n != n || x->shape.k != k ||
        x->shape.concat_on_n != a.shape.concat_on_n || x->parts.size() != a.parts.size() ||
        (x->skip == nullptr) != (a.skip == nullptr) ||
        (x->skip != nullptr && !same_skip(*x->skip, *a.skip))) {
      return nullptr;
    }
    for (size_t p = 0; p < a.parts.size(); ++p) {
      const MatmulPartSource &u = x->parts[p], &v = a.parts[p];
      if (u.source.elem != v.source.elem || u.source.scale != v.source.scale ||
          u.source.zero_point != v.source.zero_point || u.begin != v.begin ||
          u.extent != v.extent) {
        return nullptr;
      }
    }
  }
  if (!same_fake_quant(s, &MatmulSpec::fake_quant) ||
      !state.tied_together(skips_of(s, &MatmulSpec::skip_rows)) ||
      stacking(state, refs_of(s, &MatmulSpec::a), m * k * 4) != Stacking::kStacked ||
      stacking(state, refs_of(s, &MatmulSpec::y), m * n * 4) != Stacking::kStacked) {
    return nullptr;
  }
  // Task i reads part p at the first task's + b_i * stride_p bytes. b_i comes from part 0 (its
  // smallest positive step is the stride); each part's stride from the first task with b_i > 0,
  // then checked against every task.
  const std::vector<Ref>& refs = *state.refs;
  auto delta = [&](size_t i, size_t p) -> std::optional<int64_t> {
    const Ref& r = refs[static_cast<size_t>(s[i]->parts[p].source.ref)];
    const Ref& r0 = refs[static_cast<size_t>(s[0]->parts[p].source.ref)];
    if (r.base != r0.base) return std::nullopt;
    return static_cast<int64_t>(r.offset) - static_cast<int64_t>(r0.offset);
  };
  int64_t step = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const std::optional<int64_t> d = delta(i, 0);
    if (!d || *d < 0) return nullptr;
    if (*d > 0 && (step == 0 || *d < step)) step = *d;
  }
  std::vector<int64_t> batch(s.size(), 0);
  for (size_t i = 1; i < s.size() && step > 0; ++i) batch[i] = *delta(i, 0) / step;
  const auto first = std::find_if(batch.begin(), batch.end(), [](int64_t b) { return b > 0; });
  MatmulSpec y = a;
  for (size_t p = 0; p < a.parts.size(); ++p) {
    int64_t stride = 0;
    if (first != batch.end()) {
      const std::optional<int64_t> d = delta(static_cast<size_t>(first - batch.begin()), p);
      if (!d || *d % *first != 0) return nullptr;
      stride = *d / *first;
    }
    for (size_t i = 1; i < s.size(); ++i) {
      const std::optional<int64_t> d = delta(i, p);
      if (!d || *d != batch[i] * stride) return nullptr;
    }
    const auto elem = static_cast<int64_t>(opset::dtype_size(a.parts[p].source.elem));
    if (stride < 0 || stride % elem != 0) return nullptr;
    y.parts[p].batch_stride = stride / elem;
  }
  y.label = stacked_label(a.label, s.size());
  y.shape.batches = static_cast<int64_t>(s.size());
  y.a_offsets.clear();
  for (size_t i = 0; i < s.size(); ++i) y.a_offsets.push_back(static_cast<int64_t>(i) * m * k);
  y.b_batches = std::move(batch);
  y.fake_quant = a.fake_quant.over(static_cast<int64_t>(s.size()) * m * n);
  if (a.skip != nullptr) {
    for (size_t i = 1; i < s.size(); ++i) {
      y.skip_also.push_back(s[i]->skip);
      state.tied.emplace_back(s[i]->skip.get(), a.skip.get());
    }
  }
  return make_matmul_step(std::move(y));
}

// y = a op b: each operand stacked ([S, shape]) or shared (its shape, broadcast); y stacked.
std::unique_ptr<Step> stack_binaries(const std::vector<const BinarySpec*>& s, StackState& state) {
  if (s.size() < 2) return nullptr;
  const BinarySpec& a = *s[0];
  for (const BinarySpec* x : s) {
    if (x->op != a.op || x->a_shape != a.a_shape || x->b_shape != a.b_shape ||
        x->y_shape != a.y_shape) {
      return nullptr;
    }
  }
  const auto sn = static_cast<int64_t>(s.size());
  const Stacking ka = stacking(state, refs_of(s, &BinarySpec::a), ref::count(a.a_shape) * 4);
  const Stacking kb = stacking(state, refs_of(s, &BinarySpec::b), ref::count(a.b_shape) * 4);
  if (ka == Stacking::kNone || kb == Stacking::kNone ||
      stacking(state, refs_of(s, &BinarySpec::y), ref::count(a.y_shape) * 4) !=
          Stacking::kStacked ||
      !same_fake_quant(s, &BinarySpec::fake_quant) ||
      !state.tied_together(skips_of(s, &BinarySpec::skip))) {
    return nullptr;
  }
  BinarySpec y = a;
  y.label = stacked_label(a.label, s.size());
  if (ka == Stacking::kStacked) y.a_shape = with_lead(sn, a.a_shape);
  if (kb == Stacking::kStacked) y.b_shape = with_lead(sn, a.b_shape);
  y.y_shape = with_lead(sn, a.y_shape);
  y.fake_quant = a.fake_quant.over(ref::count(y.y_shape));
  return make_binary_step(std::move(y));
}

// Softmax over the last axis (rows independent): input and y stacked.
std::unique_ptr<Step> stack_ref_steps(const std::vector<const RefSpec*>& s, StackState& state) {
  if (s.size() < 2) return nullptr;
  const RefSpec& a = *s[0];
  if (a.op != RefOp::kSoftmax || a.inputs.size() != 1 ||
      a.axis + 1 != static_cast<int64_t>(a.y_shape.size())) {
    return nullptr;
  }
  for (const RefSpec* x : s) {
    if (x->op != a.op || x->inputs.size() != 1 || x->in_shapes != a.in_shapes ||
        x->y_shape != a.y_shape || x->axis != a.axis) {
      return nullptr;
    }
  }
  std::vector<int32_t> in;
  for (const RefSpec* x : s) in.push_back(x->inputs[0]);
  const int64_t bytes = ref::count(a.y_shape) * 4;
  if (stacking(state, in, bytes) != Stacking::kStacked ||
      stacking(state, refs_of(s, &RefSpec::y), bytes) != Stacking::kStacked ||
      !same_fake_quant(s, &RefSpec::fake_quant) ||
      !state.tied_together(skips_of(s, &RefSpec::skip))) {
    return nullptr;
  }
  const auto sn = static_cast<int64_t>(s.size());
  RefSpec y = a;
  y.label = stacked_label(a.label, s.size());
  y.in_shapes = {with_lead(sn, a.in_shapes[0])};
  y.y_shape = with_lead(sn, a.y_shape);
  y.axis = a.axis + 1;
  y.fake_quant = a.fake_quant.over(ref::count(y.y_shape));
  return make_ref_step(std::move(y));
}

// RoPE rows: x and y stacked (S * rows rows), the same tables; row i * rows + r uses table row
// r % table_rows when rows is a multiple of table_rows.
std::unique_ptr<Step> stack_ropes(const std::vector<const RopeSpec*>& s, StackState& state) {
  if (s.size() < 2) return nullptr;
  const RopeSpec& a = *s[0];
  if (a.table_rows <= 0 || a.rows % a.table_rows != 0) return nullptr;
  for (const RopeSpec* x : s) {
    if (x->rows != a.rows || x->dh != a.dh || x->half != a.half || x->table_rows != a.table_rows) {
      return nullptr;
    }
    for (size_t f = 0; f < 6; ++f) {
      if (!x->fq[f].same_per_tensor(a.fq[f])) return nullptr;
    }
  }
  const int64_t bytes = a.rows * a.dh * 4;
  if (!same_fake_quant(s, &RopeSpec::out_fq) ||
      stacking(state, refs_of(s, &RopeSpec::x), bytes) != Stacking::kStacked ||
      stacking(state, refs_of(s, &RopeSpec::y), bytes) != Stacking::kStacked ||
      stacking(state, refs_of(s, &RopeSpec::cos), 0) != Stacking::kShared ||
      stacking(state, refs_of(s, &RopeSpec::sin), 0) != Stacking::kShared) {
    return nullptr;
  }
  RopeSpec y = a;
  y.label = stacked_label(a.label, s.size());
  y.rows = a.rows * static_cast<int64_t>(s.size());
  return make_rope_step(std::move(y));
}

// One strided copy each, writing all of its y (dst_offset 0, numel(shape) elements): y stacked,
// the sources at the first's + i * d for one d, so one piece with a leading axis of S (source
// stride d, destination stride numel(shape)).
std::unique_ptr<Step> stack_copies(const std::vector<const CopySpec*>& s, StackState& state) {
  if (s.size() < 2) return nullptr;
  const CopySpec& a = *s[0];
  if (a.pieces.size() != 1 || a.row_output >= 0 || a.pieces[0].dst_offset != 0) return nullptr;
  const CopyPiece& p = a.pieces[0];
  std::vector<int32_t> src;
  for (const CopySpec* x : s) {
    if (x->pieces.size() != 1 || x->row_output >= 0 || x->out != a.out) return nullptr;
    const CopyPiece& q = x->pieces[0];
    if (q.src.elem != p.src.elem || q.src.scale != p.src.scale ||
        q.src.zero_point != p.src.zero_point || q.src_offset != p.src_offset || q.dst_offset != 0 ||
        q.shape != p.shape || q.src_strides != p.src_strides || q.dst_strides != p.dst_strides) {
      return nullptr;
    }
    src.push_back(q.src.ref);
  }
  const std::vector<Ref>& refs = *state.refs;
  const auto elem = static_cast<int64_t>(opset::dtype_size(p.src.elem));
  const int64_t d = static_cast<int64_t>(refs[static_cast<size_t>(src[1])].offset) -
                    static_cast<int64_t>(refs[static_cast<size_t>(src[0])].offset);
  const int64_t count = ref::count(p.shape);
  if (d <= 0 || d % elem != 0 || stacking(state, src, d) != Stacking::kStacked ||
      stacking(state, refs_of(s, &CopySpec::y), count * 4) != Stacking::kStacked ||
      !same_fake_quant(s, &CopySpec::fake_quant) || p.shape.size() + 1 > 8) {
    return nullptr;
  }
  const auto sn = static_cast<int64_t>(s.size());
  CopySpec y = a;
  y.label = stacked_label(a.label, s.size());
  CopyPiece& q = y.pieces[0];
  q.shape = with_lead(sn, p.shape);
  q.src_strides.insert(q.src_strides.begin(), d / elem);
  q.dst_strides.insert(q.dst_strides.begin(), count);
  y.fake_quant = a.fake_quant.over(sn * count);
  return make_copy_step(std::move(y));
}

}  // namespace hs::runtime::detail

// Reference layout kernels: every 4-D transpose permutation checked element by element
// against index arithmetic, slices (including at the end), concat of three, expand and
// gather with its out-of-range error.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "headsplit/kernels/reference.h"
#include "testing/testing.h"

namespace hs::kernels::ref {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;
using Dims64 = std::vector<int64_t>;

TEST(RefTranspose, AllPermutationsOf4D) {
  // x[2,3,4,5] with x[i] = flat index i. For y = transpose(x, perm):
  //   y[j0,j1,j2,j3] = x[i] where i[perm[k]] = j[k].
  const Dims64 xs = {2, 3, 4, 5};
  Floats x(120);
  std::iota(x.begin(), x.end(), 0.f);
  Ints xi(120);
  std::iota(xi.begin(), xi.end(), 0);
  Dims64 perm = {0, 1, 2, 3};
  int checked = 0;
  do {
    const Dims64 ys = {xs[perm[0]], xs[perm[1]], xs[perm[2]], xs[perm[3]]};
    Floats y(120, -1);
    Ints yi(120, -1);
    transpose({x.data(), xs}, perm, y.data());
    transpose({xi.data(), xs}, perm, yi.data());
    int64_t flat = 0;
    for (int64_t j0 = 0; j0 < ys[0]; ++j0) {
      for (int64_t j1 = 0; j1 < ys[1]; ++j1) {
        for (int64_t j2 = 0; j2 < ys[2]; ++j2) {
          for (int64_t j3 = 0; j3 < ys[3]; ++j3, ++flat) {
            int64_t i[4];
            i[perm[0]] = j0;
            i[perm[1]] = j1;
            i[perm[2]] = j2;
            i[perm[3]] = j3;
            const int64_t src = ((i[0] * 3 + i[1]) * 4 + i[2]) * 5 + i[3];
            ASSERT_EQ(y[static_cast<size_t>(flat)], static_cast<float>(src));
            ASSERT_EQ(yi[static_cast<size_t>(flat)], src);
          }
        }
      }
    }
    ++checked;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(checked, 24);
}

TEST(RefTranspose, AllPermutationsOf3DLargerThanTheTiles) {
  // x[3,70,130] (the kernel copies the last two y axes in 8 x 64 tiles: these sizes leave
  // partial tiles on both), x[i] = flat index i, checked as above.
  const Dims64 xs = {3, 70, 130};
  const int64_t n = 3 * 70 * 130;
  Floats x(static_cast<size_t>(n));
  std::iota(x.begin(), x.end(), 0.f);
  Dims64 perm = {0, 1, 2};
  int checked = 0;
  do {
    const Dims64 ys = {xs[perm[0]], xs[perm[1]], xs[perm[2]]};
    Floats y(static_cast<size_t>(n), -1);
    transpose({x.data(), xs}, perm, y.data());
    int64_t flat = 0;
    for (int64_t j0 = 0; j0 < ys[0]; ++j0) {
      for (int64_t j1 = 0; j1 < ys[1]; ++j1) {
        for (int64_t j2 = 0; j2 < ys[2]; ++j2, ++flat) {
          int64_t i[3];
          i[perm[0]] = j0;
          i[perm[1]] = j1;
          i[perm[2]] = j2;
          const int64_t src = (i[0] * 70 + i[1]) * 130 + i[2];
          ASSERT_EQ(y[static_cast<size_t>(flat)], static_cast<float>(src));
        }
      }
    }
    ++checked;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(checked, 6);
}

TEST(RefTranspose, AllPermutationsOf4DWithUnitAxes) {
  // Size-1 axes are dropped before the last two axes are tiled: logits-like [1,70,1,9] and
  // shapes with unit axes last, first and in between, every permutation, checked as above.
  for (const Dims64& xs :
       {Dims64{1, 70, 1, 9}, Dims64{2, 1, 130, 1}, Dims64{1, 1, 1, 1}, Dims64{1, 3, 65, 1}}) {
    const int64_t n = xs[0] * xs[1] * xs[2] * xs[3];
    Floats x(static_cast<size_t>(n));
    std::iota(x.begin(), x.end(), 0.f);
    Dims64 perm = {0, 1, 2, 3};
    do {
      SCOPED_TRACE(::testing::Message()
                   << "x [" << xs[0] << "," << xs[1] << "," << xs[2] << "," << xs[3] << "] perm "
                   << perm[0] << perm[1] << perm[2] << perm[3]);
      const Dims64 ys = {xs[perm[0]], xs[perm[1]], xs[perm[2]], xs[perm[3]]};
      Floats y(static_cast<size_t>(n), -1);
      transpose({x.data(), xs}, perm, y.data());
      int64_t flat = 0;
      for (int64_t j0 = 0; j0 < ys[0]; ++j0) {
        for (int64_t j1 = 0; j1 < ys[1]; ++j1) {
          for (int64_t j2 = 0; j2 < ys[2]; ++j2) {
            for (int64_t j3 = 0; j3 < ys[3]; ++j3, ++flat) {
              int64_t i[4];
              i[perm[0]] = j0;
              i[perm[1]] = j1;
              i[perm[2]] = j2;
              i[perm[3]] = j3;
              const int64_t src = ((i[0] * xs[1] + i[1]) * xs[2] + i[2]) * xs[3] + i[3];
              ASSERT_EQ(y[static_cast<size_t>(flat)], static_cast<float>(src));
            }
          }
        }
      }
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(RefTranspose, HandComputed2D) {
  // {{1,2,3},{4,5,6}}^T = {{1,4},{2,5},{3,6}}
  const Floats x = {1, 2, 3, 4, 5, 6};
  const Dims64 xs = {2, 3}, perm = {1, 0};
  Floats y(6);
  transpose({x.data(), xs}, perm, y.data());
  EXPECT_EQ(y, (Floats{1, 4, 2, 5, 3, 6}));
}

TEST(RefSlice, AtTheEndAndOnOuterAxis) {
  // x[2,5] = {{0..4},{5..9}}; [3,5) on axis 1 = {{3,4},{8,9}}; [1,2) on axis 0 = {5..9}.
  Floats x(10);
  std::iota(x.begin(), x.end(), 0.f);
  const Dims64 xs = {2, 5};
  Floats y(4);
  slice({x.data(), xs}, {1, 3, 5}, y.data());
  EXPECT_EQ(y, (Floats{3, 4, 8, 9}));
  Floats z(5);
  slice({x.data(), xs}, {0, 1, 2}, z.data());
  EXPECT_EQ(z, (Floats{5, 6, 7, 8, 9}));
  const Ints xi = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  Ints yi(2);
  slice({xi.data(), xs}, {1, 0, 1}, yi.data());  // first column
  EXPECT_EQ(yi, (Ints{0, 5}));
}

TEST(RefConcat, ThreeOperandsOnEachAxis) {
  // a[2,1] = {1,2}, b[2,2] = {{3,4},{5,6}}, c[2,1] = {7,8} on axis 1:
  //   {{1,3,4,7},{2,5,6,8}}
  const Floats a = {1, 2}, b = {3, 4, 5, 6}, c = {7, 8};
  const Dims64 as = {2, 1}, bs = {2, 2}, cs = {2, 1};
  const std::vector<TensorRef<float>> xs = {{a.data(), as}, {b.data(), bs}, {c.data(), cs}};
  Floats y(8);
  concat(xs, 1, y.data());
  EXPECT_EQ(y, (Floats{1, 3, 4, 7, 2, 5, 6, 8}));
  // On axis 0: a[1,2], b[2,2], c[1,2] stack their rows.
  const Dims64 a0 = {1, 2}, b0 = {2, 2}, c0 = {1, 2};
  const std::vector<TensorRef<float>> rows = {{a.data(), a0}, {b.data(), b0}, {c.data(), c0}};
  concat(rows, 0, y.data());
  EXPECT_EQ(y, (Floats{1, 2, 3, 4, 5, 6, 7, 8}));
  // int32 tensors, with an empty operand (0 columns) in the middle.
  const Ints p = {1, 2}, q = {}, r = {3, 4};
  const Dims64 ps = {2, 1}, qs = {2, 0};
  const std::vector<TensorRef<int32_t>> is = {{p.data(), ps}, {q.data(), qs}, {r.data(), ps}};
  Ints yi(4);
  concat(is, 1, yi.data());
  EXPECT_EQ(yi, (Ints{1, 3, 2, 4}));
}

TEST(RefExpand, StretchesSizeOneAxes) {
  // x[2,1,3] -> [2,2,3]: each row repeated.
  const Floats x = {1, 2, 3, 4, 5, 6};
  const Dims64 xs = {2, 1, 3}, ys = {2, 2, 3};
  Floats y(12);
  expand({x.data(), xs}, y.data(), ys);
  EXPECT_EQ(y, (Floats{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}));
  // i32 [1,2] -> [3,2]
  const Ints xi = {7, 9};
  const Dims64 xis = {1, 2}, yis = {3, 2};
  Ints yi(6);
  expand({xi.data(), xis}, yi.data(), yis);
  EXPECT_EQ(yi, (Ints{7, 9, 7, 9, 7, 9}));
}

TEST(RefGather, RowsOfAxisZero) {
  // table[4,2] = {{0,1},{10,11},{20,21},{30,31}}, indices[2,2] = {{3,0},{1,1}} -> [2,2,2].
  const Floats table = {0, 1, 10, 11, 20, 21, 30, 31};
  const Ints idx = {3, 0, 1, 1};
  const Dims64 ts = {4, 2}, is = {2, 2};
  Floats y(8);
  HS_ASSERT_OK(gather({table.data(), ts}, {idx.data(), is}, y.data()));
  EXPECT_EQ(y, (Floats{30, 31, 0, 1, 10, 11, 10, 11}));
  // An i32 table of rank 1: rows are single elements.
  const Ints t1 = {5, 6, 7}, idx1 = {2, 0, 1, 1};
  const Dims64 t1s = {3};
  Ints y1(4);
  HS_ASSERT_OK(gather({t1.data(), t1s}, {idx1.data(), is}, y1.data()));
  EXPECT_EQ(y1, (Ints{7, 5, 6, 6}));
}

TEST(RefGather, OutOfRangeIsAnErrorNamingTheIndex) {
  const Floats table = {0, 1, 2, 3};
  const Dims64 ts = {2, 2}, is = {3};
  Floats y(6);
  for (const Ints& idx : {Ints{0, 2, 1}, Ints{-1, 0, 0}}) {
    const Status st = gather({table.data(), ts}, {idx.data(), is}, y.data());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.kind(), ErrorKind::kOutOfRange);
    const int32_t bad = idx[0] == -1 ? -1 : 2;
    EXPECT_NE(st.error().message().find(fmt::format("index {} at position", bad)),
              std::string::npos)
        << st.error().message();
    EXPECT_NE(st.error().message().find("[0, 2)"), std::string::npos) << st.error().message();
  }
}

}  // namespace
}  // namespace hs::kernels::ref

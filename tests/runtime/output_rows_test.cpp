// GraphExecutor::set_output_rows: the LM head computes only the logits rows a caller reads and
// the layout steps after it move only those (step_planner_rows.cpp). Those rows and every other
// output are the same bytes as computing all rows (float logits rows: within D roundings); the
// other rows of the bound buffer are not written; bad ranges are refused. Quantized (16a8w: u16 logits, converted at the end) and float
// graphs, split and not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/runtime/executor.h"
#include "executor_io.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {


constexpr auto kUnwritten = std::byte{0xA5};  // the bound buffers' bytes before a run

// Binds `in` and output buffers filled with kUnwritten, executes, returns the outputs.
Result<std::vector<Bytes>> execute_prefilled(GraphExecutor& exec, const std::vector<Bytes>& in) {
  for (size_t i = 0; i < in.size(); ++i) HS_TRY(exec.bind_input(static_cast<int>(i), in[i]));
  std::vector<Bytes> out;
  for (const IoDesc& d : exec.outputs()) out.emplace_back(static_cast<size_t>(d.bytes), kUnwritten);
  for (size_t i = 0; i < out.size(); ++i) HS_TRY(exec.bind_output(static_cast<int>(i), out[i]));
  HS_TRY(exec.execute());
  return out;
}

class OutputRows : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};  // scheme, split

TEST_P(OutputRows, LimitedLogitsRowsEqualTheFullRows) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported(std::get<0>(GetParam()), std::get<1>(GetParam()));
  ASSERT_NE(e.artifact, nullptr);
  kernels::ThreadPool pool(2);
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(e.artifact, "prefill", {.pool = &pool}));
  EXPECT_EQ(exec->summary().row_outputs, 1);  // the logits
  const int lo = exec->output_index("logits");
  ASSERT_GE(lo, 0);
  const int64_t t = exec->graph().ar_len;
  const int64_t v = exec->outputs()[static_cast<size_t>(lo)].shape.back();
  const auto bytes_per = static_cast<size_t>(exec->outputs()[static_cast<size_t>(lo)].bytes / (t * v));
  const int64_t d = e.artifact->program().metadata.dim;  // the LM head's K
  const auto in = causal_inputs(*exec, 3, 9, 400);
  HS_ASSERT_OK_AND_ASSIGN(auto full, execute_bytes(*exec, in));
  for (auto [first, count] : {std::pair<int64_t, int64_t>{t - 1, 1}, {0, 1}, {5, 7}, {0, 0}}) {
    HS_ASSERT_OK(exec->set_output_rows(lo, first, count));
    HS_ASSERT_OK_AND_ASSIGN(auto part, execute_prefilled(*exec, in));
    for (size_t o = 0; o < full.size(); ++o) {
      if (static_cast<int>(o) != lo) {
        EXPECT_TRUE(part[o] == full[o]) << exec->outputs()[o].name;
        continue;
      }
      const size_t row = static_cast<size_t>(v) * bytes_per;
      for (int64_t r = 0; r < t; ++r) {
        const auto at = static_cast<size_t>(r) * row;
        const bool wanted = r >= first && r < first + count;
        const Bytes got(part[o].begin() + static_cast<int64_t>(at), part[o].begin() + static_cast<int64_t>(at + row));
        const Bytes all(full[o].begin() + static_cast<int64_t>(at), full[o].begin() + static_cast<int64_t>(at + row));
        if (wanted && bytes_per == 4) {
          // Float logits: the row alone is the same dot products summed in another order (a
          // token-major call of `count` rows instead of the channel-major [D, T] one): each
          // within D roundings of the row's largest |value|; a wrong row is off by O(1).
          std::vector<float> a(static_cast<size_t>(v)), b(static_cast<size_t>(v));
          std::memcpy(a.data(), got.data(), got.size());
          std::memcpy(b.data(), all.data(), all.size());
          float largest = 0.f;
          for (float x : b) largest = std::max(largest, std::fabs(x));
          const float tol = static_cast<float>(d) * std::numeric_limits<float>::epsilon() * largest;
          int64_t off = 0;
          for (size_t i = 0; i < a.size(); ++i) off += !(std::fabs(a[i] - b[i]) <= tol);
          EXPECT_EQ(off, 0) << "row " << r << " of [" << first << ", " << first + count << ")";
        } else if (wanted) {  // quantized: the exact integer path, the same bytes
          EXPECT_TRUE(got == all) << "row " << r << " of [" << first << ", " << first + count << ")";
        } else {
          EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](std::byte b) { return b == kUnwritten; }))
              << "row " << r << " of [" << first << ", " << first + count << ") was written";
        }
      }
    }
  }
  HS_ASSERT_OK(exec->set_output_rows(lo, 0, -1));  // all again
  HS_ASSERT_OK_AND_ASSIGN(auto again, execute_bytes(*exec, in));
  EXPECT_TRUE(again == full);
  // Bad ranges and indices name the output and the values.
  auto refused = [](const Status& s, std::string_view what) {
    return !s.ok() && s.error().kind() == ErrorKind::kInvalidArgument &&
           s.error().message().find(what) != std::string::npos;
  };
  EXPECT_TRUE(refused(exec->set_output_rows(lo, t, 1), "outside the graph's 32 token rows"));
  EXPECT_TRUE(refused(exec->set_output_rows(lo, -1, 1), "output 'logits': rows [-1, 0)"));
  EXPECT_TRUE(refused(exec->set_output_rows(99, 0, 1), "output index 99 outside"));
}

INSTANTIATE_TEST_SUITE_P(Stories260K, OutputRows,
                         ::testing::Combine(::testing::Values("16a8w", "none"), ::testing::Bool()),
                         [](const auto& info) {
                           return (std::get<0>(info.param) == "none" ? std::string("float_")
                                                                     : std::get<0>(info.param) + "_") +
                                  (std::get<1>(info.param) ? "split" : "mha");
                         });

}  // namespace
}  // namespace hs::runtime::testing

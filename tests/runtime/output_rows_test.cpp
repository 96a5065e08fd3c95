// GraphExecutor::set_output_rows: the LM head computes only the logits rows a caller reads
// (step_planner_rows.cpp). Those rows and every other output are the same bytes as computing
// all rows; the other rows are zeros (the logits' zero point); bad ranges are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/runtime/executor.h"
#include "executor_io.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {


class OutputRows : public ::testing::TestWithParam<bool> {};  // split

TEST_P(OutputRows, LimitedLogitsRowsEqualTheFullRows) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported("16a8w", GetParam());
  ASSERT_NE(e.artifact, nullptr);
  kernels::ThreadPool pool(2);
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(e.artifact, "prefill", {.pool = &pool}));
  EXPECT_EQ(exec->summary().row_outputs, 1);  // the logits
  const int lo = exec->output_index("logits");
  ASSERT_GE(lo, 0);
  const int64_t t = exec->graph().ar_len;
  const int64_t v = exec->outputs()[static_cast<size_t>(lo)].shape.back();
  const auto bytes_per = static_cast<size_t>(exec->outputs()[static_cast<size_t>(lo)].bytes / (t * v));
  const auto in = causal_inputs(*exec, 3, 9, 400);
  HS_ASSERT_OK_AND_ASSIGN(auto full, execute_bytes(*exec, in));
  for (auto [first, count] : {std::pair<int64_t, int64_t>{t - 1, 1}, {0, 1}, {5, 7}, {0, 0}}) {
    HS_ASSERT_OK(exec->set_output_rows(lo, first, count));
    HS_ASSERT_OK_AND_ASSIGN(auto part, execute_bytes(*exec, in));
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
        if (wanted) {
          EXPECT_TRUE(got == all) << "row " << r << " of [" << first << ", " << first + count << ")";
        } else {
          // Zeros, quantized: one code repeated (u16: two bytes).
          bool same = true;
          for (size_t i = bytes_per; i < got.size(); ++i) same = same && got[i] == got[i % bytes_per];
          EXPECT_TRUE(same) << "row " << r;
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

INSTANTIATE_TEST_SUITE_P(Stories260K, OutputRows, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "split" : "mha"; });

}  // namespace
}  // namespace hs::runtime::testing

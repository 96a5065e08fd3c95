// Helpers shared by the test binaries.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "headsplit/support/result.h"

namespace hs::testing {

// Path of a file in the shared data folder (HEADSPLIT_SHARED_DIR).
std::string shared_file(const std::string& relative);
// True when the shared data folder exists. Tests that need it skip (with the reason) when
// the whole folder is absent, and fail when the folder exists but a file in it is missing.
bool shared_available();

// A fresh empty directory under the system temp dir, removed at process exit.
std::string temp_dir();

}  // namespace hs::testing

// Skips the current test when the shared data folder is absent.
#define HS_REQUIRE_SHARED()                                                                 \
  do {                                                                                      \
    if (!::hs::testing::shared_available()) {                                               \
      GTEST_SKIP() << "shared data folder not found (set HEADSPLIT_SHARED_DIR)";            \
    }                                                                                       \
  } while (0)

// EXPECT/ASSERT that a Result is ok, printing the error message otherwise.
#define HS_EXPECT_OK(expr)                                                                  \
  do {                                                                                      \
    const auto& hs_r_ = (expr);                                                             \
    EXPECT_TRUE(hs_r_.ok()) << (hs_r_.ok() ? std::string() : hs_r_.error().message());      \
  } while (0)
#define HS_ASSERT_OK(expr)                                                                  \
  do {                                                                                      \
    const auto& hs_r_ = (expr);                                                             \
    ASSERT_TRUE(hs_r_.ok()) << (hs_r_.ok() ? std::string() : hs_r_.error().message());      \
  } while (0)
// Unwraps a Result in a test, failing the test (fatally) on error.
#define HS_ASSERT_OK_AND_ASSIGN(lhs, expr)                                                  \
  HS_ASSERT_OK_AND_ASSIGN_IMPL_(HS_CONCAT_(hs_test_result_, __LINE__), lhs, expr)
#define HS_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)                                       \
  auto tmp = (expr);                                                                        \
  ASSERT_TRUE(tmp.ok()) << (tmp.ok() ? std::string() : tmp.error().message());              \
  lhs = std::move(tmp).value()

#include "headsplit/support/result.h"

#include <gtest/gtest.h>

#include <memory>

#include "testing/testing.h"

namespace hs {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return errorf(ErrorKind::kInvalidArgument, "value {} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  HS_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

Status check_both(int a, int b) {
  HS_TRY(parse_positive(a));
  HS_TRY_CTX(parse_positive(b), "second");
  return {};
}

TEST(Result, ValueAndError) {
  Result<int> ok = parse_positive(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  EXPECT_EQ(ok.kind(), ErrorKind::kOk);
  Result<int> bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "value -1 is not positive");
}

TEST(Result, Propagation) {
  EXPECT_EQ(*doubled(4), 8);
  EXPECT_EQ(doubled(0).error().message(), "value 0 is not positive");
  EXPECT_TRUE(check_both(1, 1).ok());
  Status s = check_both(1, -2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "second: value -2 is not positive");
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
}

TEST(Result, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(Result, KindNames) {
  EXPECT_EQ(error_kind_name(ErrorKind::kChecksum), "checksum mismatch");
  EXPECT_EQ(error_kind_name(ErrorKind::kCorrupt), "corrupt file");
}

}  // namespace
}  // namespace hs

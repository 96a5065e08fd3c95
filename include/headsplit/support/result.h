// Result<T> and Error: how every library in headsplit reports failure.
//
// Library code never throws. A fallible function returns Result<T>: either a value or an
// Error {kind, message}. Only the CLI turns an Error into an exit code. Messages are
// lowercase and carry the place and the values:
//   "model.hsa: tensor 'layers.3.wq' has 64 scales for 128 channels"
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace hs {

// Error kinds, grouped: caller mistakes, bad data, environment, and bugs.
enum class ErrorKind : int {
  kOk = 0,
  // The caller asked for something invalid.
  kInvalidArgument,  // bad option, out-of-range argument, prompt longer than the context
  kUnsupported,      // valid input the tool does not handle (architecture, op, dtype)
  kShape,            // shapes or dtypes that do not fit together
  kNotFound,         // a named file, tensor, value or pass does not exist
  // The data is bad.
  kParse,     // text that does not follow its grammar (graph text, JSON, config)
  kCorrupt,   // a binary file that is truncated or internally inconsistent
  kBadMagic,  // not the file type it claims to be
  kVersion,   // a format version this build does not read
  kChecksum,  // stored and computed checksums differ
  kAlignment, // data not aligned as the format requires
  kOutOfRange,  // an offset, index or size outside its container
  // The environment failed.
  kIo,  // open/read/write/rename/mmap failed
  // A bug in headsplit.
  kInternal,
};

std::string_view error_kind_name(ErrorKind kind);

class [[nodiscard]] Error {
 public:
  Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {
    assert(kind != ErrorKind::kOk && "an Error must not have kind kOk");
  }

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }

  // Returns this error with "<context>: " put in front of the message.
  Error with_context(std::string_view context) const& {
    return Error(kind_, fmt::format("{}: {}", context, message_));
  }
  Error with_context(std::string_view context) && {
    message_ = fmt::format("{}: {}", context, message_);
    return std::move(*this);
  }

 private:
  ErrorKind kind_;
  std::string message_;
};

// Builds an Error with an fmt-style message: errorf(ErrorKind::kShape, "{} != {}", a, b).
template <typename... Args>
Error errorf(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  return Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
  Result(U&& value) : state_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  ErrorKind kind() const { return ok() ? ErrorKind::kOk : std::get<1>(state_).kind(); }

  T& value() & {
    assert(ok() && "value() on an error Result");
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok() && "value() on an error Result");
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok() && "value() on an error Result");
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    assert(!ok() && "error() on an ok Result");
    return std::get<1>(state_);
  }
  Error&& error() && {
    assert(!ok() && "error() on an ok Result");
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  ErrorKind kind() const { return ok_ ? ErrorKind::kOk : error_.kind(); }
  const Error& error() const& {
    assert(!ok_ && "error() on an ok Result");
    return error_;
  }
  Error&& error() && {
    assert(!ok_ && "error() on an ok Result");
    return std::move(error_);
  }

 private:
  Error error_{ErrorKind::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return {}; }

}  // namespace hs

#define HS_CONCAT_INNER_(a, b) a##b
#define HS_CONCAT_(a, b) HS_CONCAT_INNER_(a, b)

// HS_TRY(expr): evaluate a Result-returning expression; on error return the error.
#define HS_TRY(expr)                                   \
  do {                                                 \
    auto&& hs_try_result_ = (expr);                    \
    if (!hs_try_result_.ok()) {                        \
      return std::move(hs_try_result_).error();        \
    }                                                  \
  } while (0)

// HS_TRY_CTX(expr, context): like HS_TRY, but prefixes the error message with context.
#define HS_TRY_CTX(expr, context)                                      \
  do {                                                                 \
    auto&& hs_try_result_ = (expr);                                    \
    if (!hs_try_result_.ok()) {                                        \
      return std::move(hs_try_result_).error().with_context(context);  \
    }                                                                  \
  } while (0)

// HS_ASSIGN_OR_RETURN(lhs, expr): `lhs = value of expr`, or return its error.
//   HS_ASSIGN_OR_RETURN(auto graph, build_llama(config));
#define HS_ASSIGN_OR_RETURN(lhs, expr) \
  HS_ASSIGN_OR_RETURN_IMPL_(HS_CONCAT_(hs_result_, __LINE__), lhs, expr)
#define HS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) {                                \
    return std::move(tmp).error();                \
  }                                               \
  lhs = std::move(tmp).value()

// HS_CHECK(cond, msg): a programmer error (broken invariant), not bad input.
#define HS_CHECK(cond, msg)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ::hs::detail::check_failed(__FILE__, __LINE__, #cond, msg);                           \
    }                                                                                       \
  } while (0)

namespace hs::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, std::string_view msg);
}  // namespace hs::detail

// Result<T> and Error: the error vocabulary of regfs.
//
// Every fallible operation returns a Result<T> (or Status, a Result without a value). An Error
// carries the errno a filesystem caller would report and a one-line message for a human, which
// includes the registry's own error text when there is one. No exception crosses a transport
// interface.
#pragma once

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace regfs {

struct Error {
  int errnum = EIO;
  std::string message;
  // The registry's own error codes (OCI distribution "errors[].code"), when it sent any.
  std::vector<std::string> registry_codes;

  bool HasRegistryCode(const std::string& code) const {
    return std::find(registry_codes.begin(), registry_codes.end(), code) != registry_codes.end();
  }
};

inline Error MakeError(int errnum, std::string message) {
  return Error{errnum, std::move(message), {}};
}

struct Unit {};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

using Status = Result<Unit>;
inline Status Ok() { return Unit{}; }

// Prefixes the message of an error with context ("copying blob sha256:…: ").
inline Error Annotate(Error e, const std::string& context) {
  e.message = context + ": " + e.message;
  return e;
}

}  // namespace regfs

#define REGFS_CONCAT_INNER(a, b) a##b
#define REGFS_CONCAT(a, b) REGFS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    auto regfs_status_ = (expr);                                      \
    if (!regfs_status_.ok()) return std::move(regfs_status_).error(); \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(REGFS_CONCAT(regfs_r_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)   \
  auto tmp = (expr);                            \
  if (!tmp.ok()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()

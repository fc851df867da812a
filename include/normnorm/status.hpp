#pragma once
// Errors as values. Every check in normnorm produces a Status; the throwing
// entry points (forward, backward, the modules) turn a failed one into
// std::invalid_argument or std::domain_error, and try_forward / try_backward
// return it as is, for code built without exceptions (-fno-exceptions).

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "normnorm/config.hpp"

namespace normnorm {

enum class ErrorKind {
  none,              // success
  invalid_argument,  // shapes, sizes, buffers, options: std::invalid_argument
  domain_error,      // data the math cannot take (non-finite training input, overflow): std::domain_error
  out_of_memory,     // a valid call whose working memory cannot be allocated: std::bad_alloc
};

class Status {
 public:
  Status() = default;  // success
  static Status invalid_argument(std::string message) { return Status(ErrorKind::invalid_argument, std::move(message)); }
  static Status domain_error(std::string message) { return Status(ErrorKind::domain_error, std::move(message)); }
  static Status out_of_memory(std::string message) { return Status(ErrorKind::out_of_memory, std::move(message)); }

  bool ok() const { return kind_ == ErrorKind::none; }
  explicit operator bool() const { return ok(); }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }  // empty on success

 private:
  Status(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  ErrorKind kind_ = ErrorKind::none;
  std::string message_;
};

namespace detail {

// Throws the exception a failed Status stands for. Without exceptions there is
// nothing to throw: the message goes to stderr and the program aborts (the
// try_* entry points never get here).
[[noreturn]] inline void raise(const Status& status) {
#if NORMNORM_EXCEPTIONS
  if (status.kind() == ErrorKind::domain_error) throw std::domain_error(status.message());
  if (status.kind() == ErrorKind::out_of_memory) throw std::bad_alloc();
  throw std::invalid_argument(status.message());
#else
  std::fprintf(stderr, "%s\n", status.message().c_str());
  std::abort();
#endif
}

inline void raise_if_error(const Status& status) {
  if (!status.ok()) raise(status);
}

}  // namespace detail
}  // namespace normnorm

// Returns a failed Status from the enclosing function.
// (Variadic so that template arguments' commas need no extra parentheses.)
#define NORMNORM_RETURN_IF_ERROR(...)                          \
  do {                                                         \
    ::normnorm::Status normnorm_status_ = (__VA_ARGS__);       \
    if (!normnorm_status_.ok()) return normnorm_status_;       \
  } while (false)

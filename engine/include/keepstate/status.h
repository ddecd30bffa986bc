// Status and Result<T>: how every fallible keepstate function reports errors.
//
// Library code is built with -fno-exceptions, so errors are values (LevelDB's
// Status, Abseil's StatusOr). An ok Status carries no message and costs no
// allocation; an error carries a code and a human-readable message that says
// what was wrong.
//
// KEEPSTATE_STATUS_CODES is the single list of error codes. The C ABI returns
// these integers, and js-bindings maps them to typed errors; the TypeScript
// side is generated from (or cross-checked against) this list, so the numbers
// are part of the format and must never be reused or renumbered.
//
// This header is shared by every module (target keepstate::status) and has no
// dependencies beyond the standard library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace keepstate {

// X(Name, number, "stable-code-string", meaning)
#define KEEPSTATE_STATUS_CODES(X)                                             \
  X(kOk, 0, "ok", "success")                                                  \
  X(kNotFound, 1, "not-found", "the key, token or record does not exist")     \
  X(kInvalidArgument, 2, "invalid-argument",                                  \
    "the caller passed a bad key, value, option or handle")                   \
  X(kCorruption, 3, "corruption",                                             \
    "stored bytes failed verification (checksum, size, structure)")           \
  X(kConflict, 4, "conflict",                                                 \
    "another writer committed first (optimistic concurrency)")                \
  X(kOutOfSpace, 5, "quota", "memory or storage quota is exhausted")          \
  X(kClosed, 6, "closed", "the store, channel or handle is closed")           \
  X(kUnsupported, 7, "unsupported",                                           \
    "the data uses a newer format or feature than this build knows")          \
  X(kBusy, 8, "busy",                                                         \
    "the resource is in use (e.g. another write transaction is open)")        \
  X(kInternal, 9, "internal", "an internal invariant failed (a bug)")          \
  X(kDataLoss, 10, "data-loss",                                               \
    "stored data known to have existed is gone (e.g. the browser deleted it)")

enum class Code : std::uint8_t {
#define KEEPSTATE_X(name, num, str, meaning) name = num,
  KEEPSTATE_STATUS_CODES(KEEPSTATE_X)
#undef KEEPSTATE_X
};

// The stable string for a code ("invalid-argument", ...), as seen from JS.
constexpr std::string_view CodeName(Code code) {
  switch (code) {
#define KEEPSTATE_X(name, num, str, meaning) \
  case Code::name:                           \
    return str;
    KEEPSTATE_STATUS_CODES(KEEPSTATE_X)
#undef KEEPSTATE_X
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {Code::kInvalidArgument, std::move(m)};
  }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status OutOfSpace(std::string m) { return {Code::kOutOfSpace, std::move(m)}; }
  static Status Closed(std::string m) { return {Code::kClosed, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }

  // "corruption: manifest 7 page 12: hash mismatch"
  std::string ToString() const {
    if (ok()) return "ok";
    std::string s(CodeName(code_));
    s += ": ";
    s += message_;
    return s;
  }

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or an error. REQUIRES for value(): ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status::Internal("Result built from ok Status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace keepstate

#define KEEPSTATE_CONCAT_INNER_(a, b) a##b
#define KEEPSTATE_CONCAT_(a, b) KEEPSTATE_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is an error.
#define KEEPSTATE_RETURN_IF_ERROR(expr)                  \
  do {                                                   \
    ::keepstate::Status keepstate_status_ = (expr);      \
    if (!keepstate_status_.ok()) return keepstate_status_; \
  } while (0)

// `lhs = value of expr`, or returns its Status if it is an error.
#define KEEPSTATE_ASSIGN_OR_RETURN(lhs, expr)                                  \
  auto KEEPSTATE_CONCAT_(keepstate_result_, __LINE__) = (expr);               \
  if (!KEEPSTATE_CONCAT_(keepstate_result_, __LINE__).ok())                   \
    return std::move(KEEPSTATE_CONCAT_(keepstate_result_, __LINE__)).status(); \
  lhs = std::move(KEEPSTATE_CONCAT_(keepstate_result_, __LINE__)).value()

// Status: the result of an operation that can fail, modeled on leveldb::Status.
// A Status is cheap to copy when ok. Thread-compatible (no internal locking).
#pragma once

#include <string>
#include <utility>

namespace giftcard {

class [[nodiscard]] Status {
 public:
  enum class Code { ok, not_found, corruption, invalid_argument, io_error, conflict, busy };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::not_found, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::corruption, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::invalid_argument, std::move(msg));
  }
  static Status IOError(std::string msg) { return Status(Code::io_error, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::conflict, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::busy, std::move(msg)); }

  bool ok() const { return code_ == Code::ok; }
  bool IsNotFound() const { return code_ == Code::not_found; }
  bool IsCorruption() const { return code_ == Code::corruption; }
  bool IsInvalidArgument() const { return code_ == Code::invalid_argument; }
  bool IsIOError() const { return code_ == Code::io_error; }
  bool IsConflict() const { return code_ == Code::conflict; }
  bool IsBusy() const { return code_ == Code::busy; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;

  // Swallowing an error takes a visible call (rocksdb's PermitUncheckedError).
  void PermitUncheckedError() const {}

 private:
  Status(Code c, std::string msg) : code_(c), msg_(std::move(msg)) {}
  Code code_ = Code::ok;
  std::string msg_;
};

}  // namespace giftcard

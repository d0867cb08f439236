// Helpers shared by the fuzz targets (fuzz/*_fuzzer.cc): a check that aborts
// with a readable message (libFuzzer and the replay driver both report an
// abort as a crash, with the input that caused it), and a byte reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace giftcard::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* cond, const std::string& why) {
  std::fprintf(stderr, "\nFUZZ_CHECK failed at %s:%d: %s\n", file, line, cond);
  if (!why.empty()) std::fprintf(stderr, "  %s\n", why.c_str());
  std::fflush(stderr);
  std::abort();
}

// Printable form of bytes for failure messages (at most `max` bytes shown).
inline std::string printable(std::string_view s, size_t max = 512) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// Consumes an input front to back; reads past the end yield zeros / empty.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : in_(reinterpret_cast<const char*>(data), size) {}
  explicit Bytes(std::string_view in) : in_(in) {}
  bool empty() const { return in_.empty(); }
  size_t size() const { return in_.size(); }
  uint8_t u8() {
    if (in_.empty()) return 0;
    auto v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return v;
  }
  std::string_view take(size_t n) {
    n = n < in_.size() ? n : in_.size();
    std::string_view out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }
  std::string_view rest() { return take(in_.size()); }

 private:
  std::string_view in_;
};

}  // namespace giftcard::fuzz

#define FUZZ_CHECK(cond, why)                                               \
  do {                                                                      \
    if (!(cond)) ::giftcard::fuzz::fail(__FILE__, __LINE__, #cond, (why)); \
  } while (0)



#include "events/validate.h"

namespace giftcard {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

template <class Pred>
bool all_of(std::string_view s, Pred p) {
  for (char c : s)
    if (!p(c)) return false;
  return true;
}

}  // namespace

std::string check_card_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return "card id must be 1..64 characters";
  if (!all_of(id, [](char c) { return is_alnum(c) || c == '_' || c == '-'; }))
    return "card id may contain only A-Z a-z 0-9 _ -";
  return {};
}

std::string check_card_name(std::string_view name) {
  if (!is_valid_utf8(name)) return "card name must be valid UTF-8";
  size_t n = utf8_length(name);
  if (n < 1 || n > 200) return "card name must be 1..200 characters";
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    bool c1 = c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7f || c1) return "card name must not contain control characters";
  }
  return {};
}

std::string check_code(std::string_view code) {
  if (code.size() < 4 || code.size() > 64) return "activation code must be 4..64 characters";
  if (!all_of(code, [](char c) { return is_alnum(c) || c == '-'; }))
    return "activation code may contain only A-Z a-z 0-9 -";
  return {};
}

std::string check_user_id(std::string_view user) {
  if (user.empty() || user.size() > 128) return "user id must be 1..128 characters";
  if (!all_of(user,
              [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '@' || c == '-'; }))
    return "user id may contain only A-Z a-z 0-9 _ . @ -";
  if (user == "." || user == "..") return "user id must not be '.' or '..'";
  return {};
}

std::string check_amount(int64_t amount, std::string_view what) {
  if (amount <= 0) return std::string(what) + " must be a positive integer (minor units)";
  return {};
}

std::string check_idempotency_key(std::string_view key) {
  if (key.empty()) return "idempotency key is required";
  if (key.size() > kMaxIdempotencyKey) return "idempotency key must be 1..128 characters";
  if (!all_of(key, [](char c) { return c > 0x20 && c < 0x7f; }))
    return "idempotency key must be printable ASCII without spaces";
  return {};
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace giftcard

// Input validation for ids, codes and amounts (docs/CONTRACT.md, "Domain"). Pure functions shared
// by every front end (CAF, HTTP, CLI), so that all of them reject the same
// inputs with the same error code. Each returns an empty string when the input
// is valid, else a human-readable reason (never containing the secret value).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace giftcard {

constexpr size_t kMaxCodesPerBatch = 100000;
constexpr size_t kMaxIdempotencyKey = 128;

std::string check_card_id(std::string_view id);                   // [A-Za-z0-9_-]{1,64}
std::string check_card_name(std::string_view name);               // 1..200 UTF-8 chars, valid UTF-8
std::string check_code(std::string_view code);                    // [A-Za-z0-9-]{4,64}
std::string check_user_id(std::string_view user);                 // [A-Za-z0-9_.@-]{1,128}
std::string check_amount(int64_t amount, std::string_view what);  // > 0
std::string check_idempotency_key(std::string_view key);          // 1..128 printable ASCII

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s);
// Number of code points in valid UTF-8.
size_t utf8_length(std::string_view s);

}  // namespace giftcard

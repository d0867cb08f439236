// "HOST:PORT" parsing for --http/--caf/--node ("[::1]:8080" for IPv6).
#pragma once

#include <cstdint>
#include <string>

namespace giftcard {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// False (with a reason in *error) for a malformed address or a port > 65535.
bool parse_host_port(const std::string& text, HostPort* out, std::string* error);
// 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

}  // namespace giftcard

#include "store/keys.h"

namespace giftcard::keys {

std::string event_key(int64_t position) {
  std::string k(1, kEvent);
  put_be64(k, static_cast<uint64_t>(position));
  return k;
}

bool parse_event_key(std::string_view key, int64_t* position) {
  if (key.size() != kEventKeyBytes || key[0] != kEvent) return false;
  *position = static_cast<int64_t>(get_be64(key.substr(1)));
  return true;
}

std::string stream_prefix(std::string_view stream) {
  std::string k(1, kStream);
  k.append(stream);
  k.push_back('\0');
  return k;
}

std::string stream_key(std::string_view stream, int64_t version) {
  std::string k = stream_prefix(stream);
  put_be64(k, static_cast<uint64_t>(version));
  return k;
}

bool parse_stream_key(std::string_view key, std::string_view stream, int64_t* version) {
  // 's' stream '\0' version:u64
  if (key.size() != 1 + stream.size() + 1 + kFixed64Bytes || key[0] != kStream ||
      key.substr(1, stream.size()) != stream || key[stream.size() + 1] != '\0')
    return false;
  *version = static_cast<int64_t>(get_be64(key.substr(stream.size() + 2)));
  return true;
}

std::string claim_key(std::string_view claim) {
  std::string k(1, kClaim);
  k.append(claim);
  return k;
}

std::string snapshot_key(std::string_view stream) {
  std::string k(1, kSnapshot);
  k.append(stream);
  return k;
}

std::string meta_key(std::string_view name) {
  std::string k(1, kMeta);
  k.append(name);
  return k;
}

std::string projection_key(std::string_view key) {
  std::string k(1, kProjection);
  k.append(key);
  return k;
}

std::string prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace giftcard::keys

// Big-endian integers as the store and the projections write them into keys
// and values: store/keys.h's encoder, returned as a string for building
// expected keys and values in tests.
#pragma once

#include <cstdint>
#include <string>

#include "store/keys.h"

namespace giftcard::test {

inline std::string be64(uint64_t v) {
  std::string s;
  keys::put_be64(s, v);
  return s;
}

}  // namespace giftcard::test

// Event payload codec: cereal binary with class versions (events.h), read
// through BoundedInputArchive so that no length is trusted. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "events/events.h"
#include "events/status.h"

namespace giftcard {

// Appends nothing else: returns the payload bytes of `e` (its type is kept
// separately, in the envelope).
std::string encode_payload(const Event& e);

// Decodes a payload of type `type`. Returns Corruption for an unknown type,
// truncated or trailing bytes, or a lying length; never throws.
Status decode_payload(EventType type, std::string_view bytes, Event* out);

}  // namespace giftcard

#include "events/codec.h"

#include "events/bounded_archive.h"

namespace giftcard {
namespace {

template <class T>
Status decode_as(std::string_view bytes, Event* out) {
  T value;
  try {
    BoundedInputArchive ar(bytes);
    ar(value);
    if (ar.remaining() != 0) return Status::Corruption("trailing bytes after payload");
  } catch (const std::exception& ex) {  // cereal::Exception, std::bad_alloc, length_error
    return Status::Corruption(std::string("undecodable payload: ") + ex.what());
  }
  *out = std::move(value);
  return Status::OK();
}

}  // namespace

std::string encode_payload(const Event& e) {
  std::string out;
  StringOutputArchive ar(out);
  std::visit([&](const auto& v) { ar(v); }, e);
  return out;
}

Status decode_payload(EventType type, std::string_view bytes, Event* out) {
  switch (type) {
    case EventType::CardCreated: return decode_as<CardCreated>(bytes, out);
    case EventType::CodesAdded: return decode_as<CodesAdded>(bytes, out);
    case EventType::CodeAssigned: return decode_as<CodeAssigned>(bytes, out);
    case EventType::CodeRevoked: return decode_as<CodeRevoked>(bytes, out);
    case EventType::CodesExpired: return decode_as<CodesExpired>(bytes, out);
    case EventType::WalletCredited: return decode_as<WalletCredited>(bytes, out);
    case EventType::WalletDebited: return decode_as<WalletDebited>(bytes, out);
  }
  return Status::Corruption("unknown event type " + std::to_string(static_cast<int>(type)));
}

}  // namespace giftcard

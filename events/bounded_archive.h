// Cereal archives for event payloads.
//
// StringOutputArchive writes cereal's binary format straight into a string.
// BoundedInputArchive reads it back from a byte span and never trusts a length:
// a container or string size larger than the bytes left is rejected *before*
// cereal resizes anything, so corrupt or hostile input costs at most an
// allocation proportional to its own size. Running past the end throws
// cereal::Exception, which the codec turns into Status::Corruption.
//
// Same wire format as cereal::BinaryOutputArchive (host byte order, little
// endian on every platform we build for). Not thread-safe; one per call.
#pragma once

#include <cereal/cereal.hpp>
#include <cstring>
#include <string>
#include <string_view>

namespace giftcard {

class StringOutputArchive
    : public cereal::OutputArchive<StringOutputArchive, cereal::AllowEmptyClassElision> {
 public:
  // REQUIRES: `out` outlives the archive.
  explicit StringOutputArchive(std::string& out)
      : cereal::OutputArchive<StringOutputArchive, cereal::AllowEmptyClassElision>(this),
        out_(out) {}
  void saveBinary(const void* data, std::size_t size) {
    out_.append(static_cast<const char*>(data), size);
  }

 private:
  std::string& out_;
};

class BoundedInputArchive
    : public cereal::InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision> {
 public:
  // REQUIRES: the bytes behind `in` outlive the archive.
  explicit BoundedInputArchive(std::string_view in)
      : cereal::InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision>(this), in_(in) {}
  void loadBinary(void* data, std::size_t size) {
    if (size > in_.size() - pos_) throw cereal::Exception("payload truncated");
    std::memcpy(data, in_.data() + pos_, size);
    pos_ += size;
  }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& ar,
                                                                           const T& t) {
  ar.saveBinary(std::addressof(t), sizeof(t));
}

template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar,
                                                                           T& t) {
  ar.loadBinary(std::addressof(t), sizeof(t));
}

template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& ar, const cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}

template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}
// The guard: every element of a string or container takes at least one byte,
// so a claimed size beyond the remaining bytes is a lie.
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  if (static_cast<std::size_t>(t.size) > ar.remaining())
    throw cereal::Exception("container length exceeds payload");
}

template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(StringOutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace giftcard

CEREAL_REGISTER_ARCHIVE(giftcard::StringOutputArchive)
CEREAL_REGISTER_ARCHIVE(giftcard::BoundedInputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(giftcard::BoundedInputArchive, giftcard::StringOutputArchive)

// Fuzz target `caf_inspect`: CAF 0.17.6's binary_deserializer over the message
// types a remote node sends or receives (actors/messages.h, their inspect()),
// the vectors the shop replies with, caf::error with our "giftcard" category
// (actors/errors.h) and a whole caf::message as the BASP layer decodes it,
// with every type registered by register_message_types().
//
// Input: one selector byte (which type), then the serialized bytes.
//
// Oracles: deserializing never crashes or over-allocates; whatever
// deserializes serializes again and deserializes from that to the same bytes
// (the first decode may read a non-canonical length, so the input itself is
// not compared); the client's views of a reply (api/json_views.h) and the
// error helpers work on anything that deserialized.
#include <caf/all.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/json_views.h"
#include "fuzz/fuzz_util.h"

using namespace giftcard;
using giftcard::fuzz::printable;
using json = nlohmann::json;

namespace {

// One actor system for message decoding (a message names its element types,
// which are looked up in the system's registry), created once per process.
caf::actor_system_config* g_cfg = nullptr;
caf::actor_system* g_sys = nullptr;

caf::actor_system& system() {
  if (!g_sys) {
    g_cfg = new caf::actor_system_config;
    register_message_types(*g_cfg);
    g_cfg->set("logger.console", caf::atom("none"));
    g_sys = new caf::actor_system(*g_cfg);
  }
  return *g_sys;
}

std::string bytes_of(const std::vector<char>& v) { return std::string(v.data(), v.size()); }

// Views the CLI prints for a reply; dumped with the API's error handler.
void view(const json& j) {
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  FUZZ_CHECK(json::accept(text), "a JSON view renders invalid JSON: " + printable(text));
}
template <class T>
void views(const T& x) {
  if constexpr (std::is_same_v<T, Purchase> || std::is_same_v<T, CardInfo> ||
                std::is_same_v<T, CreditReply> || std::is_same_v<T, WalletView> ||
                std::is_same_v<T, AddCodesReply>) {
    view(to_json(x));
  } else if constexpr (std::is_same_v<T, std::vector<CardInfo>> ||
                       std::is_same_v<T, std::vector<Purchase>>) {
    json arr = json::array();
    for (const auto& e : x) arr.push_back(to_json(e));
    view(arr);
  } else if constexpr (std::is_same_v<T, caf::error>) {
    Errc code = errc_of(x);
    FUZZ_CHECK(!x || code != Errc::ok, "a non-empty error maps to Errc::ok");
    int status = http_status(code);
    FUZZ_CHECK(status >= 200 && status <= 599, "http_status out of range");
    // Regressions (fuzz/caf_inspect_regressions/caf_inspect-error-*): detail_of()
    // and codes_of() once read category() and context() of an empty error, and
    // element 0 of an empty context.
    (void)detail_of(x);
    (void)codes_of(x);
    if (x && x.category() == kErrorCategory) (void)render_error(x.code(), x.category(), x.context());
    view(error_json(x));
    (void)system().render(x);
  }
}

// CAF 0.17.6's pack754() (caf/detail/ieee_754.hpp) never returns for an
// infinite float or double: it halves the value until it is below 2. Decoding
// one is fine, so a peer can send it, but serializing it again hangs the
// thread. giftcard's message types carry no floating-point field and a node
// never re-sends what a peer sent (unexpected messages are answered with a
// bare sec::unexpected_message), so only a re-serialization like this
// harness's can reach it; the harness skips it for such values and checks the
// rest. Found by `make soak` (fuzz/caf_inspect_regressions/timeout-bea4f1f1...).
bool has_infinity(const caf::message& m, int depth = 0);
bool has_infinity(const caf::error& e, int depth = 0) {
  return e && depth < 16 && has_infinity(e.context(), depth + 1);
}
bool has_infinity(const caf::message& m, int depth) {
  if (depth >= 16) return false;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m.match_element<double>(i) && std::isinf(m.get_as<double>(i))) return true;
    if (m.match_element<float>(i) && std::isinf(m.get_as<float>(i))) return true;
    if (m.match_element<caf::message>(i) && has_infinity(m.get_as<caf::message>(i), depth + 1))
      return true;
    if (m.match_element<caf::error>(i) && has_infinity(m.get_as<caf::error>(i), depth + 1))
      return true;
  }
  return false;
}

// Deserializes `in` as T with `ctx`; on success checks the round trip.
template <class T, class Ctx>
void roundtrip(Ctx&& ctx, std::string_view in) {
  T x{};
  {
    caf::binary_deserializer src{ctx, in.data(), in.size()};
    if (auto err = src(x)) return;
  }
  if constexpr (std::is_same_v<T, caf::message> || std::is_same_v<T, caf::error>) {
    if (has_infinity(x)) {
      (void)caf::deep_to_string(x);
      views(x);
      return;
    }
  }
  std::vector<char> first;
  {
    caf::binary_serializer sink{ctx, first};
    auto err = sink(x);
    FUZZ_CHECK(!err, "a deserialized value does not serialize: " + caf::to_string(err));
  }
  T y{};
  {
    caf::binary_deserializer src{ctx, first.data(), first.size()};
    auto err = src(y);
    FUZZ_CHECK(!err, "re-serialized bytes do not deserialize: " + caf::to_string(err) + "\n" +
                         printable(bytes_of(first)));
    FUZZ_CHECK(src.remaining() == 0, "re-serialized bytes are not consumed entirely");
  }
  std::vector<char> second;
  {
    caf::binary_serializer sink{ctx, second};
    FUZZ_CHECK(!sink(y), "the second value does not serialize");
  }
  FUZZ_CHECK(first == second, "serialize(deserialize(serialize(x))) != serialize(x): " +
                                  printable(bytes_of(first)) + "\n" + printable(bytes_of(second)));
  (void)caf::deep_to_string(x);
  views(x);
}

}  // namespace

// Called by the replay driver before it returns (fuzz/replay_main.cc).
extern "C" void GiftcardFuzzShutdown() {
  delete g_sys;
  g_sys = nullptr;
  delete g_cfg;
  g_cfg = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  system();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  caf::execution_unit* none = nullptr;
  switch (data[0] % 14) {
    case 0: roundtrip<CodeSpec>(none, in); break;
    case 1: roundtrip<CardSpec>(none, in); break;
    case 2: roundtrip<CardInfo>(none, in); break;
    case 3: roundtrip<AddCodesReply>(none, in); break;
    case 4: roundtrip<CreditReply>(none, in); break;
    case 5: roundtrip<Purchase>(none, in); break;
    case 6: roundtrip<WalletView>(none, in); break;
    case 7: roundtrip<ShopStatus>(none, in); break;
    case 8: roundtrip<RebuildInfo>(none, in); break;
    case 9: roundtrip<std::vector<CodeSpec>>(none, in); break;
    case 10: roundtrip<std::vector<CardInfo>>(none, in); break;
    case 11: roundtrip<std::vector<Purchase>>(none, in); break;
    case 12: roundtrip<caf::error>(system(), in); break;
    case 13: roundtrip<caf::message>(system(), in); break;
  }
  return 0;
}

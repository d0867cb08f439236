// Writes the seed corpora of the fuzz targets from the real encoders:
// event records and payloads (events/envelope.h, events/codec.h), snapshots
// (events/snapshot.h), RocksDB keys (store/keys.h), CAF-serialized messages
// (actors/messages.h), HTTP requests serialized by Boost.Beast, and JSON
// command bodies serialized by nlohmann::json.
//
//   cmake --build build --target fuzz_make_seeds
//   build/fuzz/fuzz_make_seeds fuzz        # (re)writes fuzz/<t>_seed_corpus/seed-*
//
// Output is deterministic: rerunning it rewrites the same files. Inputs that
// libFuzzer merged into a corpus (files named by their SHA-1) are left alone.
#include <caf/all.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/http_server.h"
#include "events/codec.h"
#include "events/envelope.h"
#include "events/gift_card.h"
#include "events/snapshot.h"
#include "events/wallet.h"
#include "fuzz/api_world.h"
#include "store/keys.h"

using namespace giftcard;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path g_root;
int g_count = 0;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::path dir = g_root / (target + "_seed_corpus");
  fs::create_directories(dir);
  std::ofstream out(dir / ("seed-" + name), std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::cerr << "cannot write " << (dir / name) << "\n";
    std::exit(1);
  }
  ++g_count;
}

std::string with_mode(uint8_t mode, const std::string& bytes) {
  return std::string(1, static_cast<char>(mode)) + bytes;
}

// ------------------------------------------------------------------- codec

std::vector<Event> sample_events() {
  return {
      CardCreated{"steam-50", "Steam Wallet 50 EUR", 5000, 5000},
      CodesAdded{"steam-50", {{"STM-AAAA-0001", 0}, {"STM-AAAA-0002", 1893456000000000}}},
      CodeAssigned{"steam-50", "STM-AAAA-0001", "p_0123456789abcdef_1", "alice", 5000, "key-1"},
      CodeRevoked{"steam-50", "STM-AAAA-0002"},
      CodesExpired{"steam-50", {"STM-AAAA-0003", "STM-AAAA-0004"}},
      WalletCredited{"alice", 10000, 10000, "credit-1"},
      WalletDebited{"alice", 5000, 5000, "p_0123456789abcdef_1", "steam-50"},
  };
}

std::string stream_of(const Event& e) {
  return std::visit(
      [](const auto& x) -> std::string {
        if constexpr (requires { x.card_id; }) return card_stream(x.card_id);
        else return wallet_stream(x.user_id);
      },
      e);
}

void codec_seeds() {
  Hash prev{};
  int64_t position = 0;
  std::vector<std::string> records;
  for (const Event& ev : sample_events()) {
    StoredEvent e;
    e.position = ++position;
    e.stream = stream_of(ev);
    e.version = position;
    e.type = type_of(ev);
    e.recorded_at = 1767225600000000 + position * 1000;  // 2026-01-01T00:00:00Z + ms
    e.payload = encode_payload(ev);
    e.prev_hash = prev;
    e.hash = compute_hash(e);
    prev = e.hash;
    std::string name(type_name(e.type));
    std::string rec = encode_record(e);
    records.push_back(rec);
    write("codec", "record-" + name, with_mode(0, rec));
    write("codec", "payload-" + name, with_mode(2, std::string(1, static_cast<char>(e.type)) + e.payload));
  }
  // Without the CRC (mode 1: the harness appends it).
  write("codec", "nocrc-CardCreated", with_mode(1, records[0].substr(0, records[0].size() - 4)));
  write("codec", "nocrc-CodesAdded", with_mode(1, records[1].substr(0, records[1].size() - 4)));
  // A payload under an unknown type, and an empty one.
  write("codec", "payload-unknown-type", with_mode(2, std::string(1, '\x09') + encode_payload(sample_events()[0])));
  write("codec", "payload-empty-CodeRevoked", with_mode(2, std::string(1, '\x04')));

  CardState card;
  for (const Event& ev : sample_events())
    if (auto ce = to_card_event(ev)) card = evolve(std::move(card), *ce);
  write("codec", "snapshot-card", with_mode(3, encode_snapshot(card)));
  write("codec", "snapshot-card-empty", with_mode(3, encode_snapshot(CardState{})));
  WalletState wallet;
  for (const Event& ev : sample_events())
    if (auto we = to_wallet_event(ev)) wallet = evolve(std::move(wallet), *we);
  write("codec", "snapshot-wallet", with_mode(4, encode_snapshot(wallet)));
}

// ------------------------------------------------------------------- keys

void keys_seeds() {
  auto seed = [](const std::string& name, const std::string& stream, const std::string& key) {
    write("keys", name, std::string(1, static_cast<char>(stream.size())) + stream + key);
  };
  seed("event-key", "", keys::event_key(42));
  seed("event-key-max", "", keys::event_key(INT64_MAX));
  seed("stream-key", "card-steam-50", keys::stream_key("card-steam-50", 3));
  seed("stream-key-other-stream", "card-steam", keys::stream_key("card-steam-50", 3));
  seed("stream-key-wallet", "wallet-alice", keys::stream_key("wallet-alice", 1));
  seed("stream-prefix", "wallet-alice", keys::stream_prefix("wallet-alice"));
  seed("claim-key", "code/STM-AAAA-0001", keys::claim_key("code/STM-AAAA-0001"));
  seed("snapshot-key", "card-steam-50", keys::snapshot_key("card-steam-50"));
  seed("meta-key", "format", keys::meta_key("format"));
  seed("projection-key", "g1/w/alice", keys::projection_key("g1/w/alice"));
  seed("prefix-ff", "", "p\xff\xff");
  seed("empty", "", "");
}

// ------------------------------------------------------------------- caf_inspect

template <class T>
void caf_seed(caf::actor_system& sys, uint8_t selector, const std::string& name, T value) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (auto err = sink(value)) {
    std::cerr << "cannot serialize " << name << ": " << caf::to_string(err) << "\n";
    std::exit(1);
  }
  write("caf_inspect", name, std::string(1, static_cast<char>(selector)) + std::string(buf.begin(), buf.end()));
}

void caf_seeds() {
  caf::actor_system_config cfg;
  register_message_types(cfg);
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system sys{cfg};
  CardInfo info{"steam-50", "Steam Wallet 50 EUR", 5000, 5000, 498, 2, 0, 0, 17};
  Purchase p{"p_0123456789abcdef_1", "steam-50", "alice", "STM-AAAA-0001", 5000, 1767225600000000, 9, false};
  caf_seed(sys, 0, "CodeSpec", CodeSpec{"STM-AAAA-0001", 1893456000000000});
  caf_seed(sys, 1, "CardSpec", CardSpec{"steam-50", "Steam Wallet 50 EUR", 5000, 5000});
  caf_seed(sys, 2, "CardInfo", info);
  caf_seed(sys, 3, "AddCodesReply", AddCodesReply{500, 2});
  caf_seed(sys, 4, "CreditReply", CreditReply{"alice", 10000, 6, true});
  caf_seed(sys, 5, "Purchase", p);
  caf_seed(sys, 6, "WalletView", WalletView{"alice", 5000, 9});
  caf_seed(sys, 7, "ShopStatus", ShopStatus{17, 16, 1});
  caf_seed(sys, 8, "RebuildInfo", RebuildInfo{17, 17, 2, 3});
  caf_seed(sys, 9, "vector-CodeSpec", std::vector<CodeSpec>{{"AAAA-0001", 0}, {"AAAA-0002", 5}});
  caf_seed(sys, 10, "vector-CardInfo", std::vector<CardInfo>{info, info});
  caf_seed(sys, 11, "vector-Purchase", std::vector<Purchase>{p});
  caf_seed(sys, 12, "error-card_not_found", make_error(Errc::card_not_found, "no card steam-50"));
  caf_seed(sys, 12, "error-duplicate_codes",
           make_error(Errc::duplicate_codes, "2 codes exist", {"AAAA-0001", "AAAA-0002"}));
  caf_seed(sys, 12, "error-sec", caf::make_error(caf::sec::request_timeout));
  caf_seed(sys, 13, "message-create",
           caf::make_message(create_atom::value, CardSpec{"steam-50", "Steam", 5000, 5000}));
  caf_seed(sys, 13, "message-add-codes",
           caf::make_message(add_codes_atom::value, std::string("steam-50"),
                             std::vector<CodeSpec>{{"AAAA-0001", 0}}));
  caf_seed(sys, 13, "message-purchase",
           caf::make_message(purchase_atom::value, std::string("steam-50"), std::string("alice"),
                             std::string("key-1")));
  caf_seed(sys, 13, "message-credit",
           caf::make_message(credit_atom::value, std::string("alice"), int64_t{500}, std::string("k")));
  caf_seed(sys, 13, "message-history",
           caf::make_message(history_atom::value, std::string("alice"), int64_t{0},
                             kDefaultPageLimit, int64_t{0}));
  caf_seed(sys, 13, "message-reply-purchase", caf::make_message(p));
  caf_seed(sys, 13, "message-reply-error", caf::make_message(make_error(Errc::out_of_stock, "sold out")));
}

// ------------------------------------------------------------------- http and json

std::string wire(HttpRequest req) {
  req.prepare_payload();
  std::ostringstream os;
  os << req;
  return os.str();
}

HttpRequest request(http::verb m, const std::string& target, const std::string& token = fuzz::kAdminToken) {
  HttpRequest req{m, target, 11};
  req.set(http::field::host, "localhost:8080");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  return req;
}

HttpRequest post(const std::string& target, const json& body, const std::string& token = fuzz::kAdminToken,
                 const std::string& key = {}) {
  HttpRequest req = request(http::verb::post, target, token);
  req.set(http::field::content_type, "application/json");
  if (!key.empty()) req.set("Idempotency-Key", key);
  req.body() = body.dump();
  return req;
}

void http_seeds() {
  using V = http::verb;
  const std::string card = fuzz::kCard, user = fuzz::kUser;
  write("http", "healthz", wire(request(V::get, "/healthz", "")));
  write("http", "metrics", wire(request(V::get, "/metrics")));
  write("http", "cards", wire(request(V::get, "/api/cards?after=0", "")));
  write("http", "card", wire(request(V::get, "/api/cards/" + card + "?after=1", "")));
  write("http", "create-card",
        wire(post("/api/cards", {{"id", "gift-1"}, {"name", "Gift \u00e9 1"}, {"price", 100}, {"value", 120}})));
  write("http", "add-codes",
        wire(post("/api/cards/" + card + "/codes",
                  {{"codes", json::array({{{"code", "NEW-0001"}},
                                          {{"code", "NEW-0002"}, {"expires_at", "2030-01-31T23:59:59Z"}}})}})));
  write("http", "revoke-code", wire(request(V::delete_, "/api/cards/" + card + "/codes/FZ-0020")));
  write("http", "wallet", wire(request(V::get, "/api/wallets/" + user, fuzz::kApiToken)));
  write("http", "credit", wire(post("/api/wallets/" + user + "/credits", {{"amount", 2500}}, fuzz::kApiToken, "c-1")));
  write("http", "purchase",
        wire(post("/api/purchases", {{"card_id", fuzz::kCheapCard}, {"user_id", user}}, fuzz::kApiToken, "p-1")));
  write("http", "purchase-lookup", wire(request(V::get, "/api/purchases/p_0123456789abcdef_1", fuzz::kApiToken)));
  write("http", "user-purchases", wire(request(V::get, "/api/users/" + user + "/purchases?after=2", fuzz::kApiToken)));
  write("http", "events", wire(request(V::get, "/api/events?from=1&limit=5")));
  write("http", "events-stream", wire(request(V::get, "/api/events/stream?from=0")));
  write("http", "admin-page", wire(request(V::get, "/admin", "")));
  write("http", "admin-state", wire(request(V::get, "/api/admin/state?at=3&cards_from=fz&limit=2")));
  write("http", "admin-wallets", wire(request(V::get, "/api/admin/wallets?q=fz&limit=10&at=5")));
  write("http", "admin-purchases", wire(request(V::get, "/api/admin/purchases?limit=3")));
  write("http", "rebuild", wire(request(V::post, "/api/projections/rebuild")));
  write("http", "unauthorized", wire(request(V::get, "/api/wallets/" + user, "wrong-token")));
  write("http", "method-not-allowed", wire(request(V::put, "/api/cards")));
  write("http", "percent-path", wire(request(V::get, "/api/cards/fz%2Dcard%00x", "")));
  {
    HttpRequest req = post("/api/cards", {{"id", "x"}});
    req.set(http::field::content_type, "text/plain");
    write("http", "wrong-content-type", wire(req));
  }
  write("http", "chunked",
        "POST /api/wallets/" + user + "/credits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + fuzz::kApiToken +
            "\r\nIdempotency-Key: c-2\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\n{\"amo\r\n9\r\nunt\":700}\r\n0\r\n\r\n");
  write("http", "pipelined", wire(request(V::get, "/healthz", "")) + wire(request(V::get, "/api/cards", "")));
  write("http", "connection-close",
        "GET /api/events?limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(fuzz::kAdminToken) +
            "\r\nConnection: close\r\n\r\n" + wire(request(V::get, "/healthz", "")));
  write("http", "content-length-and-chunked",
        "POST /api/cards HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}");
}

void json_seeds() {
  auto seed = [](const std::string& name, const std::string& text) { write("json_commands", name, text); };
  seed("create-card", json({{"id", "gift-2"}, {"name", "Gift 2"}, {"price", 200}, {"value", 250}}).dump());
  seed("create-card-unicode", json({{"id", "gift-3"}, {"name", "Caf\u00e9 \u2615 \U0001F381"}, {"price", 1}, {"value", 1}}).dump());
  seed("add-codes", json({{"codes", json::array({{{"code", "JSON-0001"}},
                                                  {{"code", "JSON-0002"}, {"expires_at", "2031-02-28T12:00:00.5+01:00"}}})}})
                        .dump());
  seed("add-codes-bad-time", json({{"codes", json::array({{{"code", "JSON-0003"}, {"expires_at", "2031-02-30T00:00:00Z"}}})}}).dump());
  seed("credit", json({{"amount", 1500}}).dump());
  seed("credit-negative", json({{"amount", -5}}).dump());
  seed("credit-huge", "{\"amount\": 18446744073709551615}");
  seed("credit-float", "{\"amount\": 1e400}");
  seed("purchase", json({{"card_id", fuzz::kCheapCard}, {"user_id", fuzz::kUser}}).dump());
  seed("purchase-bad-user", json({{"card_id", fuzz::kCard}, {"user_id", ".."}}).dump());
  seed("duplicate-key", "{\"amount\": 1, \"amount\": 2}");
  seed("deep", std::string(40, '[') + std::string(40, ']'));
  seed("not-object", "[1, 2, 3]");
  seed("escapes", "{\"id\": \"a\\u0000b\", \"name\": \"\\ud83c\\udf81\", \"price\": 1, \"value\": 1}");
  seed("time-leap-second", json({{"codes", json::array({{{"code", "LEAP-0001"}, {"expires_at", "2016-12-31T23:59:60Z"}}})}}).dump());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " FUZZ_DIR   (writes FUZZ_DIR/<target>_seed_corpus/seed-*)\n";
    return 2;
  }
  g_root = argv[1];
  codec_seeds();
  keys_seeds();
  caf_seeds();
  http_seeds();
  json_seeds();
  std::cout << "wrote " << g_count << " seed files under " << g_root << "\n";
  return 0;
}

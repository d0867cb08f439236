// JSON views of the public message types (docs/CONTRACT.md, Bodies), shared
// by the CLI clients and the HTTP API.
#pragma once

#include <nlohmann/json.hpp>

#include "actors/errors.h"
#include "actors/messages.h"
#include "events/envelope.h"
#include "projections/read_models.h"

namespace giftcard {

nlohmann::json to_json(const Purchase& p);
nlohmann::json to_json(const CardInfo& c);
nlohmann::json to_json(const CreditReply& c);
nlohmann::json to_json(const WalletView& w);
nlohmann::json to_json(const AddCodesReply& a);
// {"position","stream","version","type","recorded_at","data":{...},"hash","prev_hash"}
// (the GET /api/events shape of docs/CONTRACT.md, Bodies, plus the chain).
// Undecodable payloads get "error".
nlohmann::json event_json(const StoredEvent& e);
// The shop as of m.position: {"position","as_of","wallets","cards","purchases"}.
nlohmann::json models_json(const ReadModels& m);
// {"code","detail","status"[,"codes"]} for a CAF error.
nlohmann::json error_json(const caf::error& e);

}  // namespace giftcard

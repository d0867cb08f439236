// JSON views of the public message types (SPEC §4 bodies), shared by the CLI
// clients and the HTTP API.
#pragma once

#include <nlohmann/json.hpp>

#include "actors/errors.h"
#include "actors/messages.h"

namespace giftcard {

nlohmann::json to_json(const Purchase& p);
nlohmann::json to_json(const CardInfo& c);
nlohmann::json to_json(const CreditReply& c);
nlohmann::json to_json(const WalletView& w);
nlohmann::json to_json(const AddCodesReply& a);
// {"code","detail","status"[,"codes"]} for a CAF error.
nlohmann::json error_json(const caf::error& e);

}  // namespace giftcard

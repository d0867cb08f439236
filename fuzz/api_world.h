// The HTTP API without a socket, for the `http` and `json_commands` fuzz
// targets: a real shop (actors/shop_actor.h) over a MemoryEventStore with its
// projections and time-travel history, and a real HttpApi in front of it, as
// `giftcard serve` assembles them (api/serve.cc) minus the listener. A request
// goes straight to HttpApi::handle with a Responder that captures the answer.
//
// One world per process, created on first use and seeded with a small
// catalog (see kCard*, kUser); it is rebuilt from scratch once its log grows
// past kMaxEvents, so that a long fuzzing run keeps bounded memory.
#pragma once

#include <string>

#include "api/http_api.h"

namespace giftcard::fuzz {

constexpr const char* kAdminToken = "fuzz-admin-token";
constexpr const char* kApiToken = "fuzz-api-token";
constexpr const char* kCard = "fz-card";      // price 500, codes FZ-0001..FZ-0020
constexpr const char* kCheapCard = "fz-cheap";  // price 1, codes CHEAP-0001..CHEAP-0005
constexpr const char* kUser = "fz-user";       // credited 1,000,000
constexpr int64_t kMaxEvents = 4000;

struct Answer {
  enum class Kind { none, sent, streamed, dropped };
  Kind kind = Kind::none;
  HttpResponse res;  // the response, or the head of an event stream
  size_t frames = 0;  // event-stream frames pushed before the sink was seen closed
};

// Hands `req` to HttpApi::handle and waits for the answer. Aborts if none
// arrives within a few seconds (a request the server would never answer).
Answer call_api(HttpRequest req);

// The checks every answer must pass, whatever the request: a status the API
// documents (never 500: bad input is never an internal error), no answer
// dropped, header values without CR/LF/NUL, problem+json bodies for 4xx/5xx,
// JSON bodies that parse, Allow on 405 and WWW-Authenticate on 401.
// `what` describes the request for the failure message.
void check_answer(const Answer& a, const std::string& what);

// A request as the API receives it (HTTP/1.1, Host set).
HttpRequest make_request(http::verb method, const std::string& target, const std::string& body = {},
                         const std::string& content_type = "application/json",
                         const std::string& token = kAdminToken);

}  // namespace giftcard::fuzz

// `giftcard purchase` and `giftcard credit`: CAF remote clients of a running
// `serve`; they log in to its gate with the api role (--token). They print the result as JSON on
// stdout. Exit codes: 0 success; 1 the shop rejected the command (the error JSON is printed on
// stdout and a message on stderr); 3 the node is unreachable or did not answer in time.
#pragma once

#include <cstdint>
#include <string>

#include "api/address.h"
#include "api/node_config.h"

namespace giftcard {

struct ClientOptions {
  HostPort node{"127.0.0.1", 4242};
  TlsOptions tls;
  std::string token;  // the api (or admin) token; "" when the server has none
  int timeout_seconds = 10;
};

int run_purchase(const ClientOptions& o, const std::string& card, const std::string& user,
                 const std::string& key);
int run_credit(const ClientOptions& o, const std::string& user, int64_t amount,
               const std::string& key);

}  // namespace giftcard

// `giftcard serve`: open (or create) the store, recover, publish the shop
// over CAF, print the ready line, and on SIGTERM/SIGINT drain and exit 0.
#pragma once

#include <chrono>
#include <string>

#include "api/address.h"
#include "api/node_config.h"

namespace giftcard {

struct ServeOptions {
  std::string data;
  HostPort caf{"127.0.0.1", 4242};
  bool demo = false;
  TlsOptions tls;
  std::chrono::milliseconds passivate_after{30000};
};

// Returns the process exit code.
int run_serve(const ServeOptions& options);

}  // namespace giftcard

// `giftcard serve`: open (or create) the store, recover, serve HTTP and
// publish the shop over CAF, print the ready line, and on SIGTERM/SIGINT stop
// accepting, finish in-flight requests, drain and exit 0.
#pragma once

#include <chrono>
#include <string>

#include "api/address.h"
#include "api/node_config.h"

namespace giftcard {

struct ServeOptions {
  std::string data;
  HostPort caf{"127.0.0.1", 4242};
  HostPort http{"127.0.0.1", 8080};
  std::string admin_token;  // empty: admin routes open (loopback only)
  std::string api_token;    // empty: API routes open (loopback only)
  int http_threads = 2;
  std::string scheduler = "sharing";  // CAF scheduler policy
  size_t max_body_bytes = 16u << 20;
  size_t max_buffered_body_bytes = 64u << 20;  // all request bodies being read at once
  // Requests per second per caller (token, or peer address) and the burst;
  // rate 0 (--no-rate-limit): off.
  double rate_limit = 20000;
  double rate_burst = 40000;
  size_t query_threads = 2;
  size_t max_queued_queries = 1024;
  size_t max_stream_viewers = 64;
  size_t max_caf_sessions = 4096;
  bool demo = false;
  TlsOptions tls;
  std::chrono::milliseconds passivate_after{30000};
};

// Returns the process exit code.
int run_serve(const ServeOptions& options);

}  // namespace giftcard

// The CAF configuration every giftcard node shares (server and clients):
// message types, the error category, the middleman, and TLS when asked for.
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <string>

#include "actors/messages.h"
#include "api/address.h"

namespace giftcard {

struct TlsOptions {
  std::string certificate;  // PEM
  std::string key;          // PEM
  std::string cafile;       // peers must present a certificate signed by this CA
  std::string passphrase;
  bool enabled() const { return !certificate.empty() || !cafile.empty(); }
  // Empty if consistent, else a reason.
  std::string check() const;
};

class NodeConfig : public caf::actor_system_config {
 public:
  // scheduler: CAF's policy, "sharing" (idle workers block; best for HTTP and
  // in-process load here) or "stealing" (CAF's default; idle workers poll).
  explicit NodeConfig(const TlsOptions& tls, const std::string& scheduler = "sharing");
};

// Connects to a node's gate (TLS if configured). Errors are CAF's.
caf::expected<gate_actor> connect_gate(caf::actor_system& sys, const HostPort& node, bool tls);

// Connects and logs in: the admin role's session (the whole shop interface),
// or the api role's. A refused token is Errc::unauthorized.
caf::expected<shop_actor> connect_shop(caf::actor_system& sys, const HostPort& node, bool tls,
                                       const std::string& token = {},
                                       std::chrono::seconds timeout = std::chrono::seconds(10));
caf::expected<api_session_actor> connect_api(
    caf::actor_system& sys, const HostPort& node, bool tls, const std::string& token,
    std::chrono::seconds timeout = std::chrono::seconds(10));

// Publishes the gate on `at`; returns the bound port.
caf::expected<uint16_t> publish_gate(const gate_actor& gate, const HostPort& at, bool tls);

}  // namespace giftcard

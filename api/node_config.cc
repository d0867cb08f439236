#include "api/node_config.h"

#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <filesystem>

namespace giftcard {

std::string TlsOptions::check() const {
  if (!enabled()) return {};
  if (certificate.empty() || key.empty() || cafile.empty())
    return "TLS needs --tls-cert, --tls-key and --tls-ca together";
  for (const auto* f : {&certificate, &key, &cafile})
    if (!std::filesystem::exists(*f)) return "TLS file not found: " + *f;
  return {};
}

NodeConfig::NodeConfig(const TlsOptions& tls, const std::string& scheduler) {
  register_message_types(*this);
  load<caf::io::middleman>();
  if (tls.enabled()) {
    load<caf::openssl::manager>();
    openssl_certificate = tls.certificate;
    openssl_key = tls.key;
    openssl_cafile = tls.cafile;
    openssl_passphrase = tls.passphrase;
  }
  // Quiet CAF's own console output; giftcard reports on stderr itself.
  set("logger.console", caf::atom("none"));
  // Workers of CAF's default work-stealing scheduler poll with 50 us sleeps
  // when idle: in this VM each sleep is a costly context switch. The sharing
  // policy parks idle workers on one queue's condition variable instead
  // (+17 % HTTP purchases/s, docs/BENCHMARKS.md).
  set("scheduler.policy", scheduler == "stealing" ? caf::atom("stealing") : caf::atom("sharing"));
}

caf::expected<gate_actor> connect_gate(caf::actor_system& sys, const HostPort& node, bool tls) {
  if (tls) return caf::openssl::remote_actor<gate_actor>(sys, node.host, node.port);
  return sys.middleman().remote_actor<gate_actor>(node.host, node.port);
}

namespace {

template <class Session, class Role>
caf::expected<Session> login(caf::actor_system& sys, const HostPort& node, bool tls, Role role,
                             const std::string& token, std::chrono::seconds timeout) {
  auto gate = connect_gate(sys, node, tls);
  if (!gate) return std::move(gate.error());
  caf::expected<Session> out{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self->request(*gate, timeout, login_atom::value, role, token)
      .receive([&](Session& s) { out = std::move(s); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

}  // namespace

caf::expected<shop_actor> connect_shop(caf::actor_system& sys, const HostPort& node, bool tls,
                                       const std::string& token, std::chrono::seconds timeout) {
  return login<shop_actor>(sys, node, tls, admin_atom::value, token, timeout);
}

caf::expected<api_session_actor> connect_api(caf::actor_system& sys, const HostPort& node, bool tls,
                                             const std::string& token,
                                             std::chrono::seconds timeout) {
  return login<api_session_actor>(sys, node, tls, api_atom::value, token, timeout);
}

caf::expected<uint16_t> publish_gate(const gate_actor& gate, const HostPort& at, bool tls) {
  if (tls) return caf::openssl::publish(gate, at.port, at.host.c_str(), true);
  return gate.home_system().middleman().publish(gate, at.port, at.host.c_str(), true);
}

}  // namespace giftcard

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

caf::expected<shop_actor> connect_shop(caf::actor_system& sys, const HostPort& node, bool tls) {
  if (tls) return caf::openssl::remote_actor<shop_actor>(sys, node.host, node.port);
  return sys.middleman().remote_actor<shop_actor>(node.host, node.port);
}

caf::expected<uint16_t> publish_shop(const shop_actor& shop, const HostPort& at, bool tls) {
  if (tls) return caf::openssl::publish(shop, at.port, at.host.c_str(), true);
  return shop.home_system().middleman().publish(shop, at.port, at.host.c_str(), true);
}

}  // namespace giftcard

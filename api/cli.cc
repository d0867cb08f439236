#include "api/cli.h"

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <limits>

#include "api/audit_commands.h"
#include "api/client_commands.h"
#include "api/serve.h"

namespace giftcard {
namespace {

// A CLI11 validator for HOST:PORT.
struct AddressValidator : CLI::Validator {
  AddressValidator() {
    name_ = "HOST:PORT";
    func_ = [](std::string& s) {
      HostPort hp;
      std::string why;
      return parse_host_port(s, &hp, &why) ? std::string() : why;
    };
  }
};

HostPort to_host_port(const std::string& s) {
  HostPort hp;
  std::string why;
  parse_host_port(s, &hp, &why);
  return hp;
}

void add_tls_flags(CLI::App* cmd, TlsOptions* tls) {
  cmd->add_option("--tls-cert", tls->certificate, "PEM certificate of this node (enables TLS)");
  cmd->add_option("--tls-key", tls->key, "PEM private key of this node");
  cmd->add_option("--tls-ca", tls->cafile, "PEM CA file; peers must be signed by it");
  cmd->add_option("--tls-passphrase", tls->passphrase, "passphrase of the key, if any");
}

// `giftcard serve`'s flags, with what CLI11 cannot write into ServeOptions
// directly (addresses, milliseconds, --no-rate-limit).
struct ServeArgs {
  ServeOptions serve;
  std::string caf = "127.0.0.1:4242";
  std::string http = "127.0.0.1:8080";
  int64_t passivate_ms = ServeOptions{}.passivate_after.count();
  bool no_rate_limit = false;

  ServeOptions options() const {
    ServeOptions o = serve;
    o.caf = to_host_port(caf);
    o.http = to_host_port(http);
    o.passivate_after = std::chrono::milliseconds(passivate_ms);
    if (no_rate_limit) o.rate_limit = 0;
    return o;
  }
};

// serve: where, who, how many threads.
CLI::App* add_serve(CLI::App& app, ServeArgs* a, const AddressValidator& address) {
  ServeOptions& serve = a->serve;
  auto* s = app.add_subcommand("serve", "Open (or create) the store in DIR and serve the shop");
  s->add_option("--data", serve.data, "store directory")->required();
  s->add_option("--caf", a->caf, "CAF remote address (port 0 picks a free port)")
      ->check(address)
      ->capture_default_str();
  s->add_option("--http", a->http, "HTTP address (port 0 picks a free port)")
      ->check(address)
      ->capture_default_str();
  s->add_option("--admin-token", serve.admin_token,
                "bearer token for cards, codes, events, viewer and metrics "
                "(prefer the environment variable: the command line is visible to other users)")
      ->envname("GIFTCARD_ADMIN_TOKEN");
  s->add_option("--api-token", serve.api_token,
                "bearer token for purchases, credits and wallet reads")
      ->envname("GIFTCARD_API_TOKEN");
  s->add_option("--http-threads", serve.http_threads, "HTTP I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  s->add_option("--scheduler", serve.scheduler,
                "CAF scheduler: sharing (idle workers block) or stealing (CAF's default; idle "
                "workers poll)")
      ->check(CLI::IsMember({"sharing", "stealing"}))
      ->capture_default_str();
  return s;
}

// serve: the limits, then the rest.
void add_serve_limits(CLI::App* s, ServeArgs* a) {
  ServeOptions& serve = a->serve;
  s->add_option("--max-body-bytes", serve.max_body_bytes, "largest accepted request body")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  s->add_option("--max-buffered-body-bytes", serve.max_buffered_body_bytes,
                "request body bytes buffered at once over all connections (beyond: 503 busy)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34))
      ->capture_default_str();
  auto* rate = s->add_option("--rate-limit", serve.rate_limit,
                             "requests per second per caller (a token, or a peer address without "
                             "one); beyond: 429 with Retry-After")
                   ->check(CLI::Range(0.01, 1e9))
                   ->capture_default_str();
  s->add_option("--rate-burst", serve.rate_burst, "requests a caller may send at once")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  s->add_flag("--no-rate-limit", a->no_rate_limit,
              "turn the per-caller rate limit off (loopback benchmarks only)")
      ->excludes(rate);
  s->add_option("--query-threads", serve.query_threads, "threads answering queries")
      ->check(CLI::Range(size_t{1}, size_t{64}))
      ->capture_default_str();
  s->add_option("--max-queued-queries", serve.max_queued_queries,
                "queries waiting for a query thread (beyond: 503 busy)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  s->add_option("--max-stream-viewers", serve.max_stream_viewers,
                "open /api/events/stream connections (beyond: 503 busy)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  s->add_option("--max-caf-sessions", serve.max_caf_sessions,
                "open CAF sessions (logins beyond: busy)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  s->add_flag("--demo", serve.demo, "seed a demo catalog into an empty store");
  s->add_option("--passivate-after-ms", a->passivate_ms, "idle time before an actor is passivated")
      ->check(CLI::Range(int64_t{10}, int64_t{86400000}))
      ->capture_default_str();
  add_tls_flags(s, &serve.tls);
}

// purchase and credit: a running server's clients over CAF.
struct ClientArgs {
  ClientOptions client;
  std::string node = "127.0.0.1:4242";
  std::string card, user, key;
  int64_t amount = 0;
};

// The flags purchase and credit share, around the command's own (`add`).
CLI::App* add_client(CLI::App& app, const char* name, const char* what, ClientArgs* a,
                     const AddressValidator& address, const std::function<void(CLI::App*)>& add) {
  auto* cmd = app.add_subcommand(name, what);
  cmd->add_option("--node", a->node, "server's CAF address")->check(address)->capture_default_str();
  add(cmd);
  cmd->add_option("--timeout", a->client.timeout_seconds, "seconds to wait for the answer")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  add_tls_flags(cmd, &a->client.tls);
  cmd->add_option("--token", a->client.token,
                  "the api (or admin) token of the server (prefer the environment variable: the "
                  "command line is visible to other users)")
      ->envname("GIFTCARD_API_TOKEN");
  return cmd;
}

CLI::App* add_purchase(CLI::App& app, ClientArgs* a, const AddressValidator& address) {
  return add_client(
      app, "purchase", "Buy a code through a running server (CAF remote)", a, address,
      [a](CLI::App* p) {
        p->add_option("--card", a->card, "card id")->required();
        p->add_option("--user", a->user, "buyer's user id")->required();
        p->add_option("--key", a->key, "idempotency key (repeat it to retry safely)")->required();
      });
}

CLI::App* add_credit(CLI::App& app, ClientArgs* a, const AddressValidator& address) {
  return add_client(app, "credit", "Credit a wallet through a running server (CAF remote)", a,
                    address, [a](CLI::App* c) {
                      c->add_option("--user", a->user, "user id")->required();
                      c->add_option("--amount", a->amount, "amount in minor units (cents), > 0")
                          ->required()
                          ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
                      c->add_option("--key", a->key, "idempotency key")->required();
                    });
}

// events, replay, verify: read-only views of a store directory.
struct ReadArgs {
  EventsOptions events;
  ReplayOptions replay;
  std::string verify_data;
  CLI::App* events_cmd = nullptr;
  CLI::App* replay_cmd = nullptr;
  CLI::App* verify_cmd = nullptr;
};

void add_read_commands(CLI::App& app, ReadArgs* a) {
  auto* ev = a->events_cmd = app.add_subcommand(
      "events", "Print events as JSON lines, in position order (read-only)");
  ev->add_option("--data", a->events.data, "store directory")->required();
  ev->add_option("--from", a->events.from, "first position")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ev->add_option("--to", a->events.to, "last position (default: the end)")
      ->check(CLI::PositiveNumber);
  ev->add_option("--stream", a->events.stream,
                 "only this stream, e.g. card-steam-50 or wallet-alice");

  auto* rp = a->replay_cmd = app.add_subcommand(
      "replay",
      "Rebuild every projection from the log up to a point and print it as JSON (read-only)");
  rp->add_option("--data", a->replay.data, "store directory")->required();
  auto* rp_to =
      rp->add_option("--to", a->replay.to, "last position to apply")->check(CLI::PositiveNumber);
  rp->add_option("--at", a->replay.at, "apply events recorded at or before this RFC 3339 time")
      ->excludes(rp_to);

  auto* vf = a->verify_cmd = app.add_subcommand(
      "verify", "Check the hash chain, gap-free positions and invariants 1-3 and 6 (read-only)");
  vf->add_option("--data", a->verify_data, "store directory")->required();
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "giftcard — an event-sourced gift-card backend: every concurrent buyer gets a "
      "distinct activation code, and no cent is lost."};
  app.require_subcommand(1);
  const AddressValidator address;
  ServeArgs serve;
  auto* s = add_serve(app, &serve, address);
  add_serve_limits(s, &serve);
  ClientArgs client;
  auto* p = add_purchase(app, &client, address);
  add_credit(app, &client, address);
  ReadArgs read;
  add_read_commands(app, &read);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (s->parsed()) return run_serve(serve.options());
  if (read.events_cmd->parsed()) return run_events(read.events);
  if (read.replay_cmd->parsed()) return run_replay(read.replay);
  if (read.verify_cmd->parsed()) return run_verify(read.verify_data);
  client.client.node = to_host_port(client.node);
  if (p->parsed()) return run_purchase(client.client, client.card, client.user, client.key);
  return run_credit(client.client, client.user, client.amount, client.key);
}

}  // namespace giftcard

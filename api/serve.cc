#include "api/serve.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <caf/io/all.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "actors/query_pool.h"
#include "actors/shop_actor.h"
#include "api/caf_gate.h"
#include "api/demo_catalog.h"
#include "api/http_api.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "projections/projection_db.h"
#include "store/crash_point.h"
#include "store/rocks_event_store.h"

namespace giftcard {

namespace {

// At rest (docs/SECURITY.md): the log holds every activation code, so the
// data directory is the owner's alone. Files are created 0600 (umask) and a
// new directory 0700; an existing one that others can read is reported.
bool prepare_data_dir(const std::string& dir) {
  ::umask(077);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      std::cerr << "giftcard serve: cannot create " << dir << ": " << ec.message() << "\n";
      return false;
    }
    ::chmod(dir.c_str(), 0700);
    return true;
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    std::cerr << "giftcard serve: " << dir << " is not a directory\n";
    return false;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::cerr << "giftcard: warning: data directory " << dir << " has mode " << mode
              << ": other local users may read activation codes from it (chmod 700 " << dir
              << ")\n";
  }
  return true;
}

// The hard bound on a shutdown: HTTP drain (30 s) + shop drain (60 s) + slack.
// Everything acknowledged is already synced, so leaving is safe.
constexpr std::chrono::seconds kShutdownLimit{100};

// Why these options must not be served ("" if they may): exit code 2.
std::string refusal(const ServeOptions& o) {
  if (auto why = crash_point_config_error(); !why.empty()) return why;
  if (auto why = o.tls.check(); !why.empty()) return why;
  const bool both_tokens = !o.admin_token.empty() && !o.api_token.empty();
  const std::string tokens =
      " without both --admin-token and --api-token (or GIFTCARD_ADMIN_TOKEN and "
      "GIFTCARD_API_TOKEN)";
  if (!is_loopback(o.caf.host) && !both_tokens)
    return "refusing to serve CAF on non-loopback address " + o.caf.host + tokens;
  if (!o.tls.enabled() && !is_loopback(o.caf.host))
    return "refusing to serve CAF on non-loopback address " + o.caf.host +
           " without TLS (--tls-cert, --tls-key, --tls-ca)";
  if (!is_loopback(o.http.host) && !both_tokens)
    return "refusing to serve HTTP on non-loopback address " + o.http.host + tokens;
  return {};
}

// The log, its read models and their history, open and recovered.
struct Stores {
  std::unique_ptr<EventStore> store;
  std::unique_ptr<ProjectionDb> projections;
  std::unique_ptr<ProjectionHistory> history;
};

bool open_stores(const std::string& data, Stores* s) {
  StoreOptions so;
  so.path = data;
  if (Status st = OpenRocksEventStore(so, &s->store); !st.ok()) {
    std::cerr << "giftcard serve: cannot open store: " << st.ToString() << "\n";
    return false;
  }
  EventStore* store = s->store.get();
  std::cerr << "giftcard: store " << data << " open at position " << store->LastPosition() << "\n";
  if (Status st = ProjectionDb::Open(store, &s->projections); !st.ok()) {
    std::cerr << "giftcard serve: cannot open projections: " << st.ToString() << "\n";
    return false;
  }
  const ProjectionDb& p = *s->projections;
  if (!p.reset_reason().empty())
    std::cerr << "giftcard: projections were damaged (" << p.reset_reason()
              << "); dropped, rebuilding them from the log\n";
  if (int64_t behind = store->LastPosition() - p.position(); behind > 0)
    std::cerr << "giftcard: projections at position " << p.position() << ", " << behind
              << " events to catch up (in the background)\n";
  if (Status st = ProjectionHistory::Open(store, &s->history); !st.ok()) {
    std::cerr << "giftcard serve: cannot open projection history: " << st.ToString() << "\n";
    return false;
  }
  return true;
}

// Set when the shop or the CAF gate dies: /healthz says so and serve exits
// non-zero so that a supervisor restarts it.
struct DoorState {
  std::atomic<bool> door_down{false};
  std::atomic<bool> stopping{false};
};

// Watches the shop and the gate. Never published, never serialized: no peer
// can address it. (The int is unused: an argument-less function actor trips
// UBSan inside CAF 0.17.6.)
caf::actor spawn_watchdog(caf::actor_system& sys, const shop_internal_actor& shop,
                          const gate_actor& gate, DoorState* doors) {
  return sys.spawn(
      [doors, shop, gate](caf::event_based_actor* self, int) -> caf::behavior {
        self->monitor(shop);
        self->monitor(gate);
        self->set_down_handler([doors](caf::down_msg&) {
          if (doors->stopping.load() || doors->door_down.exchange(true)) return;
          std::cerr << "giftcard: the shop's front door stopped; exiting so that a supervisor "
                       "restarts the server\n";
          ::kill(::getpid(), SIGTERM);
        });
        return {[](int) {}};
      },
      0);
}

HttpApiOptions api_options(const ServeOptions& o, DoorState* doors, const GateStats* gate_stats) {
  HttpApiOptions a;
  a.admin_token = o.admin_token;
  a.api_token = o.api_token;
  a.rate_limit.rate = o.rate_limit;
  a.rate_limit.burst = std::max(1.0, o.rate_burst);
  if (o.rate_limit <= 0) a.refusal_limit.rate = 0;  // --no-rate-limit: both off
  a.max_stream_viewers = o.max_stream_viewers;
  a.unhealthy = [doors]() -> std::string {
    return doors->door_down.load() ? "the shop's front door stopped" : "";
  };
  a.more_metrics = [gate_stats] {
    MetricsText m;
    m.metric("giftcard_caf_logins_total", "counter", "CAF logins that opened a session.",
             gate_stats->logins.load());
    m.metric("giftcard_caf_logins_refused_total", "counter", "CAF logins refused (wrong token).",
             gate_stats->logins_refused.load());
    m.metric("giftcard_caf_sessions", "gauge", "Open CAF sessions.", gate_stats->sessions.load());
    m.metric("giftcard_caf_dropped_system_messages_total", "counter",
             "Exit, down and error messages from outside dropped by the CAF door.",
             gate_stats->dropped_system_messages.load());
    return m.str();
  };
  return a;
}

HttpLimits http_limits(const ServeOptions& o) {
  HttpLimits limits;
  limits.io_threads = o.http_threads;
  limits.max_body_bytes = o.max_body_bytes;
  limits.max_buffered_body_bytes = o.max_buffered_body_bytes;
  return limits;
}

// Both doors open: the HTTP server listening and the gate published. Fills
// the bound ports; false (reported) if either cannot.
bool open_doors(const ServeOptions& o, caf::actor_system& sys, HttpServer& http,
                const gate_actor& gate, uint16_t* http_port, uint16_t* caf_port) {
  std::string why;
  *http_port = http.start(o.http, &why);
  if (*http_port == 0) {
    std::cerr << "giftcard serve: " << why << "\n";
    return false;
  }
  auto bound = publish_gate(gate, o.caf, o.tls.enabled());
  if (!bound) {
    std::cerr << "giftcard serve: cannot publish on " << o.caf.host << ":" << o.caf.port << ": "
              << sys.render(bound.error()) << "\n";
    return false;
  }
  *caf_port = *bound;
  return true;
}

void print_ready(const ServeOptions& o, uint16_t http_port, uint16_t caf_port) {
  auto bracket = [](const std::string& h) {
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
  };
  std::printf("ready http=%s:%u caf=%s:%u\n", bracket(o.http.host).c_str(),
              static_cast<unsigned>(http_port), bracket(o.caf.host).c_str(),
              static_cast<unsigned>(caf_port));
  std::fflush(stdout);
}

// Serves until SIGTERM or SIGINT (or the watchdog's SIGTERM), then closes
// both doors and lets the HTTP requests in flight finish.
void serve_until_stopped(sigset_t* stop, DoorState* doors, caf::actor_system& sys, HttpServer& http,
                         const gate_actor& gate, uint16_t caf_port) {
  int sig = 0;
  sigwait(stop, &sig);
  doors->stopping = true;
  std::cerr << "giftcard: "
            << (doors->door_down.load() ? "front door down"
                : sig == SIGTERM        ? "SIGTERM"
                                        : "SIGINT")
            << ": draining in-flight commands\n";
  // Whatever happens below, the process ends within kShutdownLimit.
  std::thread([] {
    std::this_thread::sleep_for(kShutdownLimit);
    std::cerr << "giftcard: shutdown did not finish in " << kShutdownLimit.count()
              << " s; exiting without it (every acknowledged command is on disk)\n";
    std::_Exit(1);
  }).detach();
  http.stop_accepting();                                         // no new HTTP requests
  static_cast<void>(sys.middleman().unpublish(gate, caf_port));  // no new remote logins
  // In-flight HTTP requests still need the shop: let them finish first.
  // A request already written to an idle connection is read and answered
  // before that connection closes, so wait for the connections too.
  for (int i = 0; i < 3000 && !http.drained(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!http.drained())
    std::cerr << "giftcard: HTTP not drained after 30 s (" << http.in_flight()
              << " request(s) unanswered)\n";
}

// Drains the shop (every command in flight answered), then stops the gate,
// the query pool and the actors. False if the drain did not complete.
bool stop_shop(caf::actor_system& sys, const shop_internal_actor& shop, const gate_actor& gate,
               const caf::actor& watchdog, QueryPool* queries) {
  bool drained = true;
  caf::scoped_actor self{sys};
  self->request(shop, std::chrono::seconds(60), DrainMsg{})
      .receive([](bool) {},
               [&](caf::error& e) {
                 std::cerr << "giftcard: drain incomplete: " << sys.render(e) << "\n";
                 drained = false;
               });
  stop_gate(gate);
  queries->stop();  // before the API it calls back into goes away
  self->send_exit(watchdog, caf::exit_reason::user_shutdown);
  self->send_exit(shop, caf::exit_reason::user_shutdown);
  return drained;
}

// Runs the shop over `stores` until a stop signal: the actor system, the
// CAF gate, the HTTP API, the demo catalog if asked for. The exit code.
int run_shop(const ServeOptions& o, sigset_t* stop, ShopContext* ctx, QueryPool* queries) {
  int rc = 0;
  DoorState doors;
  GateStats gate_stats;
  NodeConfig cfg(o.tls, o.scheduler);
  caf::actor_system sys{cfg};
  auto shop = spawn_shop(sys, ctx);
  auto public_shop = caf::actor_cast<shop_actor>(shop);
  GateOptions gate_opts;
  gate_opts.admin_token = o.admin_token;
  gate_opts.api_token = o.api_token;
  gate_opts.max_sessions = o.max_caf_sessions;
  auto gate = spawn_gate(sys, public_shop, gate_opts, &gate_stats);
  auto watchdog = spawn_watchdog(sys, shop, gate, &doors);
  if (o.demo && ctx->store->LastPosition() == 0) {
    if (auto err = seed_demo_catalog(sys, public_shop); !err.empty()) {
      std::cerr << "giftcard serve: demo catalog: " << err << "\n";
      rc = 1;
    } else {
      std::cerr << "giftcard: demo catalog seeded (position " << ctx->store->LastPosition()
                << ")\n";
    }
  }
  HttpApi api(sys, public_shop, ctx, api_options(o, &doors, &gate_stats));
  HttpServer http(
      http_limits(o),
      [&api](HttpRequest&& req, std::shared_ptr<Responder> r) {
        api.handle(std::move(req), std::move(r));
      },
      HttpApi::problem,
      [&api](const http::request_header<>& h, const std::string& peer) {
        return api.check_header(h, peer);
      });
  uint16_t http_port = 0, caf_port = 0;
  if (rc == 0 && !open_doors(o, sys, http, gate, &http_port, &caf_port)) rc = 1;
  if (rc == 0) {
    print_ready(o, http_port, caf_port);
    serve_until_stopped(stop, &doors, sys, http, gate, caf_port);
  }
  doors.stopping = true;
  if (!stop_shop(sys, shop, gate, watchdog, queries)) rc = rc ? rc : 1;
  if (doors.door_down.load()) {
    rc = rc ? rc : 1;
    // Actors of a dead shop may never finish: do not wait for them.
    sys.await_actors_before_shutdown(false);
  }
  api.stop();
  http.stop();
  return rc;
}

}  // namespace

int run_serve(const ServeOptions& o) {
  if (auto why = refusal(o); !why.empty()) {
    std::cerr << "giftcard serve: " << why << "\n";
    return 2;
  }
  // Block the stop signals before any thread starts, so that every thread
  // inherits the mask and only sigwait() below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  if (o.admin_token.empty() != o.api_token.empty())
    std::cerr << "giftcard: only the " << (o.admin_token.empty() ? "api" : "admin")
              << " token is set: the "
              << (o.admin_token.empty() ? "admin routes and the CAF admin role are closed"
                                        : "api routes and the CAF api role need the admin token")
              << "\n";
  if (!prepare_data_dir(o.data)) return 1;
  Stores stores;
  if (!open_stores(o.data, &stores)) return 1;
  ShopContext ctx;
  ctx.store = stores.store.get();
  ctx.projections = stores.projections.get();
  ctx.history = stores.history.get();
  ctx.config.passivate_after = o.passivate_after;
  ctx.config.query_threads = o.query_threads;
  ctx.config.max_queued_queries = o.max_queued_queries;
  // One bounded pool answers every query: the shop's (HTTP and CAF) and the
  // reads the HTTP routes do themselves (the log's pages, the admin views).
  QueryPool queries(o.query_threads, o.max_queued_queries);
  ctx.queries = &queries;
  int rc = run_shop(o, &stop, &ctx, &queries);
  EventStore* store = stores.store.get();
  store->Close();
  if (Status h = store->Health(); !h.ok()) {
    std::cerr << "giftcard: store failed: " << h.ToString() << "\n";
    rc = rc ? rc : 1;
  }
  std::cerr << "giftcard: stopped at position " << store->LastPosition() << "\n";
  return rc;
}

}  // namespace giftcard

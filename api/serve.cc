#include "api/serve.h"

#include <signal.h>

#include <caf/io/all.hpp>
#include <cstdio>
#include <iostream>
#include <thread>

#include "actors/shop_actor.h"
#include "api/demo_catalog.h"
#include "api/http_api.h"
#include "api/http_server.h"
#include "projections/projection_db.h"
#include "store/crash_point.h"
#include "store/rocks_event_store.h"

namespace giftcard {

int run_serve(const ServeOptions& o) {
  if (auto why = crash_point_config_error(); !why.empty()) {
    std::cerr << "giftcard serve: " << why << "\n";
    return 2;
  }
  if (auto why = o.tls.check(); !why.empty()) {
    std::cerr << "giftcard serve: " << why << "\n";
    return 2;
  }
  if (!o.tls.enabled() && !is_loopback(o.caf.host)) {
    std::cerr << "giftcard serve: refusing to serve CAF on non-loopback address " << o.caf.host
              << " without TLS (--tls-cert, --tls-key, --tls-ca)\n";
    return 2;
  }
  if (!is_loopback(o.http.host) && (o.admin_token.empty() || o.api_token.empty())) {
    std::cerr << "giftcard serve: refusing to serve HTTP on non-loopback address " << o.http.host
              << " without both --admin-token and --api-token (or GIFTCARD_ADMIN_TOKEN and "
                 "GIFTCARD_API_TOKEN)\n";
    return 2;
  }
  // Block the stop signals before any thread starts, so that every thread
  // inherits the mask and only sigwait() below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::unique_ptr<EventStore> store;
  StoreOptions so;
  so.path = o.data;
  if (Status s = OpenRocksEventStore(so, &store); !s.ok()) {
    std::cerr << "giftcard serve: cannot open store: " << s.ToString() << "\n";
    return 1;
  }
  std::cerr << "giftcard: store " << o.data << " open at position " << store->LastPosition()
            << "\n";
  std::unique_ptr<ProjectionDb> projections;
  if (Status s = ProjectionDb::Open(store.get(), &projections); !s.ok()) {
    std::cerr << "giftcard serve: cannot open projections: " << s.ToString() << "\n";
    return 1;
  }
  if (!projections->reset_reason().empty())
    std::cerr << "giftcard: projections were damaged (" << projections->reset_reason()
              << "); dropped, rebuilding them from the log\n";
  if (int64_t behind = store->LastPosition() - projections->position(); behind > 0)
    std::cerr << "giftcard: projections at position " << projections->position() << ", "
              << behind << " events to catch up (in the background)\n";
  std::unique_ptr<ProjectionHistory> history;
  if (Status s = ProjectionHistory::Open(store.get(), &history); !s.ok()) {
    std::cerr << "giftcard serve: cannot open projection history: " << s.ToString() << "\n";
    return 1;
  }
  ShopContext ctx;
  ctx.store = store.get();
  ctx.projections = projections.get();
  ctx.history = history.get();
  ctx.config.passivate_after = o.passivate_after;
  int rc = 0;
  {
    NodeConfig cfg(o.tls, o.scheduler);
    caf::actor_system sys{cfg};
    auto shop = spawn_shop(sys, &ctx);
    auto public_shop = caf::actor_cast<shop_actor>(shop);
    if (o.demo && store->LastPosition() == 0) {
      if (auto err = seed_demo_catalog(sys, public_shop); !err.empty()) {
        std::cerr << "giftcard serve: demo catalog: " << err << "\n";
        rc = 1;
      } else {
        std::cerr << "giftcard: demo catalog seeded (position " << store->LastPosition() << ")\n";
      }
    }
    HttpApiOptions api_opts;
    api_opts.admin_token = o.admin_token;
    api_opts.api_token = o.api_token;
    HttpApi api(sys, public_shop, &ctx, api_opts);
    HttpLimits limits;
    limits.io_threads = o.http_threads;
    limits.max_body_bytes = o.max_body_bytes;
    HttpServer http(
        limits, [&api](HttpRequest&& req, std::shared_ptr<Responder> r) { api.handle(std::move(req), std::move(r)); },
        HttpApi::problem);
    uint16_t http_port = 0;
    uint16_t port = 0;
    if (rc == 0) {
      std::string why;
      http_port = http.start(o.http, &why);
      if (http_port == 0) {
        std::cerr << "giftcard serve: " << why << "\n";
        rc = 1;
      }
    }
    if (rc == 0) {
      auto bound = publish_shop(public_shop, o.caf, o.tls.enabled());
      if (!bound) {
        std::cerr << "giftcard serve: cannot publish on " << o.caf.host << ":" << o.caf.port
                  << ": " << sys.render(bound.error()) << "\n";
        rc = 1;
      } else {
        port = *bound;
      }
    }
    if (rc == 0) {
      auto bracket = [](const std::string& h) { return h.find(':') != std::string::npos ? "[" + h + "]" : h; };
      std::printf("ready http=%s:%u caf=%s:%u\n", bracket(o.http.host).c_str(),
                  static_cast<unsigned>(http_port), bracket(o.caf.host).c_str(),
                  static_cast<unsigned>(port));
      std::fflush(stdout);
      int sig = 0;
      sigwait(&stop, &sig);
      std::cerr << "giftcard: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                << ": draining in-flight commands\n";
      http.stop_accepting();                                          // no new HTTP requests
      static_cast<void>(sys.middleman().unpublish(public_shop, port));  // no new remote requests
      // In-flight HTTP requests still need the shop: let them finish first.
      // A request already written to an idle connection is read and answered
      // before that connection closes, so wait for the connections too.
      for (int i = 0; i < 3000 && !http.drained(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!http.drained())
        std::cerr << "giftcard: HTTP not drained after 30 s (" << http.in_flight() << " request(s) unanswered)\n";
    }
    caf::scoped_actor self{sys};
    self->request(shop, std::chrono::seconds(60), DrainMsg{})
        .receive([](bool) {},
                 [&](caf::error& e) {
                   std::cerr << "giftcard: drain incomplete: " << sys.render(e) << "\n";
                   rc = rc ? rc : 1;
                 });
    self->send_exit(shop, caf::exit_reason::user_shutdown);
    api.stop();
    http.stop();
  }
  store->Close();
  if (Status h = store->Health(); !h.ok()) {
    std::cerr << "giftcard: store failed: " << h.ToString() << "\n";
    rc = rc ? rc : 1;
  }
  std::cerr << "giftcard: stopped at position " << store->LastPosition() << "\n";
  return rc;
}

}  // namespace giftcard

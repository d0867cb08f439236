// Listening and shutdown; a connection's life is api/http_session.cc.
#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "api/http_session.h"

namespace giftcard {

void HttpServer::Impl::accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      auto s = std::make_shared<Session>(std::move(socket), this);
      {
        std::lock_guard lock(sessions_mu);
        sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(s);
      }
      s->start();
    }
    accept();
  });
}

void HttpServer::Impl::drain_sessions() {
  std::lock_guard lock(sessions_mu);
  for (auto& w : sessions)
    if (auto s = w.lock()) s->drain();
}

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, ProblemMaker problem,
                       HeaderCheck check)
    : impl_(std::make_unique<Impl>(limits, std::move(handler), std::move(problem),
                                   std::move(check))) {
  impl_->in_flight = &in_flight_;
  impl_->connections = &connections_;
}

HttpServer::~HttpServer() { stop(); }

int64_t HttpServer::cut_streams() const { return impl_->cut_streams.load(); }
size_t HttpServer::buffered_body_bytes() const { return impl_->buffered.load(); }

uint16_t HttpServer::start(const HostPort& address, std::string* error) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address.host == "localhost" ? "127.0.0.1" : address.host, ec);
  if (ec) {
    *error = "bad address " + address.host + ": " + ec.message();
    return 0;
  }
  tcp::endpoint ep(ip, address.port);
  // On a strand of its own: accept completions and stop_accepting()'s close
  // never run at the same time on the two I/O threads.
  auto& acc = impl_->acceptor.emplace(net::make_strand(impl_->ioc));
  if (acc.open(ep.protocol(), ec); !ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + address.host + ":" + std::to_string(address.port) + ": " +
             ec.message();
    impl_->acceptor.reset();
    return 0;
  }
  uint16_t port = acc.local_endpoint().port();
  impl_->work.emplace(net::make_work_guard(impl_->ioc));
  impl_->accept();
  for (int i = 0; i < std::max(1, impl_->limits.io_threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return port;
}

void HttpServer::stop_accepting() {
  if (impl_->draining.exchange(true)) return;
  if (impl_->acceptor)
    net::post(impl_->acceptor->get_executor(), [this] {
      beast::error_code ignored;
      impl_->acceptor->close(ignored);
    });
  impl_->drain_sessions();
}

bool HttpServer::drained() const { return in_flight_.load() == 0 && impl_->open.load() == 0; }

void HttpServer::stop() {
  if (!impl_) return;
  stop_accepting();
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

}  // namespace giftcard

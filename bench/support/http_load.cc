#include "bench/support/http_load.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <string_view>

namespace giftcard::bench {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// The string value of `"name":"` in a flat JSON body (`name` includes the
// quotes, colon and opening quote), "?" if absent. Cheap: no parse.
std::string json_string_field(std::string_view body, std::string_view name) {
  auto k = body.find(name);
  if (k == std::string_view::npos) return "?";
  auto s = k + name.size();
  auto e = body.find('"', s);
  return std::string(body.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s));
}

}  // namespace

void record_ok(LoadShared* sh, Buyer* b, std::string code, Clock::time_point t0) {
  ++b->ok_total;
  sh->ok.fetch_add(1, std::memory_order_relaxed);
  b->codes.push_back(std::move(code));
  if (sh->phase.load(std::memory_order_acquire) == 1) {
    ++b->ok_measured;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    b->latency_us.push_back(
        static_cast<uint32_t>(std::min<int64_t>(us, std::numeric_limits<uint32_t>::max())));
  }
}

uint64_t LatencyHistogram::count() const {
  uint64_t n = 0;
  for (const auto& b : b_) n += b.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::percentile_ms(double p) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * static_cast<double>(n))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i)
    if ((seen += b_[i].load(std::memory_order_relaxed)) >= rank) return round_to(mid_us(i) / 1000.0, 0.001);
  return 0;
}

double LatencyHistogram::max_ms() const {
  for (size_t i = kBuckets; i-- > 0;)
    if (b_[i].load(std::memory_order_relaxed)) return round_to(mid_us(i) / 1000.0, 0.001);
  return 0;
}

size_t LatencyHistogram::bucket(uint64_t v) {
  if (v < 256) return static_cast<size_t>(v);
  const auto shift = static_cast<size_t>(63 - __builtin_clzll(v) - 7);  // keep the top 8 bits
  return std::min(kBuckets - 1, 256 + (shift - 1) * 128 + static_cast<size_t>((v >> shift) - 128));
}

double LatencyHistogram::mid_us(size_t b) {
  if (b < 256) return static_cast<double>(b);
  const size_t shift = (b - 256) / 128 + 1;
  const auto lo = static_cast<double>(((b - 256) % 128 + 128) << shift);
  return lo + static_cast<double>(size_t{1} << shift) / 2;
}

void KeepAliveConn::send(std::string request, Done done) {
  req_ = std::move(request);
  done_ = std::move(done);
  if (sock_.is_open() && Clock::now() - last_ > std::chrono::seconds(5)) close();
  if (sock_.is_open()) return write();
  sock_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->finish_error("connect: " + ec.message());
    self->sock_.set_option(tcp::no_delay(true));
    self->write();
  });
}

void KeepAliveConn::close() {
  beast::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_both, ec);
  sock_.close(ec);
  buf_.clear();
}

void KeepAliveConn::write() {
  t0_ = Clock::now();
  net::async_write(sock_, net::buffer(req_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->finish_error("write: " + ec.message());
    self->res_ = {};
    http::async_read(self->sock_, self->buf_, self->res_,
                     [self](beast::error_code ec2, size_t) { self->on_read(ec2); });
  });
}

void KeepAliveConn::on_read(beast::error_code ec) {
  if (ec) return finish_error("read: " + ec.message());
  last_ = Clock::now();
  HttpAnswer a;
  a.us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(last_ - t0_).count());
  a.status = static_cast<int>(res_.result_int());
  a.replayed = res_.find("Idempotent-Replayed") != res_.end();
  if (a.status == 201) a.code = json_string_field(res_.body(), "\"code\":\"");
  else a.error = std::to_string(a.status) + " " + json_string_field(res_.body(), "\"code\":\"");
  if (!res_.keep_alive()) {
    a.closed = true;
    close();
  }
  Done d = std::move(done_);  // it may send the next request
  d(std::move(a));
}

void KeepAliveConn::finish_error(const std::string& why) {
  close();
  HttpAnswer a;
  a.error = "transport: " + why;
  Done d = std::move(done_);
  d(std::move(a));
}

HttpPurchaseClient::HttpPurchaseClient(net::io_context& ioc, tcp::endpoint ep, LoadShared* sh, Buyer* b,
                                       std::string tag)
    : conn_(std::make_shared<KeepAliveConn>(ioc, ep)), sh_(sh), b_(b), tag_(std::move(tag)) {
  body_ = "{\"card_id\":\"" + b->card + "\",\"user_id\":\"" + b->user + "\"}";
  head_ = "POST /api/purchases HTTP/1.1\r\nHost: " + ep.address().to_string() +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body_.size()) +
          "\r\nIdempotency-Key: ";
}

void HttpPurchaseClient::start() { send(); }  // the connection connects on its first request

void HttpPurchaseClient::send() {
  if (sh_->phase.load(std::memory_order_acquire) == 2) return done();
  std::string req = head_;
  req += b_->key_prefix;
  req += std::to_string(b_->seq++);
  req += "\r\n\r\n";
  req += body_;
  conn_->send(std::move(req), [self = shared_from_this()](HttpAnswer a) { self->on_response(std::move(a)); });
}

void HttpPurchaseClient::on_response(HttpAnswer a) {
  if (a.status == 0) return fail(a.error);
  if (a.replayed) ++b_->replayed;
  if (a.status == 201) {
    // The latency from the write; the clock read now is record_ok's.
    record_ok(sh_, b_, std::move(a.code), Clock::now() - std::chrono::microseconds(a.us));
  } else {
    ++b_->errors[a.error];
    if (sh_->reported.fetch_add(1) < 5) std::cerr << tag_ << ": " << b_->user << ": " << a.error << "\n";
    if (a.error.find("out_of_stock") != std::string::npos) {
      sh_->out_of_stock = true;
      return done();  // nothing left to buy: do not spin
    }
  }
  if (a.closed) return fail("transport: server closed the connection");
  send();
}

void HttpPurchaseClient::fail(const std::string& error) {
  ++b_->transport_errors;
  ++b_->errors[error];
  if (sh_->reported.fetch_add(1) < 5) std::cerr << tag_ << ": " << b_->user << ": " << error << "\n";
  done();
}

void HttpPurchaseClient::done() {
  if (finished_) return;
  finished_ = true;
  conn_->close();
  sh_->running.fetch_sub(1, std::memory_order_release);
}

}  // namespace giftcard::bench

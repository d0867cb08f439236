#include "bench/support/http_load.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <string_view>

namespace giftcard::bench {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

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

HttpPurchaseClient::HttpPurchaseClient(net::io_context& ioc, tcp::endpoint ep, LoadShared* sh, Buyer* b,
                                       std::string tag)
    : sock_(ioc), ep_(ep), sh_(sh), b_(b), tag_(std::move(tag)) {
  body_ = "{\"card_id\":\"" + b->card + "\",\"user_id\":\"" + b->user + "\"}";
  head_ = "POST /api/purchases HTTP/1.1\r\nHost: " + ep.address().to_string() +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body_.size()) +
          "\r\nIdempotency-Key: ";
}

void HttpPurchaseClient::start() {
  sock_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->fail("connect: " + ec.message());
    self->sock_.set_option(tcp::no_delay(true));
    self->send();
  });
}

void HttpPurchaseClient::send() {
  if (sh_->phase.load(std::memory_order_acquire) == 2) return done();
  req_.assign(head_);
  req_ += b_->key_prefix;
  req_ += std::to_string(b_->seq++);
  req_ += "\r\n\r\n";
  req_ += body_;
  t0_ = Clock::now();
  net::async_write(sock_, net::buffer(req_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->fail("write: " + ec.message());
    self->res_ = {};
    http::async_read(self->sock_, self->buf_, self->res_,
                     [self](beast::error_code ec2, size_t) { self->on_response(ec2); });
  });
}

void HttpPurchaseClient::on_response(beast::error_code ec) {
  if (ec) return fail("read: " + ec.message());
  const int status = static_cast<int>(res_.result_int());
  std::string_view body = res_.body();
  auto field = [&](std::string_view name) -> std::string {
    auto k = body.find(name);
    if (k == std::string_view::npos) return "?";
    auto s = k + name.size();
    auto e = body.find('"', s);
    return std::string(body.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s));
  };
  if (res_.find("Idempotent-Replayed") != res_.end()) ++b_->replayed;
  if (status == 201) {
    record_ok(sh_, b_, field("\"code\":\""), t0_);
  } else {
    std::string code = std::to_string(status) + " " + field("\"code\":\"");
    ++b_->errors[code];
    if (sh_->reported.fetch_add(1) < 5) std::cerr << tag_ << ": " << b_->user << ": " << code << "\n";
    if (code.find("out_of_stock") != std::string::npos) {
      sh_->out_of_stock = true;
      return done();  // nothing left to buy: do not spin
    }
  }
  if (!res_.keep_alive()) return fail("server closed the connection");
  send();
}

void HttpPurchaseClient::fail(const std::string& why) {
  ++b_->transport_errors;
  ++b_->errors["transport: " + why];
  if (sh_->reported.fetch_add(1) < 5) std::cerr << tag_ << ": " << b_->user << ": " << why << "\n";
  done();
}

void HttpPurchaseClient::done() {
  if (finished_) return;
  finished_ = true;
  beast::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_both, ec);
  sock_.close(ec);
  sh_->running.fetch_sub(1, std::memory_order_release);
}

}  // namespace giftcard::bench

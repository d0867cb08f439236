// giftcard-http-bench (http_bench.cc): the slow clients of `slow`, slowloris
// connections that send one header byte every few seconds and Server-Sent
// Event viewers that must see every event, in order.
#pragma once

#include "bench/http_bench_load.h"

namespace giftcard_http_bench {

// ------------------------------------------------------------------ slow clients

struct SlowStats {
  std::mutex mu;
  std::vector<double> cuts_s;           // connect to server close, per cut connection
  std::map<std::string, uint64_t> how;  // "408", "eof", ...
  uint64_t connections = 0;
  uint64_t connect_errors = 0;
};

constexpr std::string_view kSlowHeader =
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Padding: "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

// One slowloris slot: a connection that sends one header byte every
// `interval` and never finishes its header. When the server cuts it, the time
// from connect to cut is recorded and the slot connects again.
class Slowloris : public std::enable_shared_from_this<Slowloris> {
 public:
  Slowloris(net::io_context& ioc, tcp::endpoint ep, Clock::duration interval, SlowStats* st)
      : ioc_(ioc), ep_(ep), interval_(interval), st_(st), timer_(ioc) {}

  void start() {
    if (stopping_) return;
    ++gen_;
    sock_.emplace(ioc_);
    sent_ = 0;
    inbox_.clear();
    sock_->async_connect(ep_, [self = shared_from_this(), g = gen_](beast::error_code ec) {
      if (g != self->gen_ || self->stopping_) return;
      if (ec) {
        std::lock_guard lock(self->st_->mu);
        ++self->st_->connect_errors;
        return;
      }
      {
        std::lock_guard lock(self->st_->mu);
        ++self->st_->connections;
      }
      self->connected_ = Clock::now();
      self->open_ = true;
      self->drip(g);
      self->read(g);
    });
  }

  // Age of the current connection if it is still open (on the I/O thread).
  std::optional<double> open_for() const {
    if (!open_) return std::nullopt;
    return secs(Clock::now() - connected_);
  }

  void stop() {
    stopping_ = true;
    ++gen_;
    timer_.cancel();
    if (sock_) {
      beast::error_code ec;
      sock_->close(ec);
    }
    open_ = false;
  }

 private:
  void drip(uint64_t g) {
    if (g != gen_ || !open_) return;
    auto byte = std::make_shared<char>(kSlowHeader[sent_ % kSlowHeader.size()]);
    ++sent_;
    net::async_write(*sock_, net::buffer(byte.get(), 1), [byte](beast::error_code, size_t) {});
    timer_.expires_after(interval_);
    timer_.async_wait([self = shared_from_this(), g](beast::error_code ec) {
      if (!ec) self->drip(g);
    });
  }

  void read(uint64_t g) {
    sock_->async_read_some(net::buffer(rbuf_), [self = shared_from_this(), g](beast::error_code ec, size_t n) {
      if (g != self->gen_) return;
      if (!ec) {
        self->inbox_.append(self->rbuf_.data(), n);
        return self->read(g);  // read on until the server closes
      }
      self->on_cut();
    });
  }

  void on_cut() {
    double took = secs(Clock::now() - connected_);
    std::string how = "eof";
    if (inbox_.rfind("HTTP/1.1 ", 0) == 0) how = inbox_.substr(9, 3);
    {
      std::lock_guard lock(st_->mu);
      st_->cuts_s.push_back(took);
      ++st_->how[how];
    }
    open_ = false;
    timer_.cancel();
    beast::error_code ec;
    sock_->close(ec);
    start();  // as an attacker would: connect again
  }

  net::io_context& ioc_;
  tcp::endpoint ep_;
  Clock::duration interval_;
  SlowStats* st_;
  net::steady_timer timer_;
  std::optional<tcp::socket> sock_;
  std::array<char, 1024> rbuf_{};
  std::string inbox_;
  size_t sent_ = 0;
  uint64_t gen_ = 0;
  bool open_ = false;
  bool stopping_ = false;
  Clock::time_point connected_;
};

// One Server-Sent-Events viewer: reads everything as fast as it comes and
// checks that the event ids are consecutive.
class SseViewer : public std::enable_shared_from_this<SseViewer> {
 public:
  SseViewer(net::io_context& ioc, tcp::endpoint ep) : sock_(ioc), ep_(ep), buf_(64 * 1024) {}

  void start() {
    sock_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        self->error = "connect: " + ec.message();
        self->ended = true;
        return;
      }
      self->req_ = "GET /api/events/stream HTTP/1.1\r\nHost: " + self->ep_.address().to_string() +
                   "\r\nAccept: text/event-stream\r\n\r\n";
      net::async_write(self->sock_, net::buffer(self->req_), [self](beast::error_code ec2, size_t) {
        if (ec2) {
          self->error = "write: " + ec2.message();
          self->ended = true;
          return;
        }
        self->read();
      });
    });
  }

  void stop() {
    stopping_ = true;
    beast::error_code ec;
    sock_.close(ec);
  }

  // Written by the I/O thread; read by main (atomics).
  std::atomic<int> status{0};
  std::atomic<int64_t> first_id{-1}, last_id{-1};
  std::atomic<uint64_t> events{0}, gaps{0}, bytes{0};
  std::atomic<bool> ended{false};
  std::string error;  // set before `ended`

 private:
  void read() {
    sock_.async_read_some(net::buffer(buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) {
        if (!self->stopping_) self->error = "server closed the stream: " + ec.message();
        self->ended = true;
        return;
      }
      self->bytes += n;
      self->consume(std::string_view(self->buf_.data(), n));
      self->read();
    });
  }

  void consume(std::string_view data) {
    if (!in_body_) {
      head_.append(data);
      auto end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (head_.rfind("HTTP/1.1 ", 0) == 0) status = std::atoi(head_.c_str() + 9);
      in_body_ = true;
      std::string rest = head_.substr(end + 4);
      head_.clear();
      return consume_body(rest);
    }
    consume_body(data);
  }

  void consume_body(std::string_view data) {
    while (!data.empty()) {
      auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(data);
        return;
      }
      std::string_view line = data.substr(0, nl);
      if (!line_.empty()) {
        line_.append(line);
        on_line(line_);
        line_.clear();
      } else {
        on_line(line);
      }
      data.remove_prefix(nl + 1);
    }
  }

  void on_line(std::string_view line) {
    if (line.size() < 4 || line.substr(0, 4) != "id: ") return;
    int64_t id = std::atoll(std::string(line.substr(4)).c_str());
    int64_t last = last_id.load(std::memory_order_relaxed);
    if (last >= 0 && id != last + 1) ++gaps;
    if (first_id.load(std::memory_order_relaxed) < 0) first_id = id;
    last_id.store(id, std::memory_order_release);
    events.fetch_add(1, std::memory_order_relaxed);
  }

  tcp::socket sock_;
  tcp::endpoint ep_;
  std::vector<char> buf_;
  std::string req_, head_, line_;
  bool in_body_ = false;
  bool stopping_ = false;
};

class SlowClients {
 public:
  SlowClients(const ServerProcess& server, const SlowOpts& o) : o_(o) {
    tcp::endpoint ep(net::ip::make_address(server.http().host), server.http().port);
    auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.slow_interval));
    for (int i = 0; i < o.slowloris; ++i) slow_.push_back(std::make_shared<Slowloris>(ioc_, ep, interval, &stats_));
    for (int i = 0; i < o.viewers; ++i) viewers_.push_back(std::make_shared<SseViewer>(ioc_, ep));
  }

  // Connects everything; true once every viewer has its 200 and every
  // slowloris is connected.
  bool start(std::string* error) {
    started_ = Clock::now();
    for (auto& s : slow_) s->start();
    for (auto& v : viewers_) v->start();
    thread_ = std::thread([this] {
      auto guard = net::make_work_guard(ioc_);
      ioc_.run();
    });
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      int ready = 0;
      for (auto& v : viewers_) ready += v->status.load() == 200;
      uint64_t conns;
      {
        std::lock_guard lock(stats_.mu);
        conns = stats_.connections;
      }
      if (ready == o_.viewers && conns >= static_cast<uint64_t>(o_.slowloris)) return true;
      if (Clock::now() > deadline) {
        *error = std::to_string(ready) + "/" + std::to_string(o_.viewers) + " viewers and " +
                 std::to_string(conns) + "/" + std::to_string(o_.slowloris) +
                 " slowloris connections up after 10 s";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // After the load: waits until every viewer has seen `head`, and until the
  // first connection of every slowloris slot had time to be cut; then stops
  // everything and reports.
  void finish(int64_t head, json* out, std::vector<std::string>* problems) {
    auto t0 = Clock::now();
    auto caught_up = [&] {
      for (auto& v : viewers_)
        if (!v->ended && v->last_id.load() < head) return false;
      return true;
    };
    while (!caught_up() && Clock::now() - t0 < std::chrono::seconds(30))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    double catch_up_s = secs(Clock::now() - t0);
    // Every slot's first connection must have been cut by now (or be younger
    // than the limit): wait until cut_limit + 1 s after the start at least.
    auto first_gen_end = started_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o_.cut_limit + 1));
    while (Clock::now() < first_gen_end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t survivors = 0;
    double oldest = 0;
    std::promise<void> aged;
    net::post(ioc_, [&] {
      for (auto& s : slow_)
        if (auto age = s->open_for()) {
          oldest = std::max(oldest, *age);
          if (*age > o_.cut_limit) ++survivors;
        }
      aged.set_value();
    });
    aged.get_future().wait();
    // ---- SSE report (before stopping: `ended` means the server closed it)
    json sse;
    uint64_t emin = std::numeric_limits<uint64_t>::max(), emax = 0, gaps = 0, bytes = 0, ended = 0;
    int64_t lag_max = 0;
    for (auto& v : viewers_) {
      emin = std::min<uint64_t>(emin, v->events.load());
      emax = std::max<uint64_t>(emax, v->events.load());
      gaps += v->gaps.load();
      bytes += v->bytes.load();
      if (v->ended) ++ended;
      lag_max = std::max<int64_t>(lag_max, head - v->last_id.load());
    }
    sse["viewers"] = o_.viewers;
    sse["events_min"] = viewers_.empty() ? 0 : emin;
    sse["events_max"] = emax;
    sse["bytes_total"] = bytes;
    sse["gaps"] = gaps;
    sse["closed_by_server"] = ended;
    sse["behind_head_max"] = lag_max;
    sse["catch_up_s"] = round_to(catch_up_s, 0.001);
    (*out)["sse"] = sse;
    if (gaps) problems->push_back("SSE viewers saw " + std::to_string(gaps) + " gap(s) in the event ids");
    if (ended) {
      std::string why;
      for (auto& v : viewers_)
        if (v->ended) why = v->error;
      problems->push_back(std::to_string(ended) + " SSE viewer(s) were disconnected: " + why);
    }
    if (lag_max > 0) problems->push_back("an SSE viewer is " + std::to_string(lag_max) + " events behind the log after 30 s");

    for (auto& s : slow_) net::post(ioc_, [s] { s->stop(); });
    for (auto& v : viewers_) net::post(ioc_, [v] { v->stop(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ioc_.stop();
    thread_.join();

    json sl;
    std::lock_guard lock(stats_.mu);
    std::vector<double> cuts = stats_.cuts_s;
    std::sort(cuts.begin(), cuts.end());
    sl["slots"] = o_.slowloris;
    sl["interval_s"] = o_.slow_interval;
    sl["connections"] = stats_.connections;
    sl["connect_errors"] = stats_.connect_errors;
    sl["cut"] = cuts.size();
    sl["cut_s_min"] = cuts.empty() ? 0.0 : round_to(cuts.front(), 0.001);
    sl["cut_s_median"] = cuts.empty() ? 0.0 : round_to(cuts[cuts.size() / 2], 0.001);
    sl["cut_s_max"] = cuts.empty() ? 0.0 : round_to(cuts.back(), 0.001);
    sl["answered"] = stats_.how;
    sl["open_past_limit"] = survivors;
    sl["oldest_open_s"] = round_to(oldest, 0.001);
    sl["cut_limit_s"] = o_.cut_limit;
    (*out)["slowloris"] = sl;
    if (o_.slowloris > 0 && cuts.size() < static_cast<size_t>(o_.slowloris))
      problems->push_back("only " + std::to_string(cuts.size()) + " of " + std::to_string(o_.slowloris) +
                          " stalled headers were cut");
    if (!cuts.empty() && cuts.back() > o_.cut_limit)
      problems->push_back("a stalled header was cut only after " + std::to_string(cuts.back()) + " s");
    if (survivors) problems->push_back(std::to_string(survivors) + " stalled connection(s) open longer than " +
                                       std::to_string(o_.cut_limit) + " s");
    if (stats_.connect_errors) problems->push_back(std::to_string(stats_.connect_errors) + " slowloris connect error(s)");
  }

 private:
  SlowOpts o_;
  net::io_context ioc_{1};
  std::thread thread_;
  SlowStats stats_;
  std::vector<std::shared_ptr<Slowloris>> slow_;
  std::vector<std::shared_ptr<SseViewer>> viewers_;
  Clock::time_point started_;
};

}  // namespace giftcard_http_bench

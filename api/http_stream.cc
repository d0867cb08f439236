// A connection turned into an event stream (Responder::stream): the
// response head, then every frame pushed to its StreamSink, written in
// batches under a stall timer; a client that reads too slowly is cut.
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <sstream>

#include "api/http_session.h"

namespace giftcard {

void Session::start_stream(const std::shared_ptr<HttpResponse>& head) {
  streaming_ = true;
  // Status line and headers only; the body is the frames that follow.
  auto text = std::make_shared<std::string>();
  {
    std::ostringstream os;
    os << head->base();
    *text = os.str();
  }
  pending_ += text->size();
  push(text);
  // A read that completes only when the client goes away.
  stream_.expires_never();
  auto buf = std::make_shared<std::array<char, 256>>();
  watch_close(buf);
}

void Session::push(std::shared_ptr<const std::string> frame) {
  if (closed_) {
    pending_ -= frame->size();
    return;
  }
  if (queue_.size() >= srv_->limits.max_stream_backlog) {  // too slow
    pending_ -= frame->size();
    return cut();
  }
  queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void Session::cut() {
  if (closed_) return;
  cut_ = true;
  ++srv_->cut_streams;
  close();
}

void Session::watch_close(const std::shared_ptr<std::array<char, 256>>& buf) {
  socket().async_read_some(net::buffer(*buf),
                           [self = shared_from_this(), buf](beast::error_code ec, size_t) {
                             if (ec) return self->close();
                             self->watch_close(buf);  // ignore anything the client sends
                           });
}

// Writes what is queued (several frames at once), under the stall timer:
// a write that has not completed within stream_stall_timeout cuts the client.
void Session::write_next() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    stall_timer_.cancel();
    return;
  }
  writing_ = true;
  auto batch = std::make_shared<std::vector<std::shared_ptr<const std::string>>>();
  std::vector<net::const_buffer> bufs;
  size_t bytes = 0;
  while (!queue_.empty() && batch->size() < 64 && bytes < (256u << 10)) {
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
    bufs.emplace_back(batch->back()->data(), batch->back()->size());
    bytes += batch->back()->size();
  }
  const uint64_t gen = ++write_gen_;
  stall_timer_.expires_after(srv_->limits.stream_stall_timeout);
  stall_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
    if (ec || gen != self->write_gen_ || !self->writing_) return;
    self->cut();  // the write did not complete in time
  });
  net::async_write(socket(), bufs,
                   [self = shared_from_this(), batch, bytes](beast::error_code ec, size_t) {
                     self->pending_ -= bytes;
                     if (ec) return self->close();
                     self->write_next();
                   });
}

class SessionSink final : public StreamSink {
 public:
  explicit SessionSink(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  void push(std::shared_ptr<const std::string> frame) override {
    if (s_->closed_ || !frame) return;
    const size_t n = frame->size();
    const size_t before = s_->pending_.fetch_add(n);
    // Past the bound: cut. (A lone frame may be larger than the bound.)
    if (before > 0 && before + n > s_->srv_->limits.max_stream_pending_bytes) {
      s_->pending_ -= n;
      net::post(s_->stream_.get_executor(), [s = s_] { s->cut(); });
      return;
    }
    net::post(s_->stream_.get_executor(),
              [s = s_, f = std::move(frame)]() mutable { s->push(std::move(f)); });
  }
  bool closed() const override { return s_->closed_.load(); }
  size_t pending_bytes() const override { return s_->pending_.load(); }
  bool cut() const override { return s_->cut_.load(); }

 private:
  std::shared_ptr<Session> s_;
};

std::shared_ptr<StreamSink> make_stream_sink(std::shared_ptr<Session> s) {
  return std::make_shared<SessionSink>(std::move(s));
}

}  // namespace giftcard

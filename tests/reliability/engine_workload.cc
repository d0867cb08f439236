#include "tests/reliability/engine_workload.h"

#include <boost/test/unit_test.hpp>
#include <random>

#include "actors/errors.h"

namespace giftcard::reliability {

namespace {
std::string card_name(int i) { return "pl" + std::to_string(i); }
std::string user_name(int i) { return "w" + std::to_string(i); }

template <class T>
void settle(const caf::expected<T>& r, Call* call) {
  if (r) {
    call->outcome = Call::Outcome::ok;
    call->status = 201;
    return;
  }
  Errc e = errc_of(r.error());
  call->status = static_cast<int>(e);
  call->error = std::string(to_string(e));
  call->outcome = (e == Errc::storage_unavailable || e == Errc::unavailable ||
                   e == Errc::storage_corruption)
                      ? Call::Outcome::info
                      : Call::Outcome::fail;
}
}  // namespace

void engine_call(test::ShopFixture& fix, Call* call) {
  if (call->kind == Call::Kind::purchase) {
    auto r = fix.purchase(call->card, call->user, call->key);
    settle(r, call);
    if (r) {
      call->position = r->position;
      call->purchase_id = r->purchase_id;
      call->code = r->code;
      call->body = r->purchase_id + "|" + r->code + "|" + std::to_string(r->position) + "|" +
                   std::to_string(r->purchased_at);
    }
  } else {
    auto r = fix.credit(call->user, call->amount, call->key);
    settle(r, call);
    if (r) {
      call->position = r->position;
      call->body = r->user_id + "|" + std::to_string(r->balance) + "|" +
                   std::to_string(r->position);
    }
  }
}

void resolve_infos(test::ShopFixture& fix, History* history) {
  std::vector<Call> acked_retries;
  for (auto& call : history->calls()) {
    if (call.outcome != Call::Outcome::info || call.retried) continue;
    Call retry = call;
    retry.body.clear();
    engine_call(fix, &retry);
    call.retried = true;
    call.retry_outcome = retry.outcome;
    call.retry_status = retry.status;
    if (retry.outcome == Call::Outcome::ok) acked_retries.push_back(std::move(retry));
  }
  for (auto& r : acked_retries) history->add(std::move(r));
}

void set_up_engine_shop(test::ShopFixture& fix, const EngineLoadConfig& cfg, int codes) {
  for (int c = 0; c < cfg.cards; ++c) {
    BOOST_REQUIRE(fix.create_card(card_name(c), cfg.price));
    BOOST_REQUIRE(fix.add_codes(card_name(c), test::ShopFixture::codes("S" + card_name(c), codes)));
  }
  for (int u = 0; u < cfg.users; ++u)
    BOOST_REQUIRE(fix.credit(user_name(u), 1'000'000'000, "seed-" + user_name(u)));
}

void top_up_engine_codes(test::ShopFixture& fix, const EngineLoadConfig& cfg, int round,
                         int64_t low, int add) {
  for (int c = 0; c < cfg.cards; ++c) {
    auto view = fix.card(card_name(c));
    if (!view) BOOST_FAIL("card view: " << to_string(errc_of(view.error())));
    if (view->available >= low) continue;
    auto added = fix.add_codes(
        card_name(c), test::ShopFixture::codes("R" + std::to_string(round) + card_name(c), add));
    if (!added) BOOST_FAIL("add codes: " << to_string(errc_of(added.error())));
  }
}

EngineLoad::EngineLoad(test::ShopFixture& fix, const EngineLoadConfig& cfg, History* history,
                       uint64_t seed, std::string tag)
    : fix_(fix), cfg_(cfg), history_(history), seed_(seed), tag_(std::move(tag)) {}

void EngineLoad::start() {
  std::mt19937_64 g(seed_);
  for (int i = 0; i < cfg_.threads; ++i)
    threads_.emplace_back([this, i, s = g()] {
      std::mt19937_64 rng(s);
      int64_t n = 0;
      while (!stop_) {
        Call call;
        call.user = user_name(static_cast<int>(rng() % static_cast<uint64_t>(cfg_.users)));
        call.key = tag_ + "-t" + std::to_string(i) + "-" + std::to_string(++n);
        if (rng() % 10 < 7) {
          call.kind = Call::Kind::purchase;
          call.card = card_name(static_cast<int>(rng() % static_cast<uint64_t>(cfg_.cards)));
        } else {
          call.kind = Call::Kind::credit;
          call.amount = cfg_.credit;
        }
        engine_call(fix_, &call);
        if (call.outcome == Call::Outcome::ok) ++acked_;
        history_->add(std::move(call));
      }
    });
}

void EngineLoad::stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace giftcard::reliability

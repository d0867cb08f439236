// An in-process shop for actor tests: a store (memory or RocksDB in a temp
// dir), a ShopContext, an actor system and the shop, plus blocking helpers.
#pragma once

#include <caf/all.hpp>
#include <filesystem>
#include <memory>

#include "actors/errors.h"
#include "actors/query_pool.h"
#include "actors/shop_actor.h"
#include "store/event_store.h"
#include "store/rocks_event_store.h"
#include "tests/support/replies.h"  // err(), what(), same_purchase()

namespace giftcard::test {

std::string temp_dir(const std::string& tag);

class ShopFixture {
 public:
  enum class Backend { memory, rocks };
  // An empty `dir` with Backend::rocks makes a fresh temp dir.
  explicit ShopFixture(Backend backend = Backend::memory, std::string dir = {},
                       ShopConfig config = {});
  // A RocksDB store opened with these options (e.g. a fault-injecting env).
  explicit ShopFixture(const StoreOptions& rocks, ShopConfig config = {});
  ~ShopFixture();

  // Drains and stops the shop and closes the store (idempotent).
  void stop();

  caf::actor_system& sys() { return *sys_; }
  shop_actor shop() const { return caf::actor_cast<shop_actor>(shop_); }
  EventStore* store() { return store_.get(); }
  ShopContext& ctx() { return *ctx_; }
  // The shop's query pool (made here from the config's query_threads and
  // max_queued_queries, as serve does): a test may block it with jobs of its own.
  QueryPool& queries() { return *queries_; }
  const std::string& dir() const { return dir_; }

  // Blocking calls (10 s timeout).
  caf::expected<CardInfo> create_card(const std::string& id, int64_t price, int64_t value = 0);
  caf::expected<AddCodesReply> add_codes(const std::string& card, std::vector<CodeSpec> codes);
  caf::expected<CreditReply> credit(const std::string& user, int64_t amount,
                                    const std::string& key);
  caf::expected<Purchase> purchase(const std::string& card, const std::string& user,
                                   const std::string& key);
  caf::expected<int64_t> revoke(const std::string& card, const std::string& code);
  // Queries read the projections; `after` defaults to the log's head, so a
  // test reads its own writes.
  caf::expected<WalletView> wallet(const std::string& user, int64_t after = -1);
  caf::expected<CardInfo> card(const std::string& id, int64_t after = -1);
  caf::expected<Purchase> lookup(const std::string& purchase_id, int64_t after = -1);
  // All of a user's purchases / all cards: every page, kMaxPageLimit a call.
  caf::expected<std::vector<Purchase>> history(const std::string& user, int64_t after = -1);
  caf::expected<std::vector<CardInfo>> cards(int64_t after = -1);
  // One page, arguments as given (but `after` < 0: the log's head).
  caf::expected<PurchasePage> history_page(const std::string& user, int64_t from, int64_t limit,
                                           int64_t after = -1);
  caf::expected<CardPage> cards_page(const std::string& from, int64_t limit, int64_t after = -1);
  ProjectionDb& projections() { return *projections_; }

  // n codes "<prefix>-000001"...
  static std::vector<CodeSpec> codes(const std::string& prefix, int n, Micros expires_at = 0);

 private:
  template <class R, class... Ts>
  caf::expected<R> call(Ts&&... xs);
  void start(ShopConfig config);
  int64_t head(int64_t after) const { return after >= 0 ? after : store_->LastPosition(); }

  Backend backend_;
  std::string dir_;
  bool own_dir_ = false;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<ProjectionDb> projections_;
  std::unique_ptr<QueryPool> queries_;
  std::unique_ptr<ShopContext> ctx_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  shop_internal_actor shop_;
  bool stopped_ = false;
};

}  // namespace giftcard::test

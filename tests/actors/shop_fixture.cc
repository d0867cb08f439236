#include "shop_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "store/memory_event_store.h"
#include "store/rocks_event_store.h"

namespace giftcard::test {

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto p = std::filesystem::temp_directory_path() /
           ("gc-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  std::filesystem::remove_all(p);
  return p.string();
}

ShopFixture::ShopFixture(Backend backend, std::string dir, ShopConfig config)
    : backend_(backend), dir_(std::move(dir)) {
  if (backend == Backend::memory) {
    store_ = NewMemoryEventStore();
  } else {
    if (dir_.empty()) {
      dir_ = temp_dir("shop");
      own_dir_ = true;
    }
    StoreOptions so;
    so.path = dir_;
    Status s = OpenRocksEventStore(so, &store_);
    if (!s.ok()) throw std::runtime_error("cannot open store: " + s.ToString());
  }
  start(std::move(config));
}

ShopFixture::ShopFixture(const StoreOptions& rocks, ShopConfig config)
    : backend_(Backend::rocks), dir_(rocks.path) {
  Status s = OpenRocksEventStore(rocks, &store_);
  if (!s.ok()) throw std::runtime_error("cannot open store: " + s.ToString());
  start(std::move(config));
}

void ShopFixture::start(ShopConfig config) {
  if (Status s = ProjectionDb::Open(store_.get(), &projections_); !s.ok())
    throw std::runtime_error("cannot open projections: " + s.ToString());
  ctx_ = std::make_unique<ShopContext>();
  ctx_->store = store_.get();
  ctx_->projections = projections_.get();
  ctx_->config = std::move(config);
  queries_ = std::make_unique<QueryPool>(ctx_->config.query_threads,
                                         ctx_->config.max_queued_queries);
  ctx_->queries = queries_.get();
  cfg_ = std::make_unique<caf::actor_system_config>();
  register_message_types(*cfg_);
  cfg_->set("logger.console", caf::atom("none"));
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  shop_ = spawn_shop(*sys_, ctx_.get());
}

ShopFixture::~ShopFixture() {
  stop();
  if (own_dir_) std::filesystem::remove_all(dir_);
}

void ShopFixture::stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    caf::scoped_actor self{*sys_};
    self->request(shop_, std::chrono::seconds(30), DrainMsg{})
        .receive([](bool) {}, [](caf::error&) {});
    self->send_exit(shop_, caf::exit_reason::user_shutdown);
  }
  shop_ = nullptr;
  // Queued queries are dropped (the shop answers them "shutting down" as it
  // exits); running ones finish. Before the system goes: jobs message the shop.
  queries_->stop();
  sys_.reset();  // waits for every actor
  store_->Close();
}

template <class R, class... Ts>
caf::expected<R> ShopFixture::call(Ts&&... xs) {
  caf::scoped_actor self{*sys_};
  caf::expected<R> out{make_error(Errc::unavailable, "no reply")};
  self->request(shop(), std::chrono::seconds(10), std::forward<Ts>(xs)...)
      .receive([&](R& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

caf::expected<CardInfo> ShopFixture::create_card(const std::string& id, int64_t price,
                                                 int64_t value) {
  return call<CardInfo>(create_atom::value,
                        CardSpec{id, "Card " + id, price, value ? value : price});
}
caf::expected<AddCodesReply> ShopFixture::add_codes(const std::string& card,
                                                    std::vector<CodeSpec> codes) {
  return call<AddCodesReply>(add_codes_atom::value, card, std::move(codes));
}
caf::expected<CreditReply> ShopFixture::credit(const std::string& user, int64_t amount,
                                               const std::string& key) {
  return call<CreditReply>(credit_atom::value, user, amount, key);
}
caf::expected<Purchase> ShopFixture::purchase(const std::string& card, const std::string& user,
                                              const std::string& key) {
  return call<Purchase>(purchase_atom::value, card, user, key);
}
caf::expected<int64_t> ShopFixture::revoke(const std::string& card, const std::string& code) {
  return call<int64_t>(revoke_atom::value, card, code);
}
caf::expected<WalletView> ShopFixture::wallet(const std::string& user, int64_t after) {
  return call<WalletView>(wallet_atom::value, user, head(after));
}
caf::expected<CardInfo> ShopFixture::card(const std::string& id, int64_t after) {
  return call<CardInfo>(card_atom::value, id, head(after));
}
caf::expected<Purchase> ShopFixture::lookup(const std::string& purchase_id, int64_t after) {
  return call<Purchase>(lookup_atom::value, purchase_id, head(after));
}
caf::expected<std::vector<Purchase>> ShopFixture::history(const std::string& user, int64_t after) {
  std::vector<Purchase> out;
  const int64_t at = head(after);
  for (int64_t from = 0;;) {
    auto page = history_page(user, from, kMaxPageLimit, at);
    if (!page) return std::move(page.error());
    for (auto& p : page->purchases) out.push_back(std::move(p));
    if (page->next == 0) return out;
    from = page->next;
  }
}
caf::expected<std::vector<CardInfo>> ShopFixture::cards(int64_t after) {
  std::vector<CardInfo> out;
  const int64_t at = head(after);
  for (std::string from;;) {
    auto page = cards_page(from, kMaxPageLimit, at);
    if (!page) return std::move(page.error());
    for (auto& c : page->cards) out.push_back(std::move(c));
    if (page->next.empty()) return out;
    from = page->next;
  }
}
caf::expected<PurchasePage> ShopFixture::history_page(const std::string& user, int64_t from,
                                                      int64_t limit, int64_t after) {
  return call<PurchasePage>(history_atom::value, user, from, limit, head(after));
}
caf::expected<CardPage> ShopFixture::cards_page(const std::string& from, int64_t limit,
                                                int64_t after) {
  return call<CardPage>(cards_atom::value, from, limit, head(after));
}

std::vector<CodeSpec> ShopFixture::codes(const std::string& prefix, int n, Micros expires_at) {
  std::vector<CodeSpec> out;
  char buf[32];
  for (int i = 1; i <= n; ++i) {
    std::snprintf(buf, sizeof buf, "-%06d", i);
    out.push_back(CodeSpec{prefix + buf, expires_at});
  }
  return out;
}

}  // namespace giftcard::test

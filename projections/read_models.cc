#include "projections/read_models.h"

#include "store/log_scanner.h"

namespace giftcard {
namespace {

struct Folder {
  ReadModels& m;
  const StoredEvent& e;
  void operator()(const CardCreated& x) {
    CardView& c = m.cards[x.card_id];
    c.id = x.card_id;
    c.name = x.name;
    c.price = x.price;
    c.value = x.value;
  }
  void operator()(const CodesAdded& x) {
    if (auto it = m.cards.find(x.card_id); it != m.cards.end())
      it->second.available += static_cast<int64_t>(x.codes.size());
  }
  void sold(const CodeAssigned& x) {
    if (auto it = m.cards.find(x.card_id); it != m.cards.end()) {
      --it->second.available;
      ++it->second.assigned;
      ++it->second.sold;
      it->second.revenue += x.price;
    }
  }
  void operator()(const CodeAssigned& x) {
    sold(x);
    m.purchases[x.purchase_id] = PurchaseView{x.purchase_id, x.card_id,     x.user_id, x.code,
                                              x.price,       e.recorded_at, e.position};
    m.user_purchases[x.user_id].push_back(x.purchase_id);
  }
  // An event the caller gives away (replay): its strings move into the view.
  void operator()(CodeAssigned& x) {
    sold(x);
    m.user_purchases[x.user_id].push_back(x.purchase_id);
    PurchaseView& p = m.purchases[x.purchase_id];
    p.purchase_id = std::move(x.purchase_id);
    p.card_id = std::move(x.card_id);
    p.user_id = std::move(x.user_id);
    p.code = std::move(x.code);
    p.price = x.price;
    p.purchased_at = e.recorded_at;
    p.position = e.position;
  }
  void operator()(const CodeRevoked& x) {
    if (auto it = m.cards.find(x.card_id); it != m.cards.end()) {
      --it->second.available;
      ++it->second.revoked;
    }
  }
  void operator()(const CodesExpired& x) {
    if (auto it = m.cards.find(x.card_id); it != m.cards.end()) {
      auto n = static_cast<int64_t>(x.codes.size());
      it->second.available -= n;
      it->second.expired += n;
    }
  }
  void operator()(const WalletCredited& x) { m.balances[x.user_id] += x.amount; }
  void operator()(const WalletDebited& x) { m.balances[x.user_id] -= x.amount; }
};

template <class Map, class Describe>
std::string map_difference(const char* what, const Map& a, const Map& b, Describe describe) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) return std::string(what) + " " + k + " is only on the left";
    if (!(it->second == v))
      return std::string(what) + " " + k + " differs: " + describe(v) + " vs " +
             describe(it->second);
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) return std::string(what) + " " + k + " is only on the right";
  return {};
}

std::string card_text(const CardView& c) {
  return "available " + std::to_string(c.available) + " assigned " + std::to_string(c.assigned) +
         " expired " + std::to_string(c.expired) + " revoked " + std::to_string(c.revoked) +
         " sold " + std::to_string(c.sold) + " revenue " + std::to_string(c.revenue);
}

}  // namespace

std::string first_difference(const ReadModels& a, const ReadModels& b) {
  if (a.position != b.position)
    return "position " + std::to_string(a.position) + " vs " + std::to_string(b.position);
  if (auto d = map_difference("wallet", a.balances, b.balances,
                              [](int64_t v) { return std::to_string(v); });
      !d.empty())
    return d;
  if (auto d = map_difference("card", a.cards, b.cards, card_text); !d.empty()) return d;
  if (auto d = map_difference("purchase", a.purchases, b.purchases,
                              [](const PurchaseView& p) {
                                return p.card_id + "/" + p.user_id + " price " +
                                       std::to_string(p.price) + " at " +
                                       std::to_string(p.position);
                              });
      !d.empty())
    return d;
  if (auto d = map_difference("purchases of user", a.user_purchases, b.user_purchases,
                              [](const std::vector<std::string>& v) {
                                return std::to_string(v.size()) + " purchase(s)";
                              });
      !d.empty())
    return d;
  if (a.recorded_at != b.recorded_at) return "recorded_at differs";
  return {};
}

Status apply(ReadModels& m, const StoredEvent& e) {
  if (e.position <= m.position) return Status::OK();  // already applied
  Event ev;
  if (Status s = e.decode(&ev); !s.ok())
    return Status::Corruption("position " + std::to_string(e.position) + ": " + s.message());
  apply(m, e, ev);
  return Status::OK();
}

void apply(ReadModels& m, const StoredEvent& e, const Event& ev) {
  if (e.position <= m.position) return;
  std::visit(Folder{m, e}, ev);
  m.position = e.position;
  m.recorded_at = e.recorded_at;
}

void apply(ReadModels& m, const StoredEvent& e, Event&& ev) {
  if (e.position <= m.position) return;
  std::visit(Folder{m, e}, ev);  // ev is an lvalue here: the CodeAssigned& overload moves
  m.position = e.position;
  m.recorded_at = e.recorded_at;
}

Status replay_log(EventStore* store, int64_t to, std::optional<Micros> at, ReadModels* m,
                  const std::function<void(int64_t)>& progress) {
  *m = ReadModels{};
  LogScanner scanner(store, {.from = 1, .to = to, .page = 8192, .decode = true});
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  for (;;) {
    if (Status s = scanner.Next(&page, &decoded); !s.ok() || page.empty()) return s;
    for (size_t i = 0; i < page.size(); ++i) {
      if (at && page[i].recorded_at > *at) return Status::OK();
      apply(*m, page[i], std::move(decoded[i]));
      if (progress && m->position % 1000000 == 0) progress(m->position);
    }
  }
}

}  // namespace giftcard

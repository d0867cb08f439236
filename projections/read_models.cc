#include "projections/read_models.h"

#include "projections/read_models_fold.h"
#include "store/log_scanner.h"

namespace giftcard {
namespace {

// The containers of ReadModels, for fold_event() (projections/read_models_fold.h).
struct MapFold {
  ReadModels& m;
  using Purchase = PurchaseView;
  int64_t position() const { return m.position; }
  void advance(const StoredEvent& e) {
    m.position = e.position;
    m.recorded_at = e.recorded_at;
  }
  CardView& card(const std::string& id) { return m.cards[id]; }
  CardView* find_card(const std::string& id) { return find_value(m.cards, id); }
  int64_t& balance(const std::string& user) { return m.balances[user]; }
  static std::string keep(std::string&& s) { return std::move(s); }
  static std::string keep(const std::string& s) { return s; }
  void add_purchase(PurchaseView&& p) {
    m.user_purchases[p.user_id].push_back(p.purchase_id);
    PurchaseView& slot = m.purchases[p.purchase_id];
    slot = std::move(p);
  }
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
  MapFold f{m};
  fold_event(f, e, ev);
}

void apply(ReadModels& m, const StoredEvent& e, Event&& ev) {
  MapFold f{m};
  fold_event(f, e, ev);  // ev is an lvalue of type Event here: its strings are moved
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

#include "projections/read_models.h"

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
  void operator()(const CodeAssigned& x) {
    if (auto it = m.cards.find(x.card_id); it != m.cards.end()) {
      --it->second.available;
      ++it->second.assigned;
      ++it->second.sold;
      it->second.revenue += x.price;
    }
    m.purchases[x.purchase_id] =
        PurchaseView{x.purchase_id, x.card_id, x.user_id, x.code, x.price, e.recorded_at, e.position};
    m.user_purchases[x.user_id].push_back(x.purchase_id);
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

}  // namespace

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

}  // namespace giftcard

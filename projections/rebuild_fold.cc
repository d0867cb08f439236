#include "projections/rebuild_fold.h"

#include <algorithm>

#include "projections/read_models_fold.h"
#include "store/log_scanner.h"

namespace giftcard {
namespace {
std::string_view sv(absl::string_view s) { return {s.data(), s.size()}; }
}  // namespace

void RebuildModels::Purchase::view(PurchaseView* out) const {
  out->purchase_id.assign(sv(purchase_id));
  out->card_id.assign(sv(card_id));
  out->user_id.assign(sv(user_id));
  out->code.assign(sv(code));
  out->price = price;
  out->purchased_at = purchased_at;
  out->position = position;
}

// The containers of RebuildModels, for fold_event().
struct RebuildModels::Fold {
  RebuildModels& m;
  using Purchase = RebuildModels::Purchase;
  int64_t position() const { return m.position_; }
  void advance(const StoredEvent& e) {
    m.position_ = e.position;
    m.recorded_at_ = e.recorded_at;
  }
  CardView& card(const std::string& id) { return m.cards_[id]; }
  CardView* find_card(const std::string& id) { return find_value(m.cards_, id); }
  int64_t& balance(const std::string& user) { return m.balances_[user]; }
  absl::string_view keep(std::string_view s) { return m.strings_.add(s); }
  void add_purchase(Purchase&& p) {
    m.purchases_.push_back(p);
    m.latest_.insert_or_assign(p.purchase_id, m.purchases_.size() - 1);
  }
};

Status RebuildModels::FoldLog(EventLog* log, int64_t to,
                              const std::function<void(int64_t)>& progress) {
  if (to <= position_) return Status::OK();
  LogScanner scanner(log, {.from = position_ + 1, .to = to, .page = 8192, .decode = true});
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  Fold f{*this};
  while (position_ < to) {
    if (Status s = scanner.Next(&page, &decoded); !s.ok()) return s;
    if (page.empty()) break;
    for (size_t i = 0; i < page.size(); ++i) {
      if (page[i].position != position_ + 1)
        return Status::Corruption("rebuild: expected position " + std::to_string(position_ + 1) +
                                  ", read " + std::to_string(page[i].position));
      fold_event(f, page[i], decoded[i]);
    }
    if (progress) progress(position_);
  }
  return Status::OK();
}

std::vector<std::pair<std::string_view, int64_t>> RebuildModels::balances() const {
  std::vector<std::pair<std::string_view, int64_t>> out;
  out.reserve(balances_.size());
  for (const auto& [user, balance] : balances_) out.emplace_back(user, balance);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<const CardView*> RebuildModels::cards() const {
  std::vector<std::pair<std::string_view, const CardView*>> by_id;
  by_id.reserve(cards_.size());
  for (const auto& [id, card] : cards_) by_id.emplace_back(id, &card);
  std::sort(by_id.begin(), by_id.end());
  std::vector<const CardView*> out;
  out.reserve(by_id.size());
  for (const auto& [id, card] : by_id) out.push_back(card);
  return out;
}

std::vector<const RebuildModels::Purchase*> RebuildModels::purchases_by_id() const {
  std::vector<const Purchase*> out;
  out.reserve(latest_.size());
  for (const auto& [id, index] : latest_) out.push_back(&purchases_[index]);
  std::sort(out.begin(), out.end(), [](const Purchase* a, const Purchase* b) {
    return sv(a->purchase_id) < sv(b->purchase_id);
  });
  return out;
}

std::vector<const RebuildModels::Purchase*> RebuildModels::purchases_by_user() const {
  // A counting sort: each user's count, the users in order, then every
  // purchase placed at its user's next slot (log order within a user).
  struct User {
    std::string_view id;
    size_t count = 0, next = 0;
  };
  std::vector<User> users;
  absl::flat_hash_map<absl::string_view, size_t> index;
  std::vector<size_t> user_of;
  user_of.reserve(purchases_.size());
  for (const Purchase& p : purchases_) {
    auto [it, fresh] = index.try_emplace(p.user_id, users.size());
    if (fresh) users.push_back({sv(p.user_id)});
    ++users[it->second].count;
    user_of.push_back(it->second);
  }
  std::vector<size_t> order(users.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return users[a].id < users[b].id; });
  size_t offset = 0;
  for (size_t u : order) {
    users[u].next = offset;
    offset += users[u].count;
  }
  std::vector<const Purchase*> out(purchases_.size());
  for (size_t i = 0; i < purchases_.size(); ++i) out[users[user_of[i]].next++] = &purchases_[i];
  return out;
}

}  // namespace giftcard

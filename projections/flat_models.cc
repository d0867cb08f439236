#include "projections/flat_models.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "projections/read_models_fold.h"
#include "store/log_scanner.h"

namespace giftcard {
namespace {

// Sorted (key, value*) pairs of a hash map: the order of ReadModels' maps.
template <class Map>
auto sorted_entries(Map& m) {
  std::vector<std::pair<std::string_view, decltype(&m.begin()->second)>> v;
  v.reserve(m.size());
  for (auto& [k, x] : m) v.emplace_back(std::string_view(k.data(), k.size()), &x);
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return v;
}

// The fold of event i starts loading the slot event i + this will insert.
constexpr size_t kPrefetchAhead = 8;

}  // namespace

absl::string_view StringArena::add(std::string_view s) {
  constexpr size_t kBlock = 1 << 20;
  if (s.empty()) return {};
  if (capacity_ - used_ < s.size()) {
    capacity_ = std::max(kBlock, s.size());
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(capacity_));
    used_ = 0;
  }
  char* p = blocks_.back().get() + used_;
  std::memcpy(p, s.data(), s.size());
  used_ += s.size();
  return {p, s.size()};
}

PurchaseView FlatModels::Purchase::view() const {
  return PurchaseView{std::string(purchase_id),
                      std::string(card_id),
                      std::string(user_id),
                      std::string(code),
                      price,
                      purchased_at,
                      position};
}

// The containers of FlatModels, for fold_event() (projections/read_models_fold.h).
struct FlatModels::Fold {
  FlatModels& m;
  using Purchase = FlatModels::Purchase;
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
    m.by_id_.insert_or_assign(p.purchase_id, m.purchases_.size() - 1);
  }
};

void FlatModels::fold(const StoredEvent& e, Event&& ev) {
  Fold f{*this};
  fold_event(f, e, ev);
}

void FlatModels::prefetch(const Event& ev) const {
  if (const auto* x = std::get_if<CodeAssigned>(&ev)) by_id_.prefetch(x->purchase_id);
}

std::optional<int64_t> FlatModels::balance(std::string_view user) const {
  auto it = balances_.find(absl::string_view(user.data(), user.size()));
  if (it == balances_.end()) return std::nullopt;
  return it->second;
}

void FlatModels::for_each_card(const std::function<void(const CardView&)>& fn) const {
  for (const auto& [id, c] : cards_) fn(c);
}

// Builds each std::map from sorted keys with an end hint: no tree descent.
// The purchases (the largest map) are built on a second thread meanwhile.
ReadModels FlatModels::to_read_models() const {
  ReadModels m;
  m.position = position_;
  m.recorded_at = recorded_at_;
  std::thread purchases([&] {
    std::vector<std::pair<std::string_view, size_t>> ids;
    ids.reserve(by_id_.size());
    for (const auto& [id, index] : by_id_)
      ids.emplace_back(std::string_view(id.data(), id.size()), index);
    std::sort(ids.begin(), ids.end());
    for (const auto& [id, index] : ids)
      m.purchases.emplace_hint(m.purchases.end(), id, purchases_[index].view());
  });
  for (auto& [k, v] : sorted_entries(balances_)) m.balances.emplace_hint(m.balances.end(), k, *v);
  for (auto& [k, v] : sorted_entries(cards_)) m.cards.emplace_hint(m.cards.end(), k, *v);
  {
    // A user's purchase ids in log order (every CodeAssigned, repeats too).
    absl::flat_hash_map<absl::string_view, std::vector<absl::string_view>> by_user;
    for (const Purchase& p : purchases_) by_user[p.user_id].push_back(p.purchase_id);
    for (auto& [user, list] : sorted_entries(by_user))
      m.user_purchases.emplace_hint(m.user_purchases.end(), std::string(user),
                                    std::vector<std::string>(list->begin(), list->end()));
  }
  purchases.join();
  return m;
}

Status replay_log_flat(EventStore* store, int64_t to, std::optional<Micros> at, ReadModels* m,
                       const std::function<void(int64_t)>& progress) {
  FlatModels f;
  LogScanner scanner(store, {.from = 1, .to = to, .page = 8192, .decode = true});
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  Status s;
  for (bool end = false; !end;) {
    if (s = scanner.Next(&page, &decoded); !s.ok() || page.empty()) break;
    for (size_t i = 0; i < page.size(); ++i) {
      if (i + kPrefetchAhead < page.size()) f.prefetch(decoded[i + kPrefetchAhead]);
      if (at && page[i].recorded_at > *at) {
        end = true;
        break;
      }
      f.fold(page[i], std::move(decoded[i]));
      if (progress && f.position() % 1000000 == 0) progress(f.position());
    }
  }
  *m = f.to_read_models();  // as replay_log(): what was folded, also on an error
  return s;
}

}  // namespace giftcard

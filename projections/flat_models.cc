#include "projections/flat_models.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <type_traits>

#include "projections/read_models_fold.h"
#include "store/log_scanner.h"

namespace giftcard {
namespace {

// Sorted (key, value*) pairs of a hash map: the order of ReadModels' maps.
std::string_view view_of(absl::string_view k) { return {k.data(), k.size()}; }
std::string_view view_of(const StoredKey& k) { return k.view(); }

template <class Map>
auto sorted_entries(Map& m) {
  std::vector<std::pair<std::string_view, decltype(&m.begin()->second)>> v;
  v.reserve(m.size());
  for (auto& [k, x] : m) v.emplace_back(view_of(k), &x);
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

StoredKey::StoredKey(const HashedKey& k, StringArena& arena)
    : hash_(k.hash), len_(static_cast<uint32_t>(k.s.size())) {
  if (len_ <= kInline) {
    std::memcpy(bytes_, k.s.data(), len_);
  } else {
    const char* p = arena.add(k.s).data();
    std::memcpy(bytes_, &p, sizeof p);
  }
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

void EventKeys::compute(const StoredEvent& e, const Event* ev) {
  stream = key_hash(e.stream);
  card = code = purchase = user = 0;
  codes.clear();
  if (!ev) return;
  std::visit(
      [&](const auto& x) {
        using T = std::remove_cvref_t<decltype(x)>;
        if constexpr (std::is_same_v<T, CardCreated>) {
          card = key_hash(x.card_id);
        } else if constexpr (std::is_same_v<T, CodesAdded>) {
          card = key_hash(x.card_id);
          codes.reserve(x.codes.size());
          for (const auto& c : x.codes) codes.push_back(key_hash(c.code));
        } else if constexpr (std::is_same_v<T, CodeAssigned>) {
          card = key_hash(x.card_id);
          code = key_hash(x.code);
          purchase = key_hash(x.purchase_id);
          user = key_hash(x.user_id);
        } else if constexpr (std::is_same_v<T, CodeRevoked>) {
          card = key_hash(x.card_id);
          code = key_hash(x.code);
        } else if constexpr (std::is_same_v<T, CodesExpired>) {
          card = key_hash(x.card_id);
          codes.reserve(x.codes.size());
          for (const auto& c : x.codes) codes.push_back(key_hash(c));
        } else if constexpr (std::is_same_v<T, WalletCredited>) {
          user = key_hash(x.user_id);
        } else {
          static_assert(std::is_same_v<T, WalletDebited>);
          user = key_hash(x.user_id);
          purchase = key_hash(x.purchase_id);
        }
      },
      *ev);
}

// The containers of FlatModels, for fold_event() (projections/read_models_fold.h).
// fold_event() looks up one card, one wallet and one purchase id per event
// at most: their hashes are the event's (EventKeys).
struct FlatModels::Fold {
  FlatModels& m;
  const EventKeys& k;
  using Purchase = FlatModels::Purchase;
  int64_t position() const { return m.position_; }
  void advance(const StoredEvent& e) {
    m.position_ = e.position;
    m.recorded_at_ = e.recorded_at;
  }
  // map[key], the key copied into the arena if it is new.
  template <class V>
  V& entry(HashedMap<V>& map, std::string_view key, size_t hash) {
    const HashedKey k{key, hash};
    return map.lazy_emplace(k, [&](const auto& ctor) { ctor(StoredKey(k, m.strings_), V{}); })
        ->second;
  }
  CardView& card(const std::string& id) { return entry(m.cards_, id, k.card); }
  CardView* find_card(const std::string& id) { return find_value(m.cards_, HashedKey{id, k.card}); }
  int64_t& balance(const std::string& user) { return entry(m.balances_, user, k.user); }
  absl::string_view keep(std::string_view s) { return m.strings_.add(s); }
  void add_purchase(Purchase&& p) {
    m.purchases_.push_back(p);
    const size_t index = m.purchases_.size() - 1;
    const HashedKey id{p.purchase_id, k.purchase};
    m.by_id_.lazy_emplace(id, [&](const auto& ctor) { ctor(StoredKey(id, m.strings_), index); })
        ->second = index;
  }
};

void FlatModels::fold(const StoredEvent& e, Event&& ev) {
  if (e.position <= position_) return;  // as fold_event(): nothing to hash
  scratch_.compute(e, &ev);
  fold(e, std::move(ev), scratch_);
}

void FlatModels::fold(const StoredEvent& e, Event&& ev, const EventKeys& keys) {
  Fold f{*this, keys};
  fold_event(f, e, ev);
}

void FlatModels::prefetch(const Event& ev) const {
  if (const auto* x = std::get_if<CodeAssigned>(&ev)) by_id_.prefetch(hashed(x->purchase_id));
}

void FlatModels::prefetch(const Event& ev, const EventKeys& keys) const {
  if (const auto* x = std::get_if<CodeAssigned>(&ev)) {
    by_id_.prefetch(HashedKey{x->purchase_id, keys.purchase});
  } else if (const auto* d = std::get_if<WalletDebited>(&ev)) {
    balances_.prefetch(HashedKey{d->user_id, keys.user});
  }
}

std::optional<int64_t> FlatModels::balance(std::string_view user) const {
  auto it = balances_.find(hashed(user));
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
    for (const auto& [id, index] : by_id_) ids.emplace_back(view_of(id), index);
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

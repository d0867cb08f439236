#include "projections/projection_db.h"

#include <cereal/types/string.hpp>

#include <algorithm>
#include <set>

#include "events/bounded_archive.h"
#include "events/coding.h"
#include "projections/rebuild_fold.h"
#include "store/crash_point.h"
#include "store/log_scanner.h"

namespace giftcard {
namespace {

// Layout inside the projection space (docs/STORAGE_FORMAT.md):
//   "A"                                  -> active generation, be32
//   'g' gen:be32 'k'                     -> checkpoint: position be64, recorded_at be64
//   'g' gen:be32 'b' user                -> balance, be64 (two's complement)
//   'g' gen:be32 'c' card                -> CardView (cereal)
//   'g' gen:be32 'p' purchase_id         -> PurchaseView (cereal)
//   'g' gen:be32 'u' user '\0' pos:be64  -> purchase_id   (a user's purchases)
//   'g' gen:be32 'r' ~pos:be64           -> purchase_id   (newest first)
// Integers: events/coding.h.
const std::string kActiveKey = "A";
constexpr size_t kActiveValueBytes = kFixed32Bytes;          // generation
constexpr size_t kCheckpointValueBytes = 2 * kFixed64Bytes;  // position, recorded_at
constexpr size_t kBalanceValueBytes = kFixed64Bytes;

std::string gen_prefix(uint32_t gen) {
  std::string k(1, 'g');
  put_be32(k, gen);
  return k;
}
// The *_into forms build a key in *out, reusing its buffer (the rebuild
// writes millions of them).
void key_into(std::string* out, uint32_t gen, char kind, std::string_view rest = {}) {
  out->assign(1, 'g');
  put_be32(*out, gen);
  out->push_back(kind);
  out->append(rest);
}
std::string key(uint32_t gen, char kind, std::string_view rest = {}) {
  std::string k;
  key_into(&k, gen, kind, rest);
  return k;
}
void user_purchase_key_into(std::string* out, uint32_t gen, std::string_view user, int64_t pos) {
  key_into(out, gen, 'u', user);
  out->push_back('\0');
  put_be64(*out, static_cast<uint64_t>(pos));
}
std::string user_purchase_key(uint32_t gen, const std::string& user, int64_t pos) {
  std::string k;
  user_purchase_key_into(&k, gen, user, pos);
  return k;
}
void recent_key_into(std::string* out, uint32_t gen, int64_t pos) {
  key_into(out, gen, 'r');
  put_be64(*out, ~static_cast<uint64_t>(pos));
}
std::string recent_key(uint32_t gen, int64_t pos) {
  std::string k;
  recent_key_into(&k, gen, pos);
  return k;
}

std::string encode_i64(int64_t v) { return encode_be64(static_cast<uint64_t>(v)); }
Status decode_i64(std::string_view s, int64_t* v) {
  if (s.size() != kBalanceValueBytes) return Status::Corruption("projection: bad integer value");
  *v = static_cast<int64_t>(get_be64(s));
  return Status::OK();
}

// CardView and PurchaseView (serialize() in read_models.h).
template <class T>
void encode_into(std::string* out, const T& v) {
  out->clear();
  StringOutputArchive ar(*out);
  ar(const_cast<T&>(v));  // cereal's non-member serialize takes a non-const reference
}
template <class T>
std::string encode(const T& v) {
  std::string out;
  encode_into(&out, v);
  return out;
}
template <class T>
Status decode(std::string_view in, T* out) {
  try {
    BoundedInputArchive ar(in);
    ar(*out);
    if (ar.remaining() != 0) return Status::Corruption("projection: trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("projection: ") + e.what());
  }
  return Status::OK();
}

Status decode_checkpoint(std::string_view v, int64_t* pos, Micros* at) {
  if (v.size() != kCheckpointValueBytes) return Status::Corruption("projection checkpoint damaged");
  *pos = static_cast<int64_t>(get_be64(v));
  *at = static_cast<int64_t>(get_be64(v.substr(kFixed64Bytes)));
  return Status::OK();
}

Status read_checkpoint(ProjectionKv* kv, uint32_t gen, int64_t* pos, Micros* at) {
  std::string v;
  Status s = kv->KvGet(key(gen, 'k'), &v);
  if (s.IsNotFound()) {
    *pos = 0;
    *at = 0;
    return Status::OK();
  }
  if (!s.ok()) return s;
  return decode_checkpoint(v, pos, at);
}
std::string checkpoint_value(int64_t pos, Micros at) {
  std::string v;
  put_be64(v, static_cast<uint64_t>(pos));
  put_be64(v, static_cast<uint64_t>(at));
  return v;
}

std::string_view sv(absl::string_view s) { return {s.data(), s.size()}; }

// A rebuilt generation as sorted runs for KvIngest, each with exactly the
// keys and values ApplyTo writes for the same models: the purchases by id
// (the heaviest, first), the per-user index, the newest-first index, then
// the wallets, the cards and the checkpoint (one run: 'b' < 'c' < 'k').
std::vector<KvRun> generation_runs(uint32_t gen, const RebuildModels& m) {
  std::vector<KvRun> runs;
  runs.push_back([gen, &m](const KvPut& put) {
    std::string k, v;
    PurchaseView view;
    for (const RebuildModels::Purchase* p : m.purchases_by_id()) {
      key_into(&k, gen, 'p', sv(p->purchase_id));
      p->view(&view);
      encode_into(&v, view);
      if (Status s = put(k, v); !s.ok()) return s;
    }
    return Status::OK();
  });
  runs.push_back([gen, &m](const KvPut& put) {
    std::string k;
    for (const RebuildModels::Purchase* p : m.purchases_by_user()) {
      user_purchase_key_into(&k, gen, sv(p->user_id), p->position);
      if (Status s = put(k, sv(p->purchase_id)); !s.ok()) return s;
    }
    return Status::OK();
  });
  runs.push_back([gen, &m](const KvPut& put) {
    std::string k;
    const auto& all = m.purchases();
    for (auto p = all.rbegin(); p != all.rend(); ++p) {
      recent_key_into(&k, gen, p->position);
      if (Status s = put(k, sv(p->purchase_id)); !s.ok()) return s;
    }
    return Status::OK();
  });
  runs.push_back([gen, &m](const KvPut& put) {
    std::string k, v;
    for (const auto& [user, balance] : m.balances()) {
      key_into(&k, gen, 'b', user);
      v.clear();
      put_be64(v, static_cast<uint64_t>(balance));
      if (Status s = put(k, v); !s.ok()) return s;
    }
    for (const CardView* c : m.cards()) {
      key_into(&k, gen, 'c', c->id);
      encode_into(&v, *c);
      if (Status s = put(k, v); !s.ok()) return s;
    }
    return put(key(gen, 'k'), checkpoint_value(m.position(), m.recorded_at()));
  });
  return runs;
}

struct Touched {
  std::set<std::string> users, cards;
  void operator()(const CardCreated& x) { cards.insert(x.card_id); }
  void operator()(const CodesAdded& x) { cards.insert(x.card_id); }
  void operator()(const CodeAssigned& x) { cards.insert(x.card_id); }
  void operator()(const CodeRevoked& x) { cards.insert(x.card_id); }
  void operator()(const CodesExpired& x) { cards.insert(x.card_id); }
  void operator()(const WalletCredited& x) { users.insert(x.user_id); }
  void operator()(const WalletDebited& x) { users.insert(x.user_id); }
};

}  // namespace

Status ProjectionDb::Open(EventStore* store, std::unique_ptr<ProjectionDb>* out) {
  return Open(store, store, out);
}

Status ProjectionDb::Open(EventLog* log, ProjectionKv* kv, std::unique_ptr<ProjectionDb>* out) {
  bool damaged = false;
  Status s = OpenOnce(log, kv, out, &damaged);
  // A checkpoint ahead of the log is not damage: the log lost events, which
  // no rebuild may paper over.
  if (!damaged) return s;
  // The projections are a cache of the log: a damaged generation marker or
  // checkpoint drops them all, and the caller's catch-up refolds the log.
  KvBatch drop;
  drop.delete_prefixes.push_back("");
  if (Status w = kv->KvWrite(drop); !w.ok()) return s;
  if (Status again = OpenOnce(log, kv, out, &damaged); !again.ok()) return again;
  (*out)->reset_reason_ = s.message();
  return Status::OK();
}

Status ProjectionDb::OpenOnce(EventLog* log, ProjectionKv* kv, std::unique_ptr<ProjectionDb>* out,
                              bool* damaged) {
  *damaged = false;
  std::unique_ptr<ProjectionDb> db(new ProjectionDb(log, kv));
  std::string v;
  Status s = kv->KvGet(kActiveKey, &v);
  if (s.ok()) {
    if (v.size() != kActiveValueBytes) {
      *damaged = true;
      return Status::Corruption("projection generation marker damaged");
    }
    db->gen_ = get_be32(v);
  } else if (s.IsNotFound()) {
    db->gen_ = 1;
    KvBatch b;
    b.puts.emplace_back(kActiveKey, encode_be32(1));
    // A store opened read-only has no projections yet; queries see empty models.
    if (Status w = kv->KvWrite(b); !w.ok() && !w.IsInvalidArgument()) return w;
  } else {
    *damaged = s.IsCorruption();
    return s;
  }
  int64_t pos = 0;
  Micros at = 0;
  if (Status c = read_checkpoint(kv, db->gen_, &pos, &at); !c.ok()) {
    *damaged = c.IsCorruption();
    return c;
  }
  if (pos > log->LastPosition())
    return Status::Corruption("projection checkpoint " + std::to_string(pos) +
                              " is ahead of the log (" + std::to_string(log->LastPosition()) + ")");
  db->position_ = pos;
  db->recorded_at_ = at;
  *out = std::move(db);
  return Status::OK();
}

uint32_t ProjectionDb::generation() const {
  std::shared_lock lock(gen_mu_);
  return gen_;
}

Status ProjectionDb::ApplyTo(uint32_t gen, const std::vector<StoredEvent>& events, int64_t* pos,
                             Micros* at) {
  std::vector<const StoredEvent*> todo;
  std::vector<Event> decoded;
  Touched touched;
  int64_t expect = *pos + 1;
  for (const auto& e : events) {
    if (e.position < expect) continue;
    if (e.position != expect)
      return Status::InvalidArgument("projection gap: expected position " + std::to_string(expect) +
                                     ", got " + std::to_string(e.position));
    Event ev;
    if (Status s = e.decode(&ev); !s.ok())
      return Status::Corruption("position " + std::to_string(e.position) + ": " + s.message());
    std::visit(touched, ev);
    todo.push_back(&e);
    decoded.push_back(std::move(ev));
    ++expect;
  }
  if (todo.empty()) return Status::OK();

  // Load only what these events touch, fold, write back with the checkpoint.
  std::vector<std::string> ks;
  for (const auto& u : touched.users) ks.push_back(key(gen, 'b', u));
  for (const auto& c : touched.cards) ks.push_back(key(gen, 'c', c));
  std::vector<std::optional<std::string>> vals;
  if (Status s = kv_->KvMultiGet(ks, &vals); !s.ok()) return s;
  ReadModels m;
  m.position = *pos;
  size_t i = 0;
  for (const auto& u : touched.users) {
    if (const auto& v = vals[i++]) {
      if (Status s = decode_i64(*v, &m.balances[u]); !s.ok()) return s;
    }
  }
  for (const auto& c : touched.cards) {
    if (const auto& v = vals[i++]) {
      if (Status s = decode(*v, &m.cards[c]); !s.ok()) return s;
    }
  }
  for (size_t j = 0; j < todo.size(); ++j) apply(m, *todo[j], decoded[j]);

  KvBatch b;
  b.puts.reserve(m.balances.size() + m.cards.size() + 3 * m.purchases.size() + 1);
  for (const auto& [u, bal] : m.balances) b.puts.emplace_back(key(gen, 'b', u), encode_i64(bal));
  for (const auto& [id, c] : m.cards) b.puts.emplace_back(key(gen, 'c', id), encode(c));
  for (const auto& [id, p] : m.purchases) {
    b.puts.emplace_back(key(gen, 'p', id), encode(p));
    b.puts.emplace_back(user_purchase_key(gen, p.user_id, p.position), id);
    b.puts.emplace_back(recent_key(gen, p.position), id);
  }
  b.puts.emplace_back(key(gen, 'k'), checkpoint_value(m.position, m.recorded_at));
  GIFTCARD_CRASH_POINT("checkpoint.before_write");
  if (Status s = kv_->KvWrite(b); !s.ok()) return s;
  GIFTCARD_CRASH_POINT("checkpoint.after_write");
  *pos = m.position;
  *at = m.recorded_at;
  return Status::OK();
}

void ProjectionDb::Publish(int64_t pos, Micros at) {
  {
    std::lock_guard lock(wait_mu_);
    recorded_at_.store(at, std::memory_order_release);
    position_.store(pos, std::memory_order_release);
  }
  wait_cv_.notify_all();
}

Status ProjectionDb::Apply(const std::vector<StoredEvent>& events) {
  std::lock_guard lock(apply_mu_);
  int64_t pos = position();
  Micros at = recorded_at();
  Status s = ApplyTo(generation(), events, &pos, &at);
  if (s.ok()) Publish(pos, at);
  return s;
}

Status ProjectionDb::CatchUpGen(uint32_t gen, int64_t up_to, size_t chunk, int64_t* pos, Micros* at,
                                const std::function<void(int64_t)>& progress) {
  std::vector<StoredEvent> events;
  if (up_to - *pos > 2 * static_cast<int64_t>(chunk)) {
    // A long way to go (restart, rebuild): the next page is read while this
    // one is folded and written. (Not for the driver's one-step catch-ups:
    // a reader thread per step would cost more than it overlaps.)
    LogScanner scanner(log_, {.from = *pos + 1, .to = up_to, .page = chunk, .decode = false});
    std::vector<Event> none;
    while (*pos < up_to) {
      if (Status s = scanner.Next(&events, &none); !s.ok()) return s;
      if (events.empty()) break;
      if (Status s = ApplyTo(gen, events, pos, at); !s.ok()) return s;
      if (progress) progress(*pos);
    }
    return Status::OK();
  }
  while (*pos < up_to) {
    size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(chunk), up_to - *pos));
    if (Status s = log_->ReadAll(*pos + 1, want, &events); !s.ok()) return s;
    if (events.empty()) break;
    if (Status s = ApplyTo(gen, events, pos, at); !s.ok()) return s;
    if (progress) progress(*pos);
  }
  return Status::OK();
}

Status ProjectionDb::CatchUp(size_t chunk, int64_t up_to,
                             const std::function<void(int64_t)>& progress) {
  std::lock_guard lock(apply_mu_);
  const uint32_t gen = generation();
  int64_t pos = position();
  Micros at = recorded_at();
  Status s = CatchUpGen(gen, std::min(up_to, log_->LastPosition()), chunk, &pos, &at,
                        [&](int64_t p) {
                          Publish(p, at);
                          if (progress) progress(p);
                        });
  return s;
}

Status ProjectionDb::Rebuild(RebuildReport* report, const std::function<void(int64_t)>& progress) {
  std::unique_lock rebuilding(rebuild_mu_, std::try_to_lock);
  if (!rebuilding.owns_lock()) return Status::Busy("a projection rebuild is already running");
  const auto t0 = std::chrono::steady_clock::now();
  uint32_t old_gen = generation();
  uint32_t new_gen = old_gen + 1;
  {
    // Leftovers of an interrupted rebuild. Deleted only if there are any: a
    // range deletion over the new generation would make the ingest below
    // flush the memtable first. (A scan that fails on a damaged leftover
    // counts as finding one.)
    bool leftovers = false;
    Status scan = kv_->KvScan(gen_prefix(new_gen), "", [&](std::string_view, std::string_view) {
      leftovers = true;
      return false;
    });
    if (leftovers || !scan.ok()) {
      KvBatch clear;
      clear.delete_prefixes.push_back(gen_prefix(new_gen));
      if (Status s = kv_->KvWrite(clear); !s.ok()) return s;
    }
  }
  // Phase 1, beside live applies: fold the log as it is now in memory
  // (rebuild_fold.h says what bounds it), write the generation as sorted
  // table files and ingest them (KvIngest), then fold what was appended
  // meanwhile the usual way. Until the swap below nothing names generation
  // g+1: a crash anywhere in here leaves generation g active and whole.
  int64_t pos = 0;
  Micros at = 0;
  double fold_seconds = 0, ingest_seconds = 0;
  {
    RebuildModels m;
    if (Status s = m.FoldLog(log_, log_->LastPosition(), progress); !s.ok()) return s;
    pos = m.position();
    at = m.recorded_at();
    const auto t1 = std::chrono::steady_clock::now();
    fold_seconds = std::chrono::duration<double>(t1 - t0).count();
    if (Status s = kv_->KvIngest(generation_runs(new_gen, m)); !s.ok()) return s;
    ingest_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  if (test_hook_)
    if (Status s = test_hook_("ingested"); !s.ok()) return s;
  if (Status s = CatchUpGen(new_gen, log_->LastPosition(), 65536, &pos, &at, progress); !s.ok())
    return s;
  // Phase 2, live applies paused: reach the live position, then swap. The
  // live models may also trail phase 1 (they follow the log by a little): the
  // new generation then takes over at its own, later, position.
  std::lock_guard lock(apply_mu_);
  const int64_t live = position();
  if (Status s = CatchUpGen(new_gen, live, 65536, &pos, &at, progress); !s.ok()) return s;
  if (pos < live)
    return Status::Corruption("rebuild reached " + std::to_string(pos) + " but live is at " +
                              std::to_string(live));
  if (test_hook_)
    if (Status s = test_hook_("before_swap"); !s.ok()) return s;
  KvBatch swap;
  swap.delete_prefixes.push_back(gen_prefix(old_gen));
  swap.puts.emplace_back(kActiveKey, encode_be32(new_gen));
  {
    std::unique_lock glock(gen_mu_);
    if (Status s = kv_->KvWrite(swap); !s.ok()) return s;
    gen_ = new_gen;
  }
  if (pos > live) Publish(pos, at);
  if (report) {
    report->events = pos;
    report->position = pos;
    report->generation = new_gen;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report->fold_seconds = fold_seconds;
    report->ingest_seconds = ingest_seconds;
  }
  return Status::OK();
}

bool ProjectionDb::WaitFor(int64_t p, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(wait_mu_);
  return wait_cv_.wait_for(lock, timeout, [&] { return position() >= p; });
}

void ProjectionDb::NotifyAll() const {
  { std::lock_guard lock(wait_mu_); }
  wait_cv_.notify_all();
}

Status ProjectionDb::Card(const std::string& id, CardView* out) const {
  std::shared_lock lock(gen_mu_);
  std::string v;
  if (Status s = kv_->KvGet(key(gen_, 'c', id), &v); !s.ok()) return s;
  return decode(v, out);
}

Status ProjectionDb::Cards(std::vector<CardView>* out) const { return Cards("", SIZE_MAX, out); }

Status ProjectionDb::Cards(const std::string& from, size_t limit,
                           std::vector<CardView>* out) const {
  out->clear();
  if (limit == 0) return Status::OK();
  std::shared_lock lock(gen_mu_);
  Status inner;
  Status s = kv_->KvScan(key(gen_, 'c'), key(gen_, 'c', from),
                         [&](std::string_view, std::string_view v) {
                           out->emplace_back();
                           inner = decode(v, &out->back());
                           return inner.ok() && out->size() < limit;
                         });
  return s.ok() ? inner : s;
}

Status ProjectionDb::Balance(const std::string& user, int64_t* out) const {
  std::shared_lock lock(gen_mu_);
  std::string v;
  Status s = kv_->KvGet(key(gen_, 'b', user), &v);
  if (s.IsNotFound()) {
    *out = 0;
    return Status::OK();
  }
  return s.ok() ? decode_i64(v, out) : s;
}

Status ProjectionDb::Wallets(const std::string& prefix, const std::string& from, size_t limit,
                             std::vector<std::pair<std::string, int64_t>>* out) const {
  out->clear();
  if (limit == 0) return Status::OK();
  std::shared_lock lock(gen_mu_);
  const std::string p = key(gen_, 'b');
  Status inner;
  Status s = kv_->KvScan(p + prefix, p + from, [&](std::string_view k, std::string_view v) {
    out->emplace_back(std::string(k.substr(p.size())), 0);
    inner = decode_i64(v, &out->back().second);
    return inner.ok() && out->size() < limit;
  });
  return s.ok() ? inner : s;
}

Status ProjectionDb::Purchase(const std::string& purchase_id, PurchaseView* out) const {
  std::shared_lock lock(gen_mu_);
  std::string v;
  if (Status s = kv_->KvGet(key(gen_, 'p', purchase_id), &v); !s.ok()) return s;
  return decode(v, out);
}

namespace {
// Resolves an index scan (values are purchase ids) to purchases.
Status purchases_by_index(ProjectionKv* kv, uint32_t gen, const std::string& prefix,
                          const std::string& start, size_t limit, std::vector<PurchaseView>* out) {
  out->clear();
  if (limit == 0) return Status::OK();
  std::vector<std::string> ks;
  Status s = kv->KvScan(prefix, start, [&](std::string_view, std::string_view id) {
    ks.push_back(key(gen, 'p', id));
    return ks.size() < limit;
  });
  if (!s.ok()) return s;
  std::vector<std::optional<std::string>> vals;
  if (Status m = kv->KvMultiGet(ks, &vals); !m.ok()) return m;
  for (const auto& v : vals) {
    if (!v) return Status::Corruption("projection: purchase index points at a missing purchase");
    out->emplace_back();
    if (Status d = decode(*v, &out->back()); !d.ok()) return d;
  }
  return Status::OK();
}
}  // namespace

Status ProjectionDb::UserPurchases(const std::string& user, size_t limit,
                                   std::vector<PurchaseView>* out) const {
  return UserPurchases(user, 0, limit, out);
}

Status ProjectionDb::UserPurchases(const std::string& user, int64_t from, size_t limit,
                                   std::vector<PurchaseView>* out) const {
  std::shared_lock lock(gen_mu_);
  std::string prefix = key(gen_, 'u', user);
  prefix.push_back('\0');
  // 'u' user '\0' pos:be64 sorts by position within a user: seek to `from`.
  return purchases_by_index(kv_, gen_, prefix,
                            user_purchase_key(gen_, user, std::max<int64_t>(from, 0)), limit, out);
}

Status ProjectionDb::RecentPurchases(size_t limit, std::vector<PurchaseView>* out,
                                     int64_t at_or_before) const {
  std::shared_lock lock(gen_mu_);
  return purchases_by_index(kv_, gen_, key(gen_, 'r'), recent_key(gen_, at_or_before), limit, out);
}

Status ProjectionDb::LoadAll(ReadModels* out) const {
  *out = ReadModels{};
  std::shared_lock lock(gen_mu_);
  // The checkpoint is read by the same scan as the models (one consistent
  // view of the store), not before it: a live Apply in between would
  // otherwise give models ahead of their position.
  const std::string p = gen_prefix(gen_);
  Status inner;
  Status s = kv_->KvScan(p, "", [&](std::string_view k, std::string_view v) {
    std::string_view rest = k.substr(p.size() + 1);
    switch (k[p.size()]) {
      case 'k': inner = decode_checkpoint(v, &out->position, &out->recorded_at); break;
      case 'b': inner = decode_i64(v, &out->balances[std::string(rest)]); break;
      case 'c': inner = decode(v, &out->cards[std::string(rest)]); break;
      case 'p': inner = decode(v, &out->purchases[std::string(rest)]); break;
      case 'u': {
        // user '\0' pos: the index is in position order, as ReadModels keeps it.
        auto nul = rest.find('\0');
        if (nul == std::string_view::npos)
          inner = Status::Corruption("projection: bad user index key");
        else out->user_purchases[std::string(rest.substr(0, nul))].emplace_back(v);
        break;
      }
      default: break;
    }
    return inner.ok();
  });
  return s.ok() ? inner : s;
}

}  // namespace giftcard

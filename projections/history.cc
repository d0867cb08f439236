#include "projections/history.h"

#include <algorithm>
#include <limits>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "events/bounded_archive.h"
#include "events/coding.h"

namespace giftcard {
namespace {

std::string checkpoint_key(int64_t position) {
  std::string k(1, 'H');
  put_be64(k, ~static_cast<uint64_t>(position));  // newest first
  return k;
}

std::string encode(const ProjectionHistory::AsOf& a) {
  std::string out;
  StringOutputArchive ar(out);
  ar(a.position, a.recorded_at, a.wallet_float, a.cards);
  return out;
}

Status decode(std::string_view in, ProjectionHistory::AsOf* a) {
  try {
    BoundedInputArchive ar(in);
    ar(a->position, a->recorded_at, a->wallet_float, a->cards);
    if (ar.remaining() != 0) return Status::Corruption("history checkpoint: trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("history checkpoint: ") + e.what());
  }
  return Status::OK();
}

// The float is a sum over every wallet, each of which may hold up to 2^63-1:
// it saturates instead of overflowing.
void add_saturating(int64_t* sum, int64_t x) {
  if (__builtin_add_overflow(*sum, x, sum))
    *sum = x > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// Folds events (positions from->position+1 on) into `a`, stopping after
// position `to`. Cards and the float only: a fold into ReadModels whose
// balances start at 0 leaves each wallet's *change* in them.
Status fold(EventLog* log, int64_t to, ProjectionHistory::AsOf* a) {
  ReadModels m;
  m.position = a->position;
  m.recorded_at = a->recorded_at;
  for (auto& c : a->cards) m.cards.emplace(c.id, std::move(c));
  std::vector<StoredEvent> evs;
  while (m.position < to) {
    int64_t want = to - m.position;
    if (Status s = log->ReadAll(m.position + 1, static_cast<size_t>(std::min<int64_t>(want, 8192)),
                                &evs);
        !s.ok())
      return s;
    if (evs.empty()) break;
    for (const auto& e : evs) {
      if (Status s = apply(m, e); !s.ok()) return s;
      ++a->replayed;
    }
  }
  for (const auto& [user, delta] : m.balances) add_saturating(&a->wallet_float, delta);
  a->position = m.position;
  a->recorded_at = m.recorded_at;
  a->cards.clear();
  for (const auto& [id, c] : m.cards) a->cards.push_back(c);
  return Status::OK();
}

}  // namespace

Status ProjectionHistory::Open(EventStore* store, std::unique_ptr<ProjectionHistory>* out) {
  return Open(store, store, out);
}

Status ProjectionHistory::Open(EventLog* log, ProjectionKv* kv,
                               std::unique_ptr<ProjectionHistory>* out) {
  std::unique_ptr<ProjectionHistory> h(new ProjectionHistory(log, kv));
  AsOf newest;
  if (Status s = h->LoadCheckpointAtOrBefore(log->LastPosition(), &newest); !s.ok()) return s;
  h->live_.position = newest.position;
  h->live_.recorded_at = newest.recorded_at;
  for (auto& c : newest.cards) h->live_.cards.emplace(c.id, std::move(c));
  h->live_float_ = newest.wallet_float;
  *out = std::move(h);
  return Status::OK();
}

Status ProjectionHistory::LoadCheckpointAtOrBefore(int64_t p, AsOf* out) const {
  *out = AsOf{};
  Status inner;
  Status s = kv_->KvScan("H", checkpoint_key(p), [&](std::string_view, std::string_view v) {
    inner = decode(v, out);
    return false;  // the first one is the newest at or before p
  });
  return s.ok() ? inner : s;
}

Status ProjectionHistory::CatchUp() {
  std::lock_guard lock(mu_);
  const int64_t to = log_->LastPosition();
  std::vector<StoredEvent> evs;
  Status status;
  while (status.ok() && live_.position < to) {
    // Pages end at the next multiple of kEvery, where a checkpoint is due.
    const int64_t next = (live_.position / kEvery + 1) * kEvery;
    const int64_t want = std::min({to - live_.position, next - live_.position, int64_t{8192}});
    if (status = log_->ReadAll(live_.position + 1, static_cast<size_t>(want), &evs); !status.ok())
      break;
    if (evs.empty()) break;
    for (const auto& e : evs)
      if (status = apply(live_, e); !status.ok()) break;
    if (status.ok() && live_.position % kEvery == 0) {
      AsOf a;
      a.position = live_.position;
      a.recorded_at = live_.recorded_at;
      a.wallet_float = live_float_;
      for (const auto& [user, delta] : live_.balances) add_saturating(&a.wallet_float, delta);
      for (const auto& [id, c] : live_.cards) a.cards.push_back(c);
      KvBatch b;
      b.puts.emplace_back(checkpoint_key(a.position), encode(a));
      status = kv_->KvWrite(b);
    }
  }
  // Only the cards are kept whole; the rest of the fold is settled.
  for (const auto& [user, delta] : live_.balances) add_saturating(&live_float_, delta);
  live_.balances.clear();
  live_.purchases.clear();
  live_.user_purchases.clear();
  return status;
}

Status ProjectionHistory::At(int64_t p, AsOf* out) const {
  if (p < 0 || p > log_->LastPosition())
    return Status::InvalidArgument("position " + std::to_string(p) + " is not in the log");
  if (Status s = LoadCheckpointAtOrBefore(p, out); !s.ok()) return s;
  out->replayed = 0;
  return fold(log_, p, out);
}

Status ProjectionHistory::BalanceAt(const std::string& user, int64_t p, int64_t* balance,
                                    bool* existed) const {
  *balance = 0;
  *existed = false;
  const std::string stream = wallet_stream(user);
  int64_t head = 0;
  if (Status s = log_->StreamVersion(stream, &head); !s.ok()) return s;
  // The last version whose position is <= p: binary search over the stream.
  int64_t lo = 1, hi = head, found = 0;
  std::vector<StoredEvent> one;
  StoredEvent best;
  while (lo <= hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (Status s = log_->ReadStream(stream, mid, 1, &one); !s.ok()) return s;
    if (one.empty())
      return Status::Corruption("stream " + stream + " lost version " + std::to_string(mid));
    if (one.front().position <= p) {
      found = mid;
      best = std::move(one.front());
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (!found) return Status::OK();
  Event ev;
  if (Status s = best.decode(&ev); !s.ok()) return s;
  if (auto* c = std::get_if<WalletCredited>(&ev)) *balance = c->balance_after;
  else if (auto* d = std::get_if<WalletDebited>(&ev)) *balance = d->balance_after;
  else return Status::Corruption("stream " + stream + " holds a non-wallet event");
  *existed = true;
  return Status::OK();
}

}  // namespace giftcard

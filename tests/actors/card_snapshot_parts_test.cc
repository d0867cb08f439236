// A big pool's snapshot in parts (issue #16): a live card saves only the parts
// whose slots changed since its last snapshot, plus a head; recovery from
// head + parts + the stream's tail equals a fold of the whole stream; and a
// restart from such a snapshot never sells a code twice.
#include <boost/test/unit_test.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "actors/recovery.h"
#include "shop_fixture.h"
#include "tests/support/log_oracle.h"

namespace giftcard::test {
namespace {

// Buys `each` codes of `card` for each of `users` buyers, concurrently; adds
// every code sold to *codes and returns how many purchases were acknowledged.
int buy(ShopFixture& f, const std::string& card, int users, int each, const std::string& tag,
        std::set<std::string>* codes) {
  std::mutex mu;
  std::atomic<int> ok{0};
  std::vector<std::thread> buyers;
  for (int u = 0; u < users; ++u)
    buyers.emplace_back([&, u] {
      for (int i = 0; i < each; ++i) {
        auto p = f.purchase(card, "bu" + std::to_string(u), tag + std::to_string(i));
        if (!p) continue;
        ++ok;
        std::lock_guard lock(mu);
        BOOST_TEST(codes->insert(p->code).second, "code sold twice: slot of " << p->purchase_id);
      }
    });
  for (auto& t : buyers) t.join();
  return ok.load();
}

// The card's state recovered from its snapshot and tail, and a full fold.
void check_recovery_equals_fold(ShopFixture& f, const std::string& card) {
  CardState recovered, full;
  int64_t version = 0, tail = 0;
  BOOST_REQUIRE(recover(f.store(), card_stream(card), &recovered, &version, &tail).ok());
  std::vector<StoredEvent> evs;
  BOOST_REQUIRE(f.store()->ReadStream(card_stream(card), 1, 1 << 20, &evs).ok());
  for (const auto& e : evs) {
    Event ev;
    BOOST_REQUIRE(e.decode(&ev).ok());
    BOOST_REQUIRE(fold(full, std::move(ev)).ok());
  }
  BOOST_TEST(version == static_cast<int64_t>(evs.size()));
  BOOST_TEST(tail < version);  // a snapshot was used
  BOOST_TEST(recovered.assigned == full.assigned);
  BOOST_TEST(recovered.available == full.available);
  BOOST_REQUIRE_EQUAL(recovered.slots.size(), full.slots.size());
  size_t differ = 0;
  for (size_t i = 0; i < full.slots.size(); ++i)
    differ += recovered.slots[i].status != full.slots[i].status ? 1 : 0;
  BOOST_TEST(differ == 0u);
}

int64_t version_of(ShopFixture& f, const std::string& name) {
  Snapshot s;
  Status st = f.store()->LoadSnapshot(name, &s);
  BOOST_REQUIRE_MESSAGE(st.ok(), "snapshot " << name.substr(0, name.find('\0')) << " part "
                                             << (name.find('\0') == std::string::npos
                                                     ? std::string("head")
                                                     : name.substr(name.find('\0') + 1))
                                             << ": " << st.ToString());
  return s.version;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(card_snapshot_parts)

BOOST_AUTO_TEST_CASE(a_big_pool_snapshots_only_the_parts_that_changed) {
  const std::string dir = temp_dir("parts");
  const int n = 3 * static_cast<int>(kCardPartSlots) + 100;  // 4 parts; a snapshot every n/4
  const std::string stream = card_stream("big");
  std::set<std::string> codes;
  ShopConfig cfg;
  cfg.snapshot_every = 8;
  {
    ShopFixture f(ShopFixture::Backend::rocks, dir, cfg);
    BOOST_REQUIRE(f.create_card("big", 1));
    BOOST_REQUIRE(f.add_codes("big", ShopFixture::codes("B", n)));
    for (int u = 0; u < 8; ++u) BOOST_REQUIRE(f.credit("bu" + std::to_string(u), 1 << 20, "c"));
    // 6,400 purchases: two snapshots (at ~3,097 and ~6,194 folded events).
    BOOST_REQUIRE_EQUAL(buy(f, "big", 8, 800, "a", &codes), 6400);
    const int64_t head = version_of(f, stream);
    BOOST_TEST(head >= 2 * (n / 4));
    // The sold region (slots 0..6,399) is in parts 0 and 1: rewritten with the
    // head. Parts 2 and 3 did not change since the first snapshot.
    BOOST_TEST(version_of(f, card_part_name(stream, 1)) == head);
    const int64_t first = version_of(f, card_part_name(stream, 3));
    BOOST_TEST(first < head);
    BOOST_TEST(first >= n / 4);
    BOOST_TEST(version_of(f, card_part_name(stream, 2)) == first);
    check_recovery_equals_fold(f, "big");
  }
  // A restart recovers from head + parts + tail and sells on without a repeat.
  ShopFixture g(ShopFixture::Backend::rocks, dir, cfg);
  BOOST_REQUIRE_EQUAL(buy(g, "big", 8, 50, "b", &codes), 400);
  BOOST_TEST(codes.size() == 6800u);
  check_recovery_equals_fold(g, "big");
  BOOST_TEST(check_log(g.store()).clean());
  g.stop();
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test

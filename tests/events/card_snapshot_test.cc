// Card snapshots in parts (events/snapshot.h, issue #16): a head naming every
// part's version and CRC, parts of kCardPartSlots slots. Round trip, refusal
// of a part that is not the one its head names, the format-2 fallback, and
// which parts an event changes.
#include <boost/test/unit_test.hpp>
#include <map>

#include "events/envelope.h"
#include "events/snapshot.h"
#include "tests/events/card_fixture.h"

namespace giftcard::card_test {
namespace {

// A pool of n codes "P<i>" in import order; `sold` of them assigned.
CardState pool(size_t n, size_t sold) {
  std::vector<std::string> codes;
  for (size_t i = 0; i < n; ++i) codes.push_back("P" + std::to_string(i));
  std::vector<CardEvent> evs{created(), added(codes)};
  for (size_t i = 0; i < sold; ++i) evs.push_back(assigned(codes[i]));
  return given(evs);
}

// Parts as a store would keep them: bytes and the version they were saved at.
struct Parts {
  std::map<uint32_t, std::pair<std::string, int64_t>> stored;
  std::vector<CardPartRef> refs;
  void save(const CardState& s, uint32_t p, int64_t version) {
    std::string bytes = encode_card_part(s, p);
    if (refs.size() <= p) refs.resize(p + 1);
    refs[p] = CardPartRef{version, crc32c(bytes)};
    stored[p] = {std::move(bytes), version};
  }
  CardPartReader reader() {
    return [this](uint32_t p, std::string* bytes, int64_t* version) {
      auto it = stored.find(p);
      if (it == stored.end()) return Status::NotFound("no part");
      *bytes = it->second.first;
      *version = it->second.second;
      return Status::OK();
    };
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(card_snapshot)

BOOST_AUTO_TEST_CASE(a_pool_in_parts_round_trips) {
  const size_t n = 2 * kCardPartSlots + 7;
  CardState s = pool(n, kCardPartSlots + 3);
  BOOST_REQUIRE_EQUAL(card_parts(s), 3u);
  Parts parts;
  for (uint32_t p = 0; p < 3; ++p) parts.save(s, p, 40 + p);
  CardState back;
  std::vector<CardPartRef> refs;
  Status st = decode_card_snapshot(encode_card_head(s, parts.refs), parts.reader(), &back, &refs);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST((refs == parts.refs));
  BOOST_TEST(back.assigned == static_cast<int64_t>(kCardPartSlots + 3));
  BOOST_TEST(back.available == static_cast<int64_t>(n - kCardPartSlots - 3));
  BOOST_REQUIRE_EQUAL(back.slots.size(), n);
  for (size_t i = 0; i < n; ++i) {
    BOOST_TEST(back.slots[i].code == s.slots[i].code);
    BOOST_TEST((back.slots[i].status == s.slots[i].status));
  }
  BOOST_TEST(reserve(back, 0).code == "P" + std::to_string(kCardPartSlots + 3));
}

BOOST_AUTO_TEST_CASE(a_part_that_is_not_the_one_its_head_names_is_refused) {
  CardState s = pool(kCardPartSlots + 10, 5);
  Parts parts;
  parts.save(s, 0, 10);
  parts.save(s, 1, 10);
  const std::string head = encode_card_head(s, parts.refs);
  CardState back;
  std::vector<CardPartRef> refs;
  // Part 0 saved again later (more sold), the head not: another version.
  CardState later = pool(kCardPartSlots + 10, 9);
  Parts newer = parts;
  newer.stored[0] = {encode_card_part(later, 0), 20};
  BOOST_TEST(decode_card_snapshot(head, newer.reader(), &back, &refs).IsCorruption());
  // The same version with other bytes (a damaged part): the CRC.
  Parts damaged = parts;
  damaged.stored[0].first[damaged.stored[0].first.size() / 2] ^= 0x01;
  BOOST_TEST(decode_card_snapshot(head, damaged.reader(), &back, &refs).IsCorruption());
  // A missing part.
  Parts missing = parts;
  missing.stored.erase(1);
  BOOST_TEST(decode_card_snapshot(head, missing.reader(), &back, &refs).IsCorruption());
  // A head naming the wrong number of parts for its slots.
  std::vector<CardPartRef> one{parts.refs[0]};
  BOOST_TEST(
      decode_card_snapshot(encode_card_head(s, one), parts.reader(), &back, &refs).IsCorruption());
  // Nothing was stored in `back` by the refusals.
  BOOST_TEST(back.slots.empty());
}

BOOST_AUTO_TEST_CASE(a_format_2_snapshot_still_decodes_without_parts) {
  CardState s = pool(50, 7);
  CardState back;
  std::vector<CardPartRef> refs{CardPartRef{1, 2}};
  Parts none;
  Status st = decode_card_snapshot(encode_snapshot(s), none.reader(), &back, &refs);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(refs.empty());  // the next save writes every part
  BOOST_TEST(back.assigned == 7);
  BOOST_TEST(back.available == 43);
}

BOOST_AUTO_TEST_CASE(an_event_marks_the_parts_it_changed) {
  CardState s = pool(kCardPartSlots + 5, 0);
  std::set<uint32_t> dirty;
  const std::string far = "P" + std::to_string(kCardPartSlots + 1);
  s = evolve(std::move(s), assigned(far));
  card_parts_changed(s, s.slots.size(), assigned(far), &dirty);
  BOOST_TEST((dirty == std::set<uint32_t>{1}));
  dirty.clear();
  CardEvent rev = revoked("P3");
  s = evolve(std::move(s), rev);
  card_parts_changed(s, s.slots.size(), rev, &dirty);
  BOOST_TEST((dirty == std::set<uint32_t>{0}));
  // Codes added from slot 4,101 to 12,300: parts 1, 2 and 3.
  dirty.clear();
  const size_t before = s.slots.size();
  std::vector<std::string> more;
  for (size_t i = 0; i < 2 * kCardPartSlots + 7; ++i) more.push_back("Q" + std::to_string(i));
  CardEvent add = added(more);
  s = evolve(std::move(s), add);
  card_parts_changed(s, before, add, &dirty);
  BOOST_TEST((dirty == std::set<uint32_t>{1, 2, 3}));
  dirty.clear();
  card_parts_changed(s, s.slots.size(), created(), &dirty);
  BOOST_TEST(dirty.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::card_test

// In-process load on a ShopFixture (the real actors over a RocksDB store,
// without HTTP), recorded into the same History as the HTTP load: used where
// the test must own the store — power loss (a fault-injecting file system)
// and deterministic faults.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/actors/shop_fixture.h"
#include "tests/reliability/oracle.h"

namespace giftcard::reliability {

// One call through the fixture. Storage failures and "unavailable" are info
// (the commit may or may not have reached the disk); domain refusals are fail.
void engine_call(test::ShopFixture& fix, Call* call);

// Retries every info call not yet retried (see resolve_infos in http_workload.h).
void resolve_infos(test::ShopFixture& fix, History* history);

struct EngineLoadConfig {
  int threads = 8;
  int users = 8;
  int cards = 2;
  int64_t price = 100;
  int64_t credit = 250;
};

// Cards "pl0".. with `codes` codes each and users "w0".. funded generously.
void set_up_engine_shop(test::ShopFixture& fix, const EngineLoadConfig& cfg, int codes);
void top_up_engine_codes(test::ShopFixture& fix, const EngineLoadConfig& cfg, int round,
                         int64_t low, int add);

class EngineLoad {
 public:
  EngineLoad(test::ShopFixture& fix, const EngineLoadConfig& cfg, History* history, uint64_t seed,
             std::string tag);
  ~EngineLoad() { stop(); }
  void start();
  void stop();
  int64_t acknowledged() const { return acked_.load(); }

 private:
  test::ShopFixture& fix_;
  EngineLoadConfig cfg_;
  History* history_;
  uint64_t seed_;
  std::string tag_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::vector<std::thread> threads_;
};

}  // namespace giftcard::reliability

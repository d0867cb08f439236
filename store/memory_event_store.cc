#include "store/memory_event_store.h"

#include "store/memory_log.h"
#include "store/writer.h"

namespace giftcard {
namespace {

// A MemoryLog behind the production writer (thread, group commit, core).
class MemoryEventStore final : public EventStore {
 public:
  MemoryEventStore() : writer_(std::make_unique<Writer>(&log_, 0, Hash{}, 0)) {}
  ~MemoryEventStore() override { Close(); }

  void Append(AppendRequest req, AppendCallback done) override {
    writer_->Append(std::move(req), std::move(done));
  }
  Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                    std::vector<StoredEvent>* out) override {
    return log_.ReadStream(stream, from_version, max, out);
  }
  Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) override {
    return log_.ReadAll(from_position, max, out);
  }
  Status StreamVersion(const std::string& stream, int64_t* version) override {
    return log_.LoadHead(stream, version);
  }
  Status GetClaim(const std::string& key, std::string* value) override {
    return log_.GetClaim(key, value);
  }
  Status SaveSnapshot(const std::string& stream, const Snapshot& snap) override {
    log_.SaveSnapshot(stream, snap);
    return Status::OK();
  }
  Status LoadSnapshot(const std::string& stream, Snapshot* snap) override {
    return log_.LoadSnapshot(stream, snap);
  }
  Status KvWrite(const KvBatch& kv) override { return log_.KvWrite(kv); }
  Status KvGet(const std::string& key, std::string* value) override {
    return log_.KvGet(key, value);
  }
  Status KvMultiGet(const std::vector<std::string>& ks,
                    std::vector<std::optional<std::string>>* values) override {
    return log_.KvMultiGet(ks, values);
  }
  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) override {
    return log_.KvScan(prefix, start, fn);
  }

  int64_t LastPosition() const override { return writer_->LastPosition(); }
  uint64_t Subscribe(Subscriber fn) override { return writer_->Subscribe(std::move(fn)); }
  void Unsubscribe(uint64_t id) override { writer_->Unsubscribe(id); }
  Status Health() const override { return writer_->Health(); }
  StoreStats Stats() const override { return writer_->Stats(); }
  void Close() override { writer_->Close(); }
  void TEST_FailNextCommits(int n) override { writer_->TEST_FailNextCommits(n); }

 private:
  MemoryLog log_;
  std::unique_ptr<Writer> writer_;  // last: its thread stops before the log goes
};

}  // namespace

std::unique_ptr<EventStore> NewMemoryEventStore() { return std::make_unique<MemoryEventStore>(); }

}  // namespace giftcard

// test::LossyFS (RELIABILITY.md §3): a rocksdb::FileSystemWrapper that
// models what a power cut keeps, modelled on RocksDB's FaultInjectionTestFS.
//
// It tracks, for every file written through it, how many bytes were written
// and how many a Sync/Fsync made durable, and whether a directory fsync has
// made the file's name durable. Cut() then does to the files what losing
// power would: truncates each to its synced size (optionally keeping a random
// prefix of the unsynced tail: a torn write), deletes files whose creation no
// directory sync covered, and undoes renames no directory sync covered.
//
// It also injects I/O errors (EIO or ENOSPC) on Append, Sync or Rename, and
// can be switched off (every write fails) to freeze the files at the cut.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

namespace giftcard::reliability {

class LossyFS : public rocksdb::FileSystemWrapper {
 public:
  enum class Op { append, sync, rename };
  enum class Err { eio, enospc };

  explicit LossyFS(std::shared_ptr<rocksdb::FileSystem> base);
  static const char* kClassName() { return "LossyFS"; }
  const char* Name() const override { return kClassName(); }

  // The next `after`+1-th call of `op` (0: the very next) fails with `err`,
  // and so does every later one until Clear(). With `only_dir`, only calls on
  // files directly in that directory count and fail (a store's log and its
  // projection space are two directories).
  void Inject(Op op, Err err, int after = 0, const std::string& only_dir = "");
  void ClearFaults();
  // Off: every write, sync, rename and delete fails (the machine is "off").
  void SetActive(bool active) { active_ = active; }

  // Applies the power cut to the files on disk. With `torn_tails`, each
  // unsynced tail keeps a random prefix instead of nothing.
  struct CutStats {
    int files_truncated = 0, files_deleted = 0, renames_undone = 0;
    uint64_t bytes_dropped = 0;
  };
  CutStats Cut(std::mt19937_64& rng, bool torn_tails);

  // WAL syncs seen so far (a synced group commit must add at least one); with
  // CountWalSyncsIn(dir), only syncs of WAL files directly in `dir`.
  uint64_t wal_syncs() const { return wal_syncs_.load(); }
  void CountWalSyncsIn(const std::string& dir);
  uint64_t faults_fired() const { return faults_fired_.load(); }

  // --- FileSystem -----------------------------------------------------------
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;

  // --- Called by the wrapped files and directories ---------------------------
  rocksdb::IOStatus OnAppend(const std::string& fname, size_t n);
  rocksdb::IOStatus OnSync(const std::string& fname);  // before the real sync
  void Synced(const std::string& fname);               // after it succeeded
  void OnTruncate(const std::string& fname, uint64_t size);
  rocksdb::IOStatus OnDirSync(const std::string& dir);

 private:
  struct FileState {
    uint64_t written = 0;
    uint64_t synced = 0;
    bool name_durable = false;  // a directory sync happened after its creation
  };
  struct PendingRename {
    std::string src, target;
    std::optional<std::string> old_target;  // the bytes the rename replaced
  };
  rocksdb::IOStatus Fault(Op op, const std::string& fname);
  rocksdb::IOStatus Off() const;
  static std::string Dir(const std::string& fname);
  rocksdb::IOStatus Wrap(const std::string& fname, bool fresh, rocksdb::IOStatus s,
                         std::unique_ptr<rocksdb::FSWritableFile>* result);

  std::atomic<bool> active_{true};
  std::atomic<uint64_t> wal_syncs_{0};
  std::atomic<uint64_t> faults_fired_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::vector<PendingRename> renames_;
  struct Fault_ {
    bool armed = false;
    Err err = Err::eio;
    int countdown = 0;
    std::string only_dir;  // empty: every file
  } faults_[3];
  std::string wal_dir_;  // empty: every WAL
};

}  // namespace giftcard::reliability

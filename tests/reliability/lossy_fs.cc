#include "tests/reliability/lossy_fs.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace giftcard::reliability {

namespace fs = std::filesystem;
using rocksdb::DataVerificationInfo;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

namespace {

bool is_wal(const std::string& fname) {
  return fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
}

std::string normalize(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

class LossyFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  LossyFile(LossyFS* fs, std::string fname, std::unique_ptr<rocksdb::FSWritableFile>&& t)
      : FSWritableFileOwnerWrapper(std::move(t)), fs_(fs), fname_(std::move(fname)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->OnAppend(fname_, data.size());
    return s.ok() ? FSWritableFileOwnerWrapper::Append(data, o, dbg) : s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    IOStatus s = fs_->OnAppend(fname_, data.size());
    return s.ok() ? FSWritableFileOwnerWrapper::Append(data, o, v, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->OnAppend(fname_, data.size());
    return s.ok() ? FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const DataVerificationInfo& v, IODebugContext* dbg) override {
    IOStatus s = fs_->OnAppend(fname_, data.size());
    return s.ok() ? FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, v, dbg) : s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
    if (s.ok()) fs_->OnTruncate(fname_, size);
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->OnSync(fname_);
    if (s.ok()) s = FSWritableFileOwnerWrapper::Sync(o, dbg);
    if (s.ok()) fs_->Synced(fname_);
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->OnSync(fname_);
    if (s.ok()) s = FSWritableFileOwnerWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->Synced(fname_);
    return s;
  }
  // sync_file_range starts write-back; it promises nothing after a power cut.
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& o,
                     IODebugContext* dbg) override {
    return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, o, dbg);
  }

 private:
  LossyFS* fs_;
  std::string fname_;
};

class LossyDir : public rocksdb::FSDirectoryWrapper {
 public:
  LossyDir(LossyFS* fs, std::string name, std::unique_ptr<rocksdb::FSDirectory>&& t)
      : FSDirectoryWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
    return s.ok() ? fs_->OnDirSync(name_) : s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& d) override {
    IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    return s.ok() ? fs_->OnDirSync(name_) : s;
  }

 private:
  LossyFS* fs_;
  std::string name_;
};

}  // namespace

LossyFS::LossyFS(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

std::string LossyFS::Dir(const std::string& fname) {
  return normalize(fs::path(fname).parent_path().string());
}

void LossyFS::Inject(Op op, Err err, int after, const std::string& only_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[static_cast<int>(op)] = Fault_{true, err, after,
                                         only_dir.empty() ? "" : normalize(only_dir)};
}

void LossyFS::CountWalSyncsIn(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  wal_dir_ = normalize(dir);
}

void LossyFS::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : faults_) f = Fault_{};
}

IOStatus LossyFS::Off() const {
  return active_ ? IOStatus::OK() : IOStatus::IOError("LossyFS: the power is off");
}

IOStatus LossyFS::Fault(Op op, const std::string& fname) {
  // Called with mu_ held.
  auto& f = faults_[static_cast<int>(op)];
  if (!f.armed) return IOStatus::OK();
  if (!f.only_dir.empty() && Dir(fname) != f.only_dir) return IOStatus::OK();
  if (f.countdown > 0) {
    --f.countdown;
    return IOStatus::OK();
  }
  ++faults_fired_;
  if (f.err == Err::enospc) return IOStatus::NoSpace("LossyFS: injected ENOSPC");
  return IOStatus::IOError("LossyFS: injected EIO");
}

IOStatus LossyFS::Wrap(const std::string& fname, bool fresh, IOStatus s,
                       std::unique_ptr<rocksdb::FSWritableFile>* result) {
  if (!s.ok()) return s;
  std::string name = normalize(fname);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fresh) {
      files_[name] = FileState{};
    } else if (!files_.count(name)) {
      // Reopened for append: what is there already counts as durable.
      std::error_code ec;
      uint64_t size = fs::file_size(name, ec);
      files_[name] = FileState{ec ? 0 : size, ec ? 0 : size, true};
    }
  }
  result->reset(new LossyFile(this, name, std::move(*result)));
  return s;
}

IOStatus LossyFS::NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                  std::unique_ptr<rocksdb::FSWritableFile>* result,
                                  IODebugContext* dbg) {
  if (IOStatus s = Off(); !s.ok()) return s;
  return Wrap(fname, true, target()->NewWritableFile(fname, opts, result, dbg), result);
}

IOStatus LossyFS::ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                     std::unique_ptr<rocksdb::FSWritableFile>* result,
                                     IODebugContext* dbg) {
  if (IOStatus s = Off(); !s.ok()) return s;
  return Wrap(fname, false, target()->ReopenWritableFile(fname, opts, result, dbg), result);
}

IOStatus LossyFS::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    IODebugContext* dbg) {
  if (IOStatus s = Off(); !s.ok()) return s;
  return Wrap(fname, true, target()->ReuseWritableFile(fname, old_fname, opts, result, dbg),
              result);
}

IOStatus LossyFS::NewDirectory(const std::string& name, const IOOptions& io_opts,
                               std::unique_ptr<rocksdb::FSDirectory>* result, IODebugContext* dbg) {
  IOStatus s = target()->NewDirectory(name, io_opts, result, dbg);
  if (s.ok()) result->reset(new LossyDir(this, normalize(name), std::move(*result)));
  return s;
}

IOStatus LossyFS::RenameFile(const std::string& src, const std::string& target_name,
                             const IOOptions& opts, IODebugContext* dbg) {
  if (IOStatus s = Off(); !s.ok()) return s;
  std::string from = normalize(src), to = normalize(target_name);
  PendingRename pending{from, to, std::nullopt};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (IOStatus s = Fault(Op::rename, from); !s.ok()) return s;
  }
  std::error_code ec;
  if (fs::exists(to, ec) && fs::file_size(to, ec) < (1u << 20)) {
    std::ifstream in(to, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    pending.old_target = ss.str();
  }
  IOStatus s = target()->RenameFile(src, target_name, opts, dbg);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  FileState st = it != files_.end() ? it->second : FileState{};
  if (it == files_.end()) {
    // A file from before this file system: all of it is durable.
    st.written = st.synced = fs::file_size(to, ec);
    st.name_durable = true;
  } else {
    files_.erase(it);
  }
  files_[to] = st;
  renames_.push_back(std::move(pending));
  return s;
}

IOStatus LossyFS::DeleteFile(const std::string& fname, const IOOptions& opts, IODebugContext* dbg) {
  if (IOStatus s = Off(); !s.ok()) return s;
  IOStatus s = target()->DeleteFile(fname, opts, dbg);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(normalize(fname));
  }
  return s;
}

IOStatus LossyFS::OnAppend(const std::string& fname, size_t n) {
  if (IOStatus s = Off(); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (IOStatus s = Fault(Op::append, fname); !s.ok()) return s;
  files_[fname].written += n;
  return IOStatus::OK();
}

IOStatus LossyFS::OnSync(const std::string& fname) {
  if (IOStatus s = Off(); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return Fault(Op::sync, fname);
}

void LossyFS::Synced(const std::string& fname) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& st = files_[fname];
  st.synced = st.written;
  if (is_wal(fname) && (wal_dir_.empty() || Dir(fname) == wal_dir_)) ++wal_syncs_;
}

void LossyFS::OnTruncate(const std::string& fname, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& st = files_[fname];
  st.written = size;
  st.synced = std::min(st.synced, size);
}

IOStatus LossyFS::OnDirSync(const std::string& dir) {
  if (IOStatus s = Off(); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, st] : files_)
    if (Dir(name) == dir) st.name_durable = true;
  std::vector<PendingRename> keep;
  for (auto& r : renames_)
    if (Dir(r.target) != dir) keep.push_back(std::move(r));
  renames_ = std::move(keep);
  return IOStatus::OK();
}

LossyFS::CutStats LossyFS::Cut(std::mt19937_64& rng, bool torn_tails) {
  std::lock_guard<std::mutex> lock(mu_);
  CutStats stats;
  std::error_code ec;
  // Renames no directory sync covered never happened.
  for (auto r = renames_.rbegin(); r != renames_.rend(); ++r) {
    if (fs::exists(r->target, ec)) fs::rename(r->target, r->src, ec);
    if (r->old_target) {
      std::ofstream out(r->target, std::ios::binary | std::ios::trunc);
      out << *r->old_target;
    }
    auto it = files_.find(r->target);
    if (it != files_.end()) {
      files_[r->src] = it->second;
      files_.erase(r->target);
    }
    ++stats.renames_undone;
  }
  renames_.clear();
  for (auto& [name, st] : files_) {
    if (!fs::exists(name, ec)) continue;
    uint64_t size = fs::file_size(name, ec);
    if (!st.name_durable) {
      fs::remove(name, ec);
      ++stats.files_deleted;
      stats.bytes_dropped += size;
      continue;
    }
    uint64_t keep = std::min(st.synced, size);
    if (torn_tails && size > keep) keep += rng() % (size - keep + 1);
    if (keep < size) {
      fs::resize_file(name, keep, ec);
      ++stats.files_truncated;
      stats.bytes_dropped += size - keep;
    }
  }
  files_.clear();
  return stats;
}

}  // namespace giftcard::reliability
